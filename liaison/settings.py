"""The one settings object, built at the entry point and passed down.

Sources, later ones winning: defaults, a TOML file (``--config`` or
``LIAISON_CONFIG``), then ``LIAISON_*`` environment variables. Nothing here reads
the environment at import time.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from liaison.errors import ConfigError
from schemas import wire

ENV_PREFIX = "LIAISON_"
_DELAY_NAME = re.compile(r"^[a-z0-9]{1,16}$")


def split_urls(value: str) -> list[str]:
    """The URLs of a comma-separated list (one node of a cluster each), in order."""
    return [part.strip() for part in value.split(",") if part.strip()]


class TlsSettings(BaseModel):
    """TLS material for ``amqps://`` and ``https://`` connections."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    #: Check the server's name against its certificate (leave on outside of tests).
    verify_hostname: bool = True


class Settings(BaseModel):
    """Everything the hub, its CLI and its SDK need to know about their surroundings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The broker, as the hub's own user; the path is the vhost (``%2F`` for ``/``).
    #: Several nodes of one cluster: their URLs comma-separated, same user, password,
    #: vhost and scheme; every connection fails over between them.
    amqp_url: str = "amqp://guest:guest@localhost:5672/liaison"
    #: RabbitMQ's management HTTP API (users, permissions, queue statistics).
    management_url: str = "http://localhost:15672"
    #: Management API credentials; default to the user and password of ``amqp_url``.
    management_user: str | None = None
    management_password: str | None = None
    tls: TlsSettings = TlsSettings()

    #: The participants directory (TOML); ``None`` uses the bundled one.
    directory_path: Path | None = None
    #: Routing rules (TOML); ``None`` uses the bundled ones.
    rules_path: Path | None = None
    #: Prefix of every participant's RabbitMQ user name (``<prefix><code>``).
    user_prefix: str = ""
    #: Where ``topology apply`` writes generated participant credentials.
    credentials_dir: Path = Path(".liaison/credentials")

    #: Decoding caps, enforced on the raw bytes before parsing.
    max_message_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_depth: int = Field(default=32, ge=4, le=256)
    #: How far in the future a created-at may be (clock skew) before it is refused.
    max_clock_skew_s: float = Field(default=300.0, ge=0)
    #: How many recent message ids the router remembers to drop duplicates.
    dedupe_window: int = Field(default=100_000, ge=0)
    #: Unacked ingress messages the router takes at once: each waits for two confirm round
    #: trips (deliveries, then its audit batch), so the window must cover them.
    prefetch: int = Field(default=2_000, ge=1, le=65_535)
    #: Quorum-queue delivery limit of the participants' inboxes before a copy is
    #: dead-lettered (a consumer that keeps failing on it).
    delivery_limit: int = Field(default=5, ge=1)
    #: The same for the hub's own queues (ingress, audit, retry relay). RabbitMQ 3.10
    #: counts a delivery returned by a lost connection like a failed one, and the router
    #: and the audit writer each hold up to ``prefetch`` unacked: with a small limit, a
    #: few node failovers dead-letter innocent traffic and audit batches. The hub never
    #: fails on a message by design (refusals are dead letters it writes itself), so this
    #: limit only ends a loop of hard crashes; it must outlast any run of failovers.
    hub_delivery_limit: int = Field(default=50, ge=1)
    #: Consumer retry delays: name (an ``x-liaison-delay`` value, part of a queue name) →
    #: milliseconds, one TTL queue each. Tests plan shorter ones; a JSON object in the
    #: environment (``LIAISON_RETRY_DELAYS_MS='{"1s": 1000}'``).
    retry_delays_ms: dict[str, int] = Field(default_factory=lambda: dict(wire.RETRY_DELAYS_MS))
    #: Seconds between reconnection attempts, growing to the maximum.
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=15.0, gt=0)

    #: Audit log directory, hub signing key, checkpoint cadence.
    audit_dir: Path = Path(".liaison/audit")
    hub_key_path: Path = Path(".liaison/hub.key")
    #: The secret behind the receipt tokens (32 random bytes, 0600, created once; every
    #: router of the hub reads the same file). ``None``: ``receipt.key`` beside ``hub_key_path``.
    receipt_key_path: Path | None = None
    checkpoint_every: int = Field(default=1_000, ge=1)
    checkpoint_seconds: float = Field(default=10.0, gt=0)
    segment_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)

    #: The procedures service's database (SQLAlchemy URL: ``sqlite:///path`` or
    #: ``postgresql+psycopg://user@host/db``); ``None``: ``.liaison/procedures.sqlite3``.
    procedures_database_url: str | None = None
    #: Registry numbers are ``<registry_prefix>/<year>/<sequence>``.
    registry_prefix: str = Field(default="MAEE", pattern=r"^[A-Z][A-Z0-9-]{0,15}$")
    #: Acknowledgement rules (TOML); ``None`` uses the bundled ones.
    acks_path: Path | None = None
    #: Treaty procedure: roles and expected delays (TOML); ``None`` uses the bundled ones.
    treaties_path: Path | None = None
    #: Parliamentary questions: assignment rules, reminders (TOML); ``None``: bundled.
    questions_path: Path | None = None
    #: How often the procedures service looks for due deadlines and unsent messages.
    procedures_sweep_s: float = Field(default=5.0, gt=0)
    #: ONA's monthly report is due by the end of this day of the following month.
    ona_report_due_day: int = Field(default=10, ge=1, le=28)

    #: The hub's HTTP server (metrics, health, dashboard); 0 turns it off.
    http_port: int = Field(default=8787, ge=0, le=65_535)
    http_host: str = "127.0.0.1"  # the address it binds; 0.0.0.0 inside a container
    #: Token that allows retrying dead letters from the dashboard.
    operator_token: str | None = None
    #: Log as JSON (``None``: JSON unless standard error is a terminal).
    log_json: bool | None = None
    log_level: str = "info"

    @field_validator("amqp_url")
    @classmethod
    def _check_nodes(cls, value: str) -> str:
        urls = split_urls(value)
        if not urls:
            raise ValueError("names no broker")
        first = urlsplit(urls[0])
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
                raise ValueError(
                    f"each URL must be amqp[s]://user:password@host:port/vhost ({parts.scheme}://{parts.hostname})"
                )
            # The nodes are one broker: a second identity or vhost would be a different hub.
            if (parts.scheme, parts.username, parts.password, parts.path) != (
                first.scheme,
                first.username,
                first.password,
                first.path,
            ):
                raise ValueError(
                    f"every node URL must have the same scheme, user, password and vhost "
                    f"(node {parts.hostname}:{parts.port} differs from the first)"
                )
        return ",".join(urls)

    @field_validator("retry_delays_ms", mode="before")
    @classmethod
    def _delays_from_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("retry_delays_ms")
    @classmethod
    def _check_delays(cls, value: dict[str, int]) -> dict[str, int]:
        for name, milliseconds in value.items():
            # "dead" is the delay value that parks a message in dead letters instead, and
            # hub.retry.due is the retry relay's queue, not a delay queue.
            if not _DELAY_NAME.match(name) or name in {"dead", "due"}:
                raise ValueError(
                    f"delay name {name!r} must be 1-16 of [a-z0-9], not 'dead' or 'due'"
                )
            if milliseconds < 1:
                raise ValueError(f"delay {name!r} must be at least 1 ms")
        return value

    @property
    def amqp_urls(self) -> list[str]:
        """Every node's URL, in the order given (one for a single broker)."""
        return split_urls(self.amqp_url)

    @property
    def vhost(self) -> str:
        """The vhost named by ``amqp_url`` (``/`` when the path is empty)."""
        path = urlsplit(self.amqp_urls[0]).path
        return unquote(path[1:]) if len(path) > 1 else "/"

    @property
    def hub_user(self) -> str:
        """The hub's own RabbitMQ user: the relay the router trusts for retries and replays."""
        return unquote(urlsplit(self.amqp_urls[0]).username or "guest")

    @property
    def receipt_key_file(self) -> Path:
        """Where the receipt token secret is (see ``receipt_key_path``)."""
        return self.receipt_key_path or self.hub_key_path.parent / "receipt.key"

    @property
    def management_auth(self) -> tuple[str, str]:
        """User and password for the management API."""
        parts = urlsplit(self.amqp_urls[0])
        return (
            self.management_user or unquote(parts.username or "guest"),
            self.management_password or unquote(parts.password or "guest"),
        )

    def user_for(self, code: str) -> str:
        """The RabbitMQ user name of participant ``code``."""
        return f"{self.user_prefix}{code}"

    def code_for(self, user: str) -> str | None:
        """The participant code behind RabbitMQ user ``user``, if it has the prefix."""
        if not user.startswith(self.user_prefix):
            return None
        return user[len(self.user_prefix) :]

    @property
    def procedures_url(self) -> str:
        """The procedures database URL (the SQLite file under ``.liaison`` by default)."""
        return self.procedures_database_url or "sqlite:///.liaison/procedures.sqlite3"

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated."""
        return Settings.model_validate({**self.model_dump(), **changes})


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults ← TOML file ← ``LIAISON_*`` variables ← explicit overrides."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    path = config_file or (
        Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None
    )
    if path is not None:
        try:
            data.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None
    tls = dict(data.pop("tls", {}))
    for name in Settings.model_fields:
        value = env.get(ENV_PREFIX + name.upper())
        if value is not None and name != "tls":
            data[name] = value
    for name in TlsSettings.model_fields:
        value = env.get(f"{ENV_PREFIX}TLS_{name.upper()}")
        if value is not None:
            tls[name] = value
    data["tls"] = tls
    data.update(overrides or {})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"setting {field!r}: {first['msg']}") from None
