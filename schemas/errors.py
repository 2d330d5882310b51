"""The error tree of the contracts, shared by the whole project.

A leaf module: it imports nothing from the package, so every other module (and
the ``liaison`` hub, which extends the tree) can import it without loops::

    LiaisonError                     root of everything the project raises
     └── ContractError               bytes or data that break the wire contract
                                     (carries a machine-readable ReasonCode)

``liaison.errors`` adds the hub's own branches (configuration, directory,
broker) under the same root.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Why a message was refused; the value travels in the ``x-liaison-reason`` header."""

    # Decoding: checked before and while parsing.
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    TOO_DEEP = "too_deep"
    NOT_JSON = "not_json"
    DUPLICATE_KEY = "duplicate_key"
    NOT_AN_OBJECT = "not_an_object"
    # Validation against the registry.
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_TIMEZONE = "missing_timezone"
    SCHEMA_VIOLATION = "schema_violation"
    # Authorisation and routing (decided by the hub).
    UNKNOWN_SENDER = "unknown_sender"
    SENDER_MISMATCH = "sender_mismatch"
    TYPE_NOT_ALLOWED = "type_not_allowed"
    SIGNATURE_MISSING = "signature_missing"
    SIGNATURE_INVALID = "signature_invalid"
    EXPIRED = "expired"
    FUTURE_DATED = "future_dated"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    #: A precedence above the one the directory lets the sender use (``max_precedence``).
    PRECEDENCE_NOT_ALLOWED = "precedence_not_allowed"
    CLEARANCE = "recipient_clearance"
    #: The recipient receives only from named senders (a publication channel).
    RECIPIENT_CLOSED = "recipient_closed"
    NO_RECIPIENTS = "no_recipients"
    DUPLICATE = "duplicate"
    #: The id of a message already routed, on other content or from another sender.
    ID_REUSED = "id_reused"
    #: A receipt from a participant the original was not delivered to (no valid token).
    RECEIPT_NOT_DELIVERED = "receipt_not_delivered"
    UNROUTABLE = "unroutable"
    #: The hub failed to decide a message (a bug): refused and audited, never retried blind.
    INTERNAL_ERROR = "internal_error"
    # Raised at the edge.
    HANDLER_ERROR = "handler_error"
    NO_HANDLER = "no_handler"
    NOT_FROM_HUB = "not_from_hub"
    DELIVERY_LIMIT = "delivery_limit"


class LiaisonError(Exception):
    """Root of every error the project raises on purpose."""


class ContractError(LiaisonError):
    """Input that breaks the wire contract, with a reason code and a field path."""

    def __init__(self, reason: ReasonCode, message: str, *, path: str | None = None) -> None:
        self.reason = reason
        self.message = message
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"{reason.value}{where}: {message}")
