"""Retry decisions for failed handlers, and the headers that carry them: pure, no broker.

A handler that raises gets its message back after a delay: the consumer
re-publishes the same bytes to ``liaison.retry`` with its own code as routing key
and ``x-liaison-delay`` naming a delay queue; when the delay expires the hub's
retry relay puts it back into the consumer's own inbox (and no other), as the
hub, carrying ``x-liaison-attempt`` (failures so far) and ``x-liaison-own-retry``.
After the last delay the consumer parks it in dead letters instead:
``x-liaison-delay: dead`` takes it to the relay, which forwards it to
``liaison.dead`` (a participant may not publish there) and records the give-up
in the audit log, with the exception's type and message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from schemas import wire
from schemas.errors import ReasonCode

#: The ``x-liaison-delay`` value that parks a message in dead letters (topology's PARK_DELAY).
PARK_DELAY: Final = wire.PARK_DELAY
#: The delays the hub's topology has by default (``schemas.wire.RETRY_DELAYS_MS``).
DEFAULT_DELAYS: Final = tuple(wire.RETRY_DELAYS_MS)
#: Headers RabbitMQ manages on dead-lettering and redelivery; a re-publish starts them afresh.
_BROKER_HEADERS = frozenset({"x-death", "x-delivery-count"})
_BROKER_PREFIXES = ("x-first-death-", "x-last-death-")
#: Longest reason text kept in a header (the router's limit too).
MAX_REASON_TEXT = 1000


@dataclass(frozen=True)
class RetryPolicy:
    """The delays between a handler's attempts, by name of the topology's delay queues.

    ``("5s", "30s", "5m")`` (the default) means: after the first failure wait 5 s,
    after the second 30 s, after the third 5 min, and after the fourth park the
    message in dead letters. Each name must be a delay queue the topology has
    (``hub.retry.<name>``); an unknown one makes the retry publish unroutable.
    """

    delays: tuple[str, ...] = DEFAULT_DELAYS

    def __post_init__(self) -> None:
        for delay in self.delays:
            if not delay or delay == PARK_DELAY:
                raise ValueError(f"{delay!r} is not a delay queue name")

    @property
    def max_attempts(self) -> int:
        """How many times a handler runs on one message before it is parked."""
        return len(self.delays) + 1


@dataclass(frozen=True)
class Step:
    """What to do with a message whose handler just failed."""

    #: A delay queue name, or PARK_DELAY to park it in dead letters.
    delay: str
    #: Failures so far, this one included (the ``x-liaison-attempt`` to send).
    attempt: int

    @property
    def parked(self) -> bool:
        """Whether this is the end: dead letters rather than another attempt."""
        return self.delay == PARK_DELAY


def attempts_so_far(headers: Mapping[str, Any] | None) -> int:
    """Failures recorded in ``x-liaison-attempt`` (0 when absent or not a small integer)."""
    value = (headers or {}).get(wire.H_ATTEMPT)
    if isinstance(value, bool):
        return 0
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        count = int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0
    return count if 0 <= count <= 1_000 else 0


def next_step(policy: RetryPolicy, headers: Mapping[str, Any] | None) -> Step:
    """After a failure of a message carrying ``headers``: which delay, or park it."""
    attempt = attempts_so_far(headers) + 1
    if attempt <= len(policy.delays):
        return Step(policy.delays[attempt - 1], attempt)
    return Step(PARK_DELAY, attempt)


def error_type(exc: BaseException) -> str:
    """The exception's class as ``module.QualName`` (plain name for built-ins)."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def error_text(exc: BaseException) -> str:
    """``Type: message``, cut to what a header holds."""
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:MAX_REASON_TEXT]


def carried_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The headers of a delivery worth keeping on a re-publish (not the broker's own)."""
    return {
        key: value
        for key, value in (headers or {}).items()
        if key not in _BROKER_HEADERS and not key.startswith(_BROKER_PREFIXES)
    }


def failure_headers(
    headers: Mapping[str, Any] | None, step: Step, exc: BaseException, *, code: str
) -> dict[str, Any]:
    """Headers for re-publishing a failed message: to a delay queue, or parked after the last."""
    result = carried_headers(headers)
    result.update(
        {
            wire.H_DELAY: step.delay,
            wire.H_ATTEMPT: step.attempt,
            wire.H_REASON: ReasonCode.HANDLER_ERROR.value,
            wire.H_REASON_TEXT: error_text(exc),
            wire.H_ERROR_TYPE: error_type(exc),
        }
    )
    if step.parked:
        result.update(_origin(code))
    return result


def park_headers(
    headers: Mapping[str, Any] | None,
    *,
    reason: ReasonCode | str,
    text: str,
    code: str,
    path: str | None = None,
) -> dict[str, Any]:
    """Headers for parking a message no handler can take (no handler, undecodable)."""
    result = carried_headers(headers)
    result.update(
        {
            wire.H_DELAY: PARK_DELAY,
            wire.H_REASON: str(reason.value if isinstance(reason, ReasonCode) else reason),
            wire.H_REASON_TEXT: text[:MAX_REASON_TEXT],
            **_origin(code),
        }
    )
    if path:
        result[wire.H_REASON_PATH] = path
    return result


def _origin(code: str) -> dict[str, Any]:
    # Where the message was when it was given up on: the copy for ``code`` from the
    # router's deliveries. Operators see the recipient, as for the router's own dead letters.
    return {
        wire.H_RECIPIENT: code,
        wire.H_ORIGINAL_EXCHANGE: wire.DELIVER_EXCHANGE,
        wire.H_ORIGINAL_ROUTING_KEY: code,
    }


__all__ = [
    "DEFAULT_DELAYS",
    "MAX_REASON_TEXT",
    "PARK_DELAY",
    "RetryPolicy",
    "Step",
    "attempts_so_far",
    "carried_headers",
    "error_text",
    "error_type",
    "failure_headers",
    "next_step",
    "park_headers",
]
