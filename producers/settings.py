"""Who a participant is and how it reaches the hub: the SDK's one settings object.

Built once at the edge system's entry point (``from_env``, ``from_credentials``
or by hand) and passed to :class:`~producers.Publisher` and
:class:`~consumers.Consumer`; consumers import it from here, so there is one
place. Nothing reads the environment at import time.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from producers.errors import SdkConfigError

ENV_PARTICIPANT = "LIAISON_PARTICIPANT"
ENV_AMQP_URL = "LIAISON_AMQP_URL"
ENV_TLS_CA_FILE = "LIAISON_TLS_CA_FILE"
ENV_TLS_CERT_FILE = "LIAISON_TLS_CERT_FILE"
ENV_TLS_KEY_FILE = "LIAISON_TLS_KEY_FILE"
ENV_TLS_VERIFY_HOSTNAME = "LIAISON_TLS_VERIFY_HOSTNAME"
ENV_SIGNING_KEY = "LIAISON_SIGNING_KEY"
ENV_HUB_USER = "LIAISON_HUB_USER"

# The contract's ParticipantCode, repeated so that a typo fails here and not at the router.
_CODE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class TlsOptions:
    """TLS material for ``amqps://``: a CA to trust, and a client certificate if the broker asks."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    #: Check the broker's name against its certificate (leave on outside of tests).
    verify_hostname: bool = True


