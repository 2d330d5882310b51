"""Participant credential files: where they live, how they are written, whether they work.

A file is ``<credentials_dir>/<code>.env`` holding ``LIAISON_PARTICIPANT``,
``LIAISON_AMQP_URL`` and ``LIAISON_HUB_USER``, mode 0600.
Whether a file *works* is found by trying it (an AMQP login with its URL), never by
reading it alone: a file can name the right broker, vhost and user and still hold a
password that another checkout has since replaced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pika
import pika.exceptions

from liaison.adapters.connections import node_parameters
from liaison.errors import BrokerError
from liaison.settings import Settings, split_urls
from producers.settings import ENV_AMQP_URL, parse_env_file


class CredentialState(StrEnum):
    """Why a participant's credential file cannot be used from here."""

    MISSING = "missing"
    #: The file names another broker, vhost or user (never tried: the password stays home).
    ELSEWHERE = "names another broker, vhost or user"
    #: The broker refuses the file's password: it was changed since the file was written.
    REFUSED = "holds a password the broker refuses"


@dataclass(frozen=True)
class CredentialProblem:
    """A participant whose credential file here does not let it log in; never holds a password."""

    code: str
    user: str
    path: Path
    state: CredentialState

    def __str__(self) -> str:
        return f"{self.code} (user {self.user}): {self.path} {self.state.value}"


def rotation_hint(codes: list[str]) -> str:
    """How an operator fixes unusable credentials, for the participants ``codes``."""
    named = " ".join(f"--rotate {code}" for code in codes[:3])
    more = " …" if len(codes) > 3 else ""
    return (
        "copy each file from where `liaison topology apply` wrote it; or give the participant "
        f"a new password (its system then needs the new file): `liaison topology apply "
        f"{named}{more}` (`--rotate-all` for every participant)"
    )


def credentials_path(settings: Settings, code: str) -> Path:
    """Where ``apply`` writes participant ``code``'s connection URL."""
    return settings.credentials_dir / f"{code}.env"


def credentials_url(settings: Settings, user: str, password: str) -> str:
    """The AMQP URL a participant connects with: the hub's broker and vhost, its own user.

    On a cluster, one URL per node of ``amqp_url``, comma-separated (the SDK fails over).
    """
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    urls = []
    for url in settings.amqp_urls:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
        urls.append(f"{parts.scheme}://{credentials}@{host}{port}/{quote(settings.vhost, safe='')}")
    return ",".join(urls)


def write_credentials(settings: Settings, code: str, user: str, password: str) -> Path:
    """Write ``code``'s connection settings, readable by the owner only (0600).

    ``LIAISON_PARTICIPANT`` (whose URL this is), ``LIAISON_AMQP_URL``, and
    ``LIAISON_HUB_USER``: the only ``user_id`` the SDK consumer accepts on a delivery.
    """
    settings.credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = credentials_path(settings, code)
    temporary = path.with_name(f".{path.name}.tmp")
    # Created 0600 from the first byte, then renamed over the old file: no moment
    # at which the password sits in a file others can read.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        lines = (
            f"LIAISON_PARTICIPANT={code}\n"
            f"LIAISON_AMQP_URL={credentials_url(settings, user, password)}\n"
            f"LIAISON_HUB_USER={settings.hub_user}\n"
        )
        os.write(fd, lines.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return path


def read_credentials_url(settings: Settings, code: str) -> str | None:
    """The ``LIAISON_AMQP_URL`` in ``code``'s file, or ``None`` when there is no such file."""
    try:
        text = credentials_path(settings, code).read_text(encoding="utf-8")
    except OSError:
        return None
    # The SDK's own parser, so the hub reads these files exactly as participants do.
    return parse_env_file(text).get(ENV_AMQP_URL, "")


def credentials_match(settings: Settings, code: str, user: str) -> bool:
    """Whether ``code``'s credential file exists and names this broker, vhost and user.

    Says nothing about the password: :func:`check_credentials` tries it.
    """
    url = read_credentials_url(settings, code)
    if url is None:
        return False
    found_nodes = [urlsplit(one) for one in split_urls(url)]
    hub_nodes = [urlsplit(one) for one in settings.amqp_urls]
    try:
        same_nodes = [(f.hostname, f.port) for f in found_nodes] == [
            (h.hostname, h.port) for h in hub_nodes
        ]
    except ValueError:
        return False
    return same_nodes and all(
        bool(found.password)
        and unquote(found.username or "") == user
        and unquote(found.path[1:]) == settings.vhost
        for found in found_nodes
    )


def check_credentials(settings: Settings, code: str, user: str) -> CredentialProblem | None:
    """Whether ``code``'s file lets it log in, found by logging in with it (one AMQP connection).

    A user denied the vhost (permissions not yet set, on a dry run) still proved its
    password: only a refused login makes the file stale.
    """
    path = credentials_path(settings, code)
    url = read_credentials_url(settings, code)
    if url is None:
        return CredentialProblem(code, user, path, CredentialState.MISSING)
    if not credentials_match(settings, code, user):
        return CredentialProblem(code, user, path, CredentialState.ELSEWHERE)
    params = node_parameters(settings, url, name="liaison-credentials-check")
    try:
        pika.BlockingConnection(params).close()
    except (pika.exceptions.AMQPError, OSError) as exc:
        # With several nodes pika may wrap the last node's answer in a workflow error.
        cause = getattr(exc, "exception", None) or exc
        if isinstance(cause, pika.exceptions.ProbableAuthenticationError):
            return CredentialProblem(code, user, path, CredentialState.REFUSED)
        if isinstance(cause, pika.exceptions.ProbableAccessDeniedError):
            return None  # the password was accepted; the vhost was not (yet) open to it
        raise BrokerError(f"cannot try the credentials of {user!r} from {path}: {exc!r}") from exc
    return None


__all__ = [
    "CredentialProblem",
    "CredentialState",
    "check_credentials",
    "credentials_match",
    "credentials_path",
    "credentials_url",
    "read_credentials_url",
    "rotation_hint",
    "write_credentials",
]
