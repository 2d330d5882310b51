"""The retry relay's decision: one message from ``hub.retry.due`` in, one hub publish out.

Pure, like ``liaison.core.decide``: bytes, AMQP properties, the directory and the clock
in; what to publish and what to audit out. The shell (``liaison.adapters.retry_relay``)
only moves bytes and confirms.

A participant parks a message on ``liaison.retry`` under its own code; after the
delay (or at once, for ``x-liaison-delay: dead``) it lands here. Only the
``user_id`` property says whose it is: RabbitMQ validated it when the participant
published, and dead-lettering keeps it. Routing keys (``CC``/``BCC`` included),
headers and the body are the participant's word and decide nothing:

- no ``user_id``, or one that is not a participant's user: **refused**, a dead
  letter published by the hub with the reason, audited as ``rejected``;
- ``x-liaison-delay: dead``: **parked**, forwarded to ``liaison.dead`` by the hub
  with headers it writes itself (who parked it, the reason it gave, cut to
  length), and audited as ``parked`` under the message's id;
- anything else is a due **retry**: back to the participant's own inbox only
  (``liaison.deliver``, routing key = its code, or ``<code>.urgent`` for a FLASH or
  IMMEDIATE copy: its band), with a fresh header table: the attempt count, sanitised,
  ``x-liaison-own-retry`` = its code, and the raised precedence it carried, if any.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from liaison.core import dedupe
from liaison.core.events import AuditEvent, EventKind, body_id, make_event
from liaison.core.values import Outgoing
from liaison.directory import Directory
from schemas import wire
from schemas.errors import ReasonCode

#: The actor the relay's audit events name.
ACTOR: Final = "retry-relay"
#: Longest reason text kept from a participant (the consumer SDK's own limit).
MAX_REASON_TEXT: Final = 1000
#: Longest error type, field path or short value kept from a participant.
MAX_SHORT: Final = 200
#: Longest message id kept from the body (the audit event's limit).
_ID_LIMIT: Final = 80
#: Longest delivery token passed back on an own retry (the hub's are 32 hex digits).
_TOKEN_LIMIT: Final = 64
#: Bodies larger than this are not parsed for their message id.
_PARSE_LIMIT: Final = 1024 * 1024
#: Highest attempt count passed on; anything else becomes 0.
_MAX_ATTEMPT: Final = 1000


class Verdict(StrEnum):
    """What the relay does with one message."""

    RETRY = "retry"
    PARK = "park"
    REFUSED = "refused"


@dataclass(frozen=True)
class Due:
    """One message taken from ``hub.retry.due``: the properties the relay reads, and the body."""

    body: bytes
    user_id: str | None
    headers: Mapping[str, Any]
    message_id: str | None = None
    type: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class RelayContext:
    """What the decision reads besides the message: fixed at start-up."""

    directory: Directory
    hub_user: str
    user_prefix: str = ""

    def participant(self, user_id: str | None) -> str | None:
        """The code of the participant whose RabbitMQ user is ``user_id``, if any."""
        if user_id is None or user_id == self.hub_user:
            return None
        if not user_id.startswith(self.user_prefix):
            return None
        code = user_id[len(self.user_prefix) :]
        return code if code in self.directory else None


@dataclass(frozen=True)
class RelayDecision:
    """The one publish the relay makes for a message, and the audit events it owes."""

    verdict: Verdict
    message_id: str
    out: Outgoing
    events: tuple[AuditEvent, ...]
    #: The participant the message came from (``None`` when refused without one).
    participant: str | None


def relay(due: Due, ctx: RelayContext, *, now: datetime) -> RelayDecision:
    """Decide the fate of one due message (see the module docstring)."""
    code = ctx.participant(due.user_id)
    message_id, type_ = _identify(due)
    if code is None:
        return _refused(due, ctx, message_id, type_, now)
    if _text(due.headers.get(wire.H_DELAY), 16) == wire.PARK_DELAY:
        return _parked(due, code, message_id, type_, now)
    headers: dict[str, Any] = {wire.H_OWN_RETRY: code, wire.H_ATTEMPT: _attempt(due.headers)}
    # The delivery token the participant's copy carried comes back with its retry, so it
    # can still acknowledge the message. Passing it on vouches for nothing: it is the
    # participant's own claim, and the router checks it against its secret on a receipt.
    token = _text(due.headers.get(wire.H_RECEIPT_TOKEN), _TOKEN_LIMIT)
    if token is not None:
        headers[wire.H_RECEIPT_TOKEN] = token
    precedence = retry_precedence(due)
    if _text(due.headers.get(wire.H_PRECEDENCE), 16) == precedence:
        headers[wire.H_PRECEDENCE] = precedence  # the raised precedence it was delivered at
    out = Outgoing(
        wire.DELIVER_EXCHANGE,
        wire.delivery_key(code, precedence),
        due.body,
        headers,
        message_id,
        type_,
        _text(due.correlation_id, _ID_LIMIT),
    )
    return RelayDecision(Verdict.RETRY, message_id, out, (), code)


def _parked(
    due: Due, code: str, message_id: str, type_: str | None, now: datetime
) -> RelayDecision:
    given = _text(due.headers.get(wire.H_REASON), 64)
    reason = given if given in _REASONS else ReasonCode.HANDLER_ERROR.value
    text = _text(due.headers.get(wire.H_REASON_TEXT), MAX_REASON_TEXT) or "(no reason given)"
    if given != reason:
        text = f"(reason {given!r} is not a reason code) {text}"[:MAX_REASON_TEXT]
    attempt = _attempt(due.headers)
    headers: dict[str, Any] = {
        wire.H_REASON: reason,
        wire.H_REASON_TEXT: text,
        wire.H_PARKED_BY: code,
        wire.H_RECIPIENT: code,
        wire.H_ORIGINAL_EXCHANGE: wire.RETRY_EXCHANGE,
        wire.H_ORIGINAL_ROUTING_KEY: code,
        wire.H_ATTEMPT: attempt,
    }
    for name in (wire.H_REASON_PATH, wire.H_ERROR_TYPE):
        value = _text(due.headers.get(name), MAX_SHORT)
        if value:
            headers[name] = value
    out = Outgoing(
        wire.DEAD_EXCHANGE,
        code,
        due.body,
        headers,
        message_id,
        type_,
        _text(due.correlation_id, _ID_LIMIT),
    )
    event = make_event(
        EventKind.PARKED,
        message_id,
        # One record per give-up: the same park redelivered to the relay is one fact.
        discriminator=dedupe.parked(code, attempt, due.body),
        at=now,
        type=type_,
        recipients=(code,),
        reason=reason,
        detail=f"{code} gave up on its copy after {attempt} attempt(s): {text}"[:2000],
        actor=code,
    )
    return RelayDecision(Verdict.PARK, message_id, out, (event,), code)


def _refused(
    due: Due, ctx: RelayContext, message_id: str, type_: str | None, now: datetime
) -> RelayDecision:
    if due.user_id is None:
        reason = ReasonCode.SENDER_MISMATCH
        text = (
            "parked on liaison.retry without a user_id property: the hub cannot tell whose "
            "it is; publish with user_id set to your RabbitMQ user"
        )
    else:
        reason = ReasonCode.UNKNOWN_SENDER
        text = (
            f"parked on liaison.retry by RabbitMQ user {due.user_id!r}, which is no "
            "participant's: only a participant's own retries are relayed"
        )
    headers: dict[str, Any] = {
        wire.H_REASON: reason.value,
        wire.H_REASON_TEXT: text,
        wire.H_ORIGINAL_EXCHANGE: wire.RETRY_EXCHANGE,
        # As the router records it: the validated publisher, "" when there was none.
        wire.H_ORIGINAL_USER: _text(due.user_id, 64) or "",
    }
    out = Outgoing(wire.DEAD_EXCHANGE, "", due.body, headers, message_id, type_, None)
    event = make_event(
        EventKind.REJECTED,
        message_id,
        # Apart from the router's "rejected" of the same id: a different fact.
        discriminator=dedupe.relay_refused(due.body),
        at=now,
        type=type_,
        reason=reason.value,
        detail=text,
        actor=ACTOR,
    )
    return RelayDecision(Verdict.REFUSED, message_id, out, (event,), None)


_REASONS: Final = frozenset(code.value for code in ReasonCode)


def _identify(due: Due) -> tuple[str, str | None]:
    """The message id and type to file the message under: the body's, else a digest.

    The body's envelope id, so that a give-up lands in that message's history
    (``audit show``); a body without one is filed under its digest. Never the
    AMQP ``message_id`` property alone: it need not match the body.
    """
    data = _json_object(due.body)
    found = data.get("message_id") if data else None
    message_id = found if isinstance(found, str) and 0 < len(found) <= _ID_LIMIT else None
    type_ = data.get("type") if data else None
    return (
        message_id or body_id(due.body),
        type_ if isinstance(type_, str) and 0 < len(type_) <= 64 else None,
    )


def retry_precedence(due: Due) -> str | None:
    """The precedence a retried copy goes back at, which picks its band.

    The ``x-liaison-precedence`` header the copy was delivered with (a routing rule
    raised it), else the body's own. Both are the participant's word, which is
    enough here: a retry only ever reaches the participant's own inboxes.
    """
    header = _text(due.headers.get(wire.H_PRECEDENCE), 16)
    if header in wire.URGENT_PRECEDENCES or header in wire.ROUTINE_PRECEDENCES:
        return header
    data = _json_object(due.body)
    own = data.get("precedence") if data else None
    return own if isinstance(own, str) else None


def _json_object(body: bytes) -> dict[str, Any] | None:
    if len(body) > _PARSE_LIMIT:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _attempt(headers: Mapping[str, Any]) -> int:
    value = headers.get(wire.H_ATTEMPT)
    if isinstance(value, bool):
        return 0
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        count = int(value) if isinstance(value, int | str) else 0
    except ValueError:
        return 0
    return count if 0 <= count <= _MAX_ATTEMPT else 0


def _text(value: Any, limit: int) -> str | None:
    """A header value as text (bytes decoded), cut to ``limit``; ``None`` when empty."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str) or not value:
        return None
    # Lone surrogates cannot be encoded in a header or an audit batch.
    return value.encode("utf-8", "replace").decode("utf-8")[:limit]


__all__ = ["ACTOR", "Due", "RelayContext", "RelayDecision", "Verdict", "relay"]
