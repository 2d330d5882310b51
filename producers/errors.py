"""The edge SDK's errors, grafted onto the project's one root.

A leaf module (it imports only ``schemas.errors``), so the producer and consumer
modules, and systems catching these, can import it without loops::

    LiaisonError                     schemas.errors: root of everything the project raises
     ├── ContractError               schemas.errors: bytes or data that break the contract
     ├── SdkConfigError              participant settings missing, unreadable or wrong
     └── PublishError                the broker refused, could not route, or could not be
                                     reached for a message (names the type and the cause)

The consumer side's ``ConsumeError`` and ``ReplyTimeout`` live in ``consumers.errors``;
this module still hands them out under their old names (resolved on first use, so that
importing ``producers`` does not import ``consumers``).

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


def __getattr__(name: str) -> type[LiaisonError]:
    """The consumer-side errors under the names this module first gave them."""
    if name in _MOVED:
        from consumers import errors  # noqa: PLC0415 - lazy: consumers imports producers

        moved: type[LiaisonError] = getattr(errors, name)
        return moved
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MOVED = frozenset({"ConsumeError", "ReplyTimeout"})

__all__ = ["PublishError", "SdkConfigError"]
