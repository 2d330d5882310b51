"""The routing decision: one ingress message in, deliveries, dead letters and audit events out.

A pure function of its inputs (bytes, AMQP properties, directory, rules, clock,
the duplicate window's answer); the I/O shell in ``liaison.router`` only moves
bytes and confirms. Order of checks, each refusing with its own reason:

1. decode (size and nesting caps, JSON, registry, schema) → the contract's reasons;
2. identity: the AMQP ``user_id`` (validated by RabbitMQ) is the envelope's
   sender, or the hub's own user relaying a retry or replay;
3. the directory knows the sender and lets it send this type;
4. signature, when the sender's directory entry has a public key;
5. time: not expired, not dated in the future beyond the allowed skew;
6. duplicates within the window (dropped, audited, not dead-lettered);
7. recipients: explicit ones must exist; routing rules add copies; each
   recipient's clearance must reach the classification, or that copy is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from liaison.audit.events import AuditEvent, EventKind, RawJson, body_id, make_event
from liaison.directory import Directory
from liaison.rules import Rules
from schemas import wire
from schemas.envelope import Envelope
from schemas.errors import ContractError, ReasonCode
from schemas.registry import Registry
from schemas.signing import public_key_from_b64, verify_data
from schemas.types import Payload


@dataclass(frozen=True)
class Incoming:
    """One message taken from ``hub.ingress``: its body and the AMQP facts about it."""

    body: bytes
    user_id: str | None
    routing_key: str = ""
    headers: Mapping[str, Any] = field(default_factory=dict)
    property_message_id: str | None = None


@dataclass(frozen=True)
class Outgoing:
    """A publish the shell must have confirmed before it acks the ingress message."""

    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    type: str | None
    correlation_id: str | None = None


@dataclass(frozen=True)
class Decision:
    """What to do with one ingress message."""

    message_id: str
    type: str | None
    sender: str | None
    deliveries: tuple[Outgoing, ...]
    dead_letters: tuple[Outgoing, ...]
    events: tuple[AuditEvent, ...]
    #: True when the message was routed (the id enters the duplicate window).
    routed: bool
    #: The refusal's reason when the whole message was refused.
    reason: ReasonCode | None = None


@dataclass(frozen=True)
class RoutingContext:
    """Everything the decision reads besides the message: fixed at start-up."""

    registry: Registry
    directory: Directory
    rules: Rules
    hub_user: str
    user_prefix: str = ""
    max_bytes: int = 256 * 1024
    max_depth: int = 32
    max_clock_skew: timedelta = timedelta(minutes=5)


class _Refusal(Exception):  # noqa: N818 - control flow inside this module only
    def __init__(self, reason: ReasonCode, text: str, path: str | None = None) -> None:
        super().__init__(text)
        # Text and path may quote the input (a duplicate key is its own path): escape
        # what UTF-8 cannot carry, or the header and the audit batch cannot be encoded.
        self.reason, self.text = reason, _encodable(text)
        self.path = _encodable(path) if path is not None else None


def _encodable(text: str) -> str:
    """``text`` with lone surrogates (from JSON ``\\ud800`` escapes) backslash-escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def decide(
    incoming: Incoming,
    ctx: RoutingContext,
    *,
    now: datetime,
    seen: Callable[[str], bool] = lambda _id: False,
) -> Decision:
    """Decide the fate of one ingress message (see the module docstring for the order)."""
    try:
        envelope, data = ctx.registry.decode_with_data(
            incoming.body, max_bytes=ctx.max_bytes, max_depth=ctx.max_depth
        )
    except ContractError as exc:
        return _refuse(incoming, None, _Refusal(exc.reason, exc.message, exc.path), now)
    relay = _relay_kind(incoming, ctx)
    try:
        _check_identity(incoming, envelope, ctx, relay)
        _check_sender(envelope, data, ctx)
        if relay != "replay":
            _check_time(envelope, ctx, now)
    except _Refusal as refusal:
        return _refuse(incoming, envelope, refusal, now)
    message_id = str(envelope.message_id)
    operation = str(incoming.headers.get(wire.H_OPERATION, "")) if relay else ""
    if not relay and seen(f"{envelope.sender}/{message_id}"):
        event = make_event(
            EventKind.DUPLICATE,
            message_id,
            discriminator=_body_tag(incoming.body),
            at=now,
            **_facts(envelope),
            detail="already routed within the duplicate window; dropped",
        )
        return Decision(message_id, envelope.type, envelope.sender, (), (), (event,), False)
    try:
        wanted = _recipients(envelope, ctx, incoming, relay)
    except _Refusal as refusal:
        return _refuse(incoming, envelope, refusal, now)
    return _route(incoming, envelope, ctx, wanted, now, relay, operation)


