"""The edge SDK's errors, grafted onto the project's one root.

A leaf module (it imports only ``schemas.errors``), so the producer and consumer
modules, and systems catching these, can import it without loops::

    LiaisonError                     schemas.errors: root of everything the project raises
     ├── ContractError               schemas.errors: bytes or data that break the contract
     ├── SdkConfigError              participant settings missing, unreadable or wrong
     ├── PublishError                the broker refused, could not route, or could not be
     │                               reached for a message (names the type and the cause)
     ├── ConsumeError                the broker will not let this participant consume its inbox
     └── ReplyTimeout                no correlated answer arrived within the timeout

kombu and py-amqp errors are translated into these at the one place that calls
them (``producers.publisher``), with ``raise ... from exc``.
"""

from __future__ import annotations

from schemas.errors import LiaisonError


class SdkConfigError(LiaisonError):
    """Participant settings that cannot work: a missing variable, a bad URL, an unreadable key."""


class PublishError(LiaisonError):
    """A message did not reach the hub: refused, unroutable, or the broker out of reach."""

    def __init__(self, message: str, *, type_: str | None = None, cause: str = "") -> None:
        self.type = type_
        self.cause = cause
        super().__init__(message)


class ConsumeError(LiaisonError):
    """The inbox cannot be consumed: login refused, no such queue, or no right to read it."""


class ReplyTimeout(LiaisonError):  # noqa: N818 - reads as what happened, like TimeoutError
    """No reply or receipt correlated with a request arrived in time."""

    def __init__(self, message: str, *, request_id: str, timeout: float) -> None:
        self.request_id = request_id
        self.timeout = timeout
        super().__init__(message)


__all__ = ["ConsumeError", "PublishError", "ReplyTimeout", "SdkConfigError"]