@dataclass(frozen=True, repr=False)
class ParticipantSettings:
    """One participant's identity and connection: code, broker URL, TLS, signing key."""

    #: The participant's directory code: its inboxes are ``inbox.<code>[.urgent]``.
    code: str
    #: ``amqp://`` or ``amqps://user:password@host:port/vhost``.
    amqp_url: str
    #: PEM Ed25519 private key; when set, every published envelope is signed.
    signing_key_path: Path | None = None
    #: The RabbitMQ user sent as ``user_id``; defaults to the user in ``amqp_url``.
    user: str | None = None
    tls: TlsOptions = field(default_factory=TlsOptions)
    connect_timeout: float = 10.0
    #: The hub's RabbitMQ user: every copy in the inbox must carry it as ``user_id``
    #: (RabbitMQ validates it), or the consumer refuses it. ``topology apply`` writes
    #: it into the credentials file as ``LIAISON_HUB_USER``.
    hub_user: str | None = None

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise SdkConfigError(
                f"participant code {self.code!r} is not a directory code "
                "(lower case, digits and hyphens, 2-40 characters)"
            )
        schemes = set()
        for url in self.urls:
            parts = urlsplit(url)
            schemes.add(parts.scheme)
            if parts.scheme not in {"amqp", "amqps"} or not parts.hostname:
                raise SdkConfigError(
                    "amqp_url must look like amqp[s]://user:password@host/vhost "
                    f"(several nodes comma-separated), not {self.safe_url!r}"
                )
        if not self.urls or len(schemes) > 1:
            raise SdkConfigError(f"amqp_url must name nodes of one scheme, not {self.safe_url!r}")

    def __repr__(self) -> str:
        # Never the password: settings end up in logs and tracebacks.
        return f"ParticipantSettings(code={self.code!r}, amqp_url={self.safe_url!r})"

    @property
    def urls(self) -> list[str]:
        """The node URLs of ``amqp_url`` (comma-separated for a cluster), in order."""
        return [part.strip() for part in self.amqp_url.split(",") if part.strip()]

    @property
    def safe_url(self) -> str:
        """``amqp_url`` with the password masked, for logs and messages."""
        masked = []
        for url in self.urls or [self.amqp_url]:
            parts = urlsplit(url)
            if parts.password is None:
                masked.append(url)
                continue
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            masked.append(parts._replace(netloc=netloc).geturl())
        return ",".join(masked)

    @property
    def rabbit_user(self) -> str:
        """The RabbitMQ user this participant connects as: the ``user_id`` it publishes with."""
        return self.user or unquote(urlsplit(self.urls[0]).username or "guest")

    @property
    def uses_tls(self) -> bool:
        """Whether the connection is ``amqps://``."""
        return urlsplit(self.urls[0]).scheme == "amqps"

    def ssl_options(self) -> dict[str, Any] | None:
        """py-amqp's ``ssl`` options for an ``amqps://`` URL; ``None`` for plain ``amqp://``."""
        if not self.uses_tls:
            return None
        options: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED}
        if self.tls.ca_file is not None:
            options["ca_certs"] = str(self.tls.ca_file)
        if self.tls.cert_file is not None:
            options["certfile"] = str(self.tls.cert_file)
            if self.tls.key_file is not None:
                options["keyfile"] = str(self.tls.key_file)
        if self.tls.verify_hostname:
            # py-amqp checks the name only when a server_hostname is given; kombu shares
            # these options between the nodes of a cluster, so their certificates must
            # all carry the first node's name (one certificate with every node's name).
            options["server_hostname"] = urlsplit(self.urls[0]).hostname
        return options

    def connection_options(self, *, heartbeat: int = 0) -> dict[str, Any]:
        """Keyword arguments for ``kombu.Connection`` (URL, TLS, timeouts).

        Several nodes become kombu's ``;``-separated alternates, tried round-robin:
        each reconnection goes to the next node.
        """
        options: dict[str, Any] = {
            "hostname": ";".join(self.urls),
            "connect_timeout": self.connect_timeout,
            "heartbeat": heartbeat,
            "failover_strategy": "round-robin",
        }
        tls = self.ssl_options()
        if tls is not None:
            options["ssl"] = tls
        return options

    def signing_key(self) -> Ed25519PrivateKey | None:
        """The Ed25519 private key at ``signing_key_path``, or ``None`` when none is configured."""
        if self.signing_key_path is None:
            return None
        try:
            key = load_pem_private_key(self.signing_key_path.read_bytes(), password=None)
        except OSError as exc:
            raise SdkConfigError(
                f"cannot read signing key {self.signing_key_path}: {exc.strerror}"
            ) from None
        except (ValueError, TypeError) as exc:
            raise SdkConfigError(
                f"{self.signing_key_path} is not an unencrypted PEM private key: {exc}"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SdkConfigError(f"{self.signing_key_path} is not an Ed25519 key")
        return key

    def with_changes(self, **changes: Any) -> ParticipantSettings:
        """A copy with ``changes`` applied (and checked again)."""
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> ParticipantSettings:
        """Settings from the environment: ``LIAISON_PARTICIPANT``, ``LIAISON_AMQP_URL``, ...

        Also ``LIAISON_TLS_CA_FILE``, ``LIAISON_TLS_CERT_FILE``, ``LIAISON_TLS_KEY_FILE``,
        ``LIAISON_TLS_VERIFY_HOSTNAME``, ``LIAISON_SIGNING_KEY`` (a PEM file) and
        ``LIAISON_HUB_USER`` (the hub's RabbitMQ user, which consumers require).
        ``overrides`` (``code=...``, ``amqp_url=...``) win over the environment.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "code": env.get(ENV_PARTICIPANT),
            "amqp_url": env.get(ENV_AMQP_URL),
            "signing_key_path": _path(env.get(ENV_SIGNING_KEY)),
            "tls": _tls_from(env),
            "hub_user": env.get(ENV_HUB_USER) or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name, variable in (("code", ENV_PARTICIPANT), ("amqp_url", ENV_AMQP_URL)):
            if not values.get(name):
                raise SdkConfigError(f"{variable} is not set")
        return cls(**values)

    @classmethod
    def from_credentials(
        cls,
        path: Path,
        *,
        code: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ParticipantSettings:
        """Settings from a credentials file ``topology apply`` wrote (``<code>.env``).

        The file gives ``LIAISON_AMQP_URL`` (and may give any other variable of
        ``from_env``); the code defaults to ``LIAISON_PARTICIPANT`` in the file,
        else the file's name without ``.env``.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SdkConfigError(f"cannot read credentials file {path}: {exc.strerror}") from None
        in_file = parse_env_file(text)
        # The file names one participant: its name beats a code the environment carries.
        in_file.setdefault(ENV_PARTICIPANT, path.name.removesuffix(".env"))
        merged = {**(os.environ if environ is None else environ), **in_file}
        return cls.from_env(merged, code=code)


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines (comments, blanks and surrounding quotes allowed) as a dict."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("\"'")
    return values


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _tls_from(env: Mapping[str, str]) -> TlsOptions:
    verify = env.get(ENV_TLS_VERIFY_HOSTNAME)
    return TlsOptions(
        ca_file=_path(env.get(ENV_TLS_CA_FILE)),
        cert_file=_path(env.get(ENV_TLS_CERT_FILE)),
        key_file=_path(env.get(ENV_TLS_KEY_FILE)),
        verify_hostname=verify is None or verify.strip().lower() not in _FALSE,
    )


__all__ = ["ParticipantSettings", "TlsOptions", "parse_env_file"]