@lru_cache(maxsize=1024)
def _public_key(b64: str) -> Ed25519PublicKey:
    return public_key_from_b64(b64)


def _relay_kind(incoming: Incoming, ctx: RoutingContext) -> str:
    """'retry' or 'replay' when the hub's own user re-publishes; '' otherwise."""
    if incoming.user_id != ctx.hub_user:
        return ""
    if wire.H_REPLAY_OF in incoming.headers:
        return "replay"
    if wire.H_RETRY_OF in incoming.headers:
        return "retry"
    return ""


def _check_identity(
    incoming: Incoming, envelope: Envelope[Payload], ctx: RoutingContext, relay: str
) -> None:
    if relay:
        return
    if incoming.user_id is None:
        raise _Refusal(
            ReasonCode.SENDER_MISMATCH,
            "no user_id property: publish with user_id set to your RabbitMQ user name",
        )
    expected = ctx.user_prefix + envelope.sender
    if incoming.user_id != expected:
        raise _Refusal(
            ReasonCode.SENDER_MISMATCH,
            f"published by RabbitMQ user {incoming.user_id!r} but the envelope's sender is "
            f"{envelope.sender!r} (expected user {expected!r})",
            "sender",
        )


def _check_sender(envelope: Envelope[Payload], data: dict[str, Any], ctx: RoutingContext) -> None:
    participant = ctx.directory.get(envelope.sender)
    if participant is None:
        raise _Refusal(
            ReasonCode.UNKNOWN_SENDER, f"{envelope.sender!r} is not in the directory", "sender"
        )
    if not participant.can_send(envelope.type):
        raise _Refusal(
            ReasonCode.TYPE_NOT_ALLOWED,
            f"the directory does not let {envelope.sender!r} send {envelope.type!r}",
            "type",
        )
    if participant.public_key is not None:
        if envelope.signature is None:
            raise _Refusal(
                ReasonCode.SIGNATURE_MISSING,
                f"{envelope.sender!r} signs its messages and this one carries no signature",
                "signature",
            )
        if not verify_data(data, _public_key(participant.public_key)):
            raise _Refusal(
                ReasonCode.SIGNATURE_INVALID,
                f"the signature does not verify with {envelope.sender!r}'s public key",
                "signature",
            )


def _check_time(envelope: Envelope[Payload], ctx: RoutingContext, now: datetime) -> None:
    if envelope.expires_at is not None and envelope.expires_at <= now:
        raise _Refusal(
            ReasonCode.EXPIRED,
            f"expired at {envelope.expires_at.isoformat()}, received {now.isoformat()}",
            "expires_at",
        )
    if envelope.created_at > now + ctx.max_clock_skew:
        raise _Refusal(
            ReasonCode.FUTURE_DATED,
            f"created_at {envelope.created_at.isoformat()} is in the future "
            f"(allowed skew {ctx.max_clock_skew.total_seconds():.0f} s)",
            "created_at",
        )


