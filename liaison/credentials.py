"""Reading the participant credentials that ``topology apply`` writes, and logging in with them.

One file per participant, ``<credentials_dir>/<code>.env``, mode 0600, holding
``LIAISON_AMQP_URL=amqp://<user>:<password>@host:port/<vhost>``. A missing file or a
refused password is one ``LiaisonError`` naming the participant, its user and the file,
with the fix: ``apply`` never resets a password by itself.
"""

from __future__ import annotations

import pika

from liaison.adapters.connections import open_connection
from liaison.errors import ConfigError
from liaison.settings import Settings
from liaison.topology import credentials_path, read_credentials_url, rotation_hint


def participant_url(settings: Settings, code: str) -> str:
    """The AMQP URL (with password) of participant ``code``, from its credentials file."""
    path = credentials_path(settings, code)
    url = read_credentials_url(settings, code)
    if url is None:
        raise ConfigError(
            f"no credentials for {code!r} (user {settings.user_for(code)!r}) at {path}: "
            f"{rotation_hint([code])}"
        )
    if not url:
        raise ConfigError(f"{path} has no LIAISON_AMQP_URL line")
    return url


def participant_connection(settings: Settings, code: str, *, name: str) -> pika.BlockingConnection:
    """A blocking connection as participant ``code``, with the password from its file.

    A refused login raises ``LoginRefusedError`` naming the user and the file.
    """
    path = credentials_path(settings, code)
    return open_connection(
        settings,
        participant_url(settings, code),
        name=name,
        source=str(path),
        hint=rotation_hint([code]),
    )
