"""Reading the participant credentials that ``topology apply`` writes.

One file per participant, ``<credentials_dir>/<code>.env``, mode 0600, holding
``LIAISON_AMQP_URL=amqp://<user>:<password>@host:port/<vhost>``.
"""

from __future__ import annotations

from liaison.errors import ConfigError
from liaison.settings import Settings
from liaison.topology import credentials_path


def participant_url(settings: Settings, code: str) -> str:
    """The AMQP URL (with password) of participant ``code``, from its credentials file."""
    path = credentials_path(settings, code)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"no credentials for {code!r} at {path} ({exc.strerror}); run `liaison topology apply`"
        ) from None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "LIAISON_AMQP_URL":
            return value.strip().strip('"')
    raise ConfigError(f"{path} has no LIAISON_AMQP_URL line")