def _recipients(
    envelope: Envelope[Payload], ctx: RoutingContext, incoming: Incoming, relay: str
) -> tuple[str, ...]:
    if relay == "replay" and wire.H_REPLAY_TO in incoming.headers:
        explicit: tuple[str, ...] = (str(incoming.headers[wire.H_REPLAY_TO]),)
        extra: tuple[str, ...] = ()
    else:
        explicit = envelope.recipients
        extra = ctx.rules.extra_recipients(
            envelope.type, envelope.sender, envelope.precedence, envelope.classification
        )
    for code in explicit:
        if code not in ctx.directory:
            raise _Refusal(
                ReasonCode.UNKNOWN_RECIPIENT,
                f"recipient {code!r} is not in the directory",
                "recipients",
            )
    wanted = tuple(dict.fromkeys((*explicit, *extra)))
    if not wanted:
        raise _Refusal(
            ReasonCode.NO_RECIPIENTS,
            "no explicit recipients and no routing rule applies",
            "recipients",
        )
    return wanted


def _route(
    incoming: Incoming,
    envelope: Envelope[Payload],
    ctx: RoutingContext,
    wanted: tuple[str, ...],
    now: datetime,
    relay: str,
    operation: str,
) -> Decision:
    message_id = str(envelope.message_id)
    facts = _facts(envelope)
    deliveries: list[Outgoing] = []
    dead: list[Outgoing] = []
    events: list[AuditEvent] = [
        make_event(
            EventKind.RECEIVED,
            message_id,
            discriminator=operation,
            at=now,
            **facts,
            envelope=RawJson(incoming.body),
        )
    ]
    if relay:
        kind = EventKind.REPLAYED if relay == "replay" else EventKind.RETRIED
        actor = str(incoming.headers.get(wire.H_ACTOR, "hub"))
        events.append(
            make_event(
                kind,
                message_id,
                discriminator=operation,
                at=now,
                **facts,
                actor=actor,
                detail=f"{relay} operation {operation or '?'} requested by {actor}",
            )
        )
    # Only the hub's own relay may say "this is a retry/replay": a participant's copies
    # of these headers stay behind.
    relay_headers = (
        {k: v for k, v in incoming.headers.items() if k in _RELAY_HEADERS} if relay else {}
    )
    delivered: list[str] = []
    for code in wanted:
        participant = ctx.directory.require(code)
        if participant.clearance.rank < envelope.classification.rank:
            text = (
                f"{code!r} is cleared to {participant.clearance.value}, the message is "
                f"{envelope.classification.value}"
            )
            dead.append(
                _dead(
                    incoming,
                    envelope,
                    ReasonCode.CLEARANCE,
                    text,
                    "classification",
                    {wire.H_RECIPIENT: code},
                )
            )
            events.append(
                make_event(
                    EventKind.REJECTED,
                    message_id,
                    discriminator=f"{code}{operation}",
                    at=now,
                    **facts,
                    reason=ReasonCode.CLEARANCE.value,
                    detail=text,
                )
            )
            continue
        delivered.append(code)
        deliveries.append(
            Outgoing(
                exchange=wire.DELIVER_EXCHANGE,
                routing_key=code,
                body=incoming.body,
                headers=relay_headers,
                message_id=message_id,
                type=envelope.type,
                correlation_id=str(envelope.correlation_id) if envelope.correlation_id else None,
            )
        )
    if delivered:
        recipients = {"recipients": tuple(delivered)}
        events.append(
            make_event(
                EventKind.ROUTED,
                message_id,
                discriminator=operation,
                at=now,
                **{**facts, **recipients},
            )
        )
        events.append(
            make_event(
                EventKind.DELIVERED,
                message_id,
                discriminator=operation,
                at=now,
                **{**facts, **recipients},
            )
        )
    if dead:
        events.append(
            make_event(
                EventKind.DEAD_LETTERED,
                message_id,
                discriminator=operation,
                at=now,
                **facts,
                reason=ReasonCode.CLEARANCE.value,
                detail=f"{len(dead)} copy(ies) refused for clearance",
            )
        )
    return Decision(
        message_id,
        envelope.type,
        envelope.sender,
        tuple(deliveries),
        tuple(dead),
        tuple(events),
        routed=bool(delivered) or bool(dead),
    )


