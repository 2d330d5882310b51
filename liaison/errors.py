"""The hub's error tree, rooted in the contracts' ``LiaisonError``.

A leaf apart from ``schemas.errors``::

    LiaisonError
     ├── ContractError        bytes or data that break the wire contract (schemas)
     ├── ConfigError          settings, directory or routing rules that cannot be used
     │    └── DirectoryError  the participants directory, naming participant and field
     └── BrokerError          RabbitMQ refused, returned or could not be reached
          ├── LoginRefusedError    RabbitMQ refused a user's password (names the user and file)
          └── TlsRefusedError      the TLS handshake failed: a certificate on one side or the other

pika, kombu and httpx errors are turned into these at the one place that calls them.
"""

from __future__ import annotations

from schemas.errors import ContractError, LiaisonError, ReasonCode


class ConfigError(LiaisonError):
    """Configuration that cannot be used; the message says which file and field."""


class DirectoryError(ConfigError):
    """The participants directory is broken; names the participant and the field."""

    def __init__(self, message: str, *, participant: str | None = None, field: str | None = None):
        self.participant = participant
        self.field = field
        where = ", ".join(
            part
            for part in (
                f"participant {participant!r}" if participant else "",
                f"field {field!r}" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class BrokerError(LiaisonError):
    """RabbitMQ refused an operation, returned a message, or could not be reached."""


class LoginRefusedError(BrokerError):
    """RabbitMQ refused to let a user log in: names the user and where its password came from.

    One line, fit for an operator: which user, which file (or setting), and what to do.
    """

    def __init__(self, user: str, source: str, *, hint: str = "") -> None:
        self.user = user
        self.source = source
        self.hint = hint
        tail = f"; {hint}" if hint else ""
        super().__init__(
            f"RabbitMQ refused the login of user {user!r} with the password from {source}{tail}"
        )


class TlsRefusedError(BrokerError):
    """The TLS handshake failed (certificate refused or untrusted): configuration, not an outage."""


__all__ = [
    "BrokerError",
    "ConfigError",
    "ContractError",
    "DirectoryError",
    "LiaisonError",
    "LoginRefusedError",
    "ReasonCode",
    "TlsRefusedError",
]
