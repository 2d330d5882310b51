"""The relay protocol: how the hub's own user re-publishes a message through the router.

An operator retrying a dead letter (``liaison dlq retry``) and an auditor replaying
a message from the ledger (``liaison audit replay``) both publish the original
bytes to ``liaison.ingress`` as the hub's user (RabbitMQ validates ``user_id``),
with headers saying what this is: the message it relays, who asked, the
operation's id, and optionally the recipients it is for. The router trusts these
headers only from the hub's user: it then skips the checks that judged the first
copy (identity, window, receipt token; time too, for a replay), audits
``retried`` or ``replayed``, and passes the relay headers on to the copies it
delivers. From anyone else they are ignored, and never passed on.

Both sides live here: ``request_headers`` builds them, ``parse`` reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from liaison.core.events import EventKind
from schemas import wire


class Relay(StrEnum):
    """What a relayed message is."""

    #: An operator's retry of a dead letter (``x-liaison-retry-of``).
    RETRY = "retry"
    #: An auditor's replay from the ledger (``x-liaison-replay-of``).
    REPLAY = "replay"

    @property
    def event(self) -> EventKind:
        """The audit event the router writes for it."""
        return EventKind.RETRIED if self is Relay.RETRY else EventKind.REPLAYED


#: Which header names the message a relay is of; also what it is.
_OF: Final = {Relay.RETRY: wire.H_RETRY_OF, Relay.REPLAY: wire.H_REPLAY_OF}
#: Which header names the recipients a relay is for.
_TO: Final = {Relay.RETRY: wire.H_RETRY_TO, Relay.REPLAY: wire.H_REPLAY_TO}
#: The headers a relayed message's copies carry on to their recipients.
FORWARDED: Final = frozenset({wire.H_RETRY_OF, wire.H_REPLAY_OF, wire.H_ACTOR, wire.H_OPERATION})


@dataclass(frozen=True, slots=True)
class RelayRequest:
    """The relay headers of one message from the hub's user, as the router reads them."""

    kind: Relay
    #: The operation's id (``""`` when the header is missing).
    operation: str
    #: Who asked (``"hub"`` when the header is missing).
    actor: str
    #: The recipients it is for, when the request names them (``None``: the envelope's).
    to: tuple[str, ...] | None


def request_headers(
    kind: Relay,
    message_id: str,
    *,
    actor: str,
    operation: str,
    to: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The headers that ask the router to relay ``message_id``, for ``to`` if given.

    A retry names its recipients comma-separated (only the copies that failed are
    retried); a replay names one recipient at most.
    """
    headers: dict[str, Any] = {
        _OF[kind]: message_id,
        wire.H_ACTOR: actor,
        wire.H_OPERATION: operation,
    }
    if to is not None:
        headers[_TO[kind]] = ",".join(to)
    return headers


def kind_of(headers: Mapping[str, Any], user_id: str | None, hub_user: str) -> Relay | None:
    """The relay a message asks for, trusted only from the hub's own user; else ``None``."""
    if user_id != hub_user:
        return None
    if wire.H_REPLAY_OF in headers:
        return Relay.REPLAY
    if wire.H_RETRY_OF in headers:
        return Relay.RETRY
    return None


def parse(headers: Mapping[str, Any], user_id: str | None, hub_user: str) -> RelayRequest | None:
    """The relay request of a message (``None``: not a relay, or not from the hub's user)."""
    kind = kind_of(headers, user_id, hub_user)
    if kind is None:
        return None
    to: tuple[str, ...] | None = None
    if kind is Relay.REPLAY and wire.H_REPLAY_TO in headers:
        to = (str(headers[wire.H_REPLAY_TO]),)
    elif kind is Relay.RETRY and wire.H_RETRY_TO in headers:
        to = tuple(code for code in str(headers[wire.H_RETRY_TO]).split(",") if code)
    return RelayRequest(kind, operation_of(headers), str(headers.get(wire.H_ACTOR, "hub")), to)


def operation_of(headers: Mapping[str, Any]) -> str:
    """The relay operation's id in ``headers`` (``""`` if none)."""
    return str(headers.get(wire.H_OPERATION, ""))


def forwarded(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The relay headers a relayed message's copies carry on, in their order."""
    return {k: v for k, v in headers.items() if k in FORWARDED}