_RELAY_HEADERS = frozenset({wire.H_RETRY_OF, wire.H_REPLAY_OF, wire.H_ACTOR, wire.H_OPERATION})


def _facts(envelope: Envelope[Payload]) -> dict[str, Any]:
    return {
        "type": envelope.type,
        "sender": envelope.sender,
        "recipients": envelope.recipients,
    }


def _dead(
    incoming: Incoming,
    envelope: Envelope[Payload] | None,
    reason: ReasonCode,
    text: str,
    path: str | None,
    extra: Mapping[str, Any] | None = None,
) -> Outgoing:
    headers: dict[str, Any] = {
        wire.H_REASON: reason.value,
        wire.H_REASON_TEXT: text[:1000],
        wire.H_ORIGINAL_EXCHANGE: wire.INGRESS_EXCHANGE,
        wire.H_ORIGINAL_ROUTING_KEY: incoming.routing_key,
        wire.H_ORIGINAL_USER: incoming.user_id or "",
        **(extra or {}),
    }
    if path:
        headers[wire.H_REASON_PATH] = path
    return Outgoing(
        exchange=wire.DEAD_EXCHANGE,
        routing_key=incoming.routing_key,
        body=incoming.body,
        headers=headers,
        message_id=str(envelope.message_id) if envelope else incoming.property_message_id,
        type=envelope.type if envelope else None,
    )


def _refuse(
    incoming: Incoming,
    envelope: Envelope[Payload] | None,
    refusal: _Refusal,
    now: datetime,
) -> Decision:
    snapshot: RawJson | None
    if envelope is not None:
        message_id = str(envelope.message_id)
        facts: dict[str, Any] = _facts(envelope)
        snapshot = RawJson(incoming.body)
    else:
        message_id = body_id(incoming.body)
        facts = _salvage(incoming.body)
        snapshot = None
    text = refusal.text
    dead = _dead(incoming, envelope, refusal.reason, text, refusal.path)
    common = {**facts, "reason": refusal.reason.value}
    # Keyed by the body too: a refused copy must never shadow the records of a
    # genuine message that carries the same id (a spoofer could otherwise do so).
    tag = _body_tag(incoming.body) if envelope is not None else ""
    events = (
        make_event(
            EventKind.RECEIVED, message_id, discriminator=tag, at=now, **facts, envelope=snapshot
        ),
        make_event(
            EventKind.REJECTED,
            message_id,
            discriminator=tag,
            at=now,
            **common,
            detail=(f"{refusal.path}: {text}" if refusal.path else text)[:2000],
        ),
        make_event(EventKind.DEAD_LETTERED, message_id, discriminator=tag, at=now, **common),
    )
    return Decision(
        message_id,
        facts.get("type"),
        facts.get("sender"),
        (),
        (dead,),
        events,
        routed=False,
        reason=refusal.reason,
    )


def _body_tag(body: bytes) -> str:
    """A short digest of the body, telling apart different messages that share an id."""
    return body_id(body)[7:23]


def _salvage(body: bytes) -> dict[str, Any]:
    """Best-effort type and sender of a message that failed validation, for the audit trail."""
    if len(body) > 64 * 1024:
        return {}
    try:
        # Strict UTF-8 first: json.loads(bytes) would guess UTF-16/32 and let
        # surrogates through, which the audit batch cannot encode.
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    found: dict[str, Any] = {}
    for key in ("type", "sender"):
        value = data.get(key)
        if isinstance(value, str) and len(value) <= 64 and value.isprintable():
            found[key] = value
    return found
