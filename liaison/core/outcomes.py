"""The outcomes of a routing decision: deliveries, dead letters and audit events.

Pure functions: ``liaison.core.decide.decide`` calls ``routed`` (with
per-recipient clearance), ``refused`` or ``duplicate`` once it knows a message's
fate; the router's state machine calls ``unroutable`` for the copies the broker
returned (no inbox for the recipient).

Every audit event about a message that parsed is keyed by its id *and* its owner
(``<sender>:<content tag>``, see ``liaison.core.dedupe``): a message reusing
another's id, even one the router's window no longer remembers, gets records of
its own instead of being taken for the first one by the audit writer's "once per key".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from liaison.core import dedupe, relay
from liaison.core.events import AuditEvent, EventKind, RawJson, body_id, make_event
from liaison.core.relay import RelayRequest
from liaison.core.tokens import receipt_token
from liaison.core.values import Decision, Incoming, Outgoing, Refusal
from liaison.directory import Directory, Participant
from schemas import wire
from schemas.envelope import Envelope
from schemas.errors import ReasonCode
from schemas.receipts import ReceiptAnswered, ReceiptReceived, ReceiptRegistered
from schemas.types import Payload, Precedence


def arrival(incoming: Incoming, hub_user: str, now: datetime) -> int:
    """When the hub first received ``incoming``, in whole seconds: the AMQP ``timestamp``
    of everything the router publishes for it.

    ``now`` for a message a participant published (its own ``timestamp`` is its word,
    ignored). A message the hub's own user published (``dlq retry``, ``audit replay``;
    RabbitMQ validates ``user_id``) carries the first arrival on in its ``timestamp``:
    a letter retried days later is still dated by when it reached the hub, as the
    ledger's first ``received`` record dates it for ``procedures rebuild``. A carried
    time later than ``now``, or none, is ``now``.
    """
    current = int(now.timestamp())
    carried = incoming.timestamp
    if incoming.user_id == hub_user and type(carried) is int and 0 < carried <= current:
        return carried
    return current


def routed(
    incoming: Incoming,
    envelope: Envelope[Payload],
    directory: Directory,
    wanted: tuple[str, ...],
    now: datetime,
    request: RelayRequest | None,
    *,
    owner: str,
    secret: bytes,
    claimed: bool = False,
    message_id: str | None = None,
    raised: Precedence | None = None,
    stamp: int | None = None,
) -> Decision:
    # The caller has usually formatted the id already (a UUID's str() is not free).
    message_id = message_id or str(envelope.message_id)
    facts = envelope_facts(envelope)
    key = dedupe.routed(owner, request.operation if request is not None else "")
    deliveries: list[Outgoing] = []
    dead: list[Outgoing] = []
    events: list[AuditEvent] = [
        make_event(
            EventKind.RECEIVED,
            message_id,
            discriminator=key,
            at=now,
            **facts,
            envelope=RawJson(incoming.body),
        )
    ]
    if request is not None:
        actor = request.actor
        events.append(
            make_event(
                request.kind.event,
                message_id,
                discriminator=key,
                at=now,
                **facts,
                actor=actor,
                detail=f"{request.kind} operation {request.operation or '?'} requested by {actor}",
            )
        )
    # Only the hub's own relay may say "this is a retry/replay": a participant's copies
    # of these headers stay behind.
    relay_headers = relay.forwarded(incoming.headers) if request is not None else {}
    sender = envelope.sender
    # The body is the sender's (maybe signed): a raised precedence travels as a hub header.
    raised_header = {wire.H_PRECEDENCE: raised.value} if raised is not None else {}
    # The precedence band (inbox.<code> or inbox.<code>.urgent) follows the effective one.
    precedence = (raised or envelope.precedence).value
    delivered: list[str] = []
    # When the hub first received the message (``arrival``): the procedures service
    # dates a copy by it (its ``dated``), a retry or replay included.
    timestamp = int(now.timestamp()) if stamp is None else stamp
    for code in wanted:
        participant = directory.require(code)
        refusal = _copy_refusal(participant, envelope)
        if refusal is not None:
            reason, text, path = refusal
            dead.append(
                _dead(incoming, envelope, reason, text, path, timestamp, {wire.H_RECIPIENT: code})
            )
            events.append(
                make_event(
                    EventKind.REJECTED,
                    message_id,
                    discriminator=dedupe.per_recipient(key, code),
                    at=now,
                    **facts,
                    reason=reason.value,
                    detail=text,
                )
            )
            continue
        delivered.append(code)
        deliveries.append(
            Outgoing(
                exchange=wire.DELIVER_EXCHANGE,
                routing_key=wire.delivery_key(code, precedence),
                body=incoming.body,
                # One HMAC per copy: the recipient's proof for a receipt (liaison.core.tokens).
                headers={
                    **relay_headers,
                    **raised_header,
                    wire.H_RECEIPT_TOKEN: receipt_token(secret, message_id, code, sender),
                },
                message_id=message_id,
                type=envelope.type,
                correlation_id=str(envelope.correlation_id) if envelope.correlation_id else None,
                timestamp=timestamp,
            )
        )
    if delivered:
        recipients = {"recipients": tuple(delivered)}
        events.append(
            make_event(
                EventKind.ROUTED,
                message_id,
                discriminator=key,
                at=now,
                **{**facts, **recipients},
            )
        )
        events.append(
            make_event(
                EventKind.DELIVERED,
                message_id,
                discriminator=key,
                at=now,
                **{**facts, **recipients},
            )
        )
    if delivered and isinstance(envelope.payload, RECEIPTS):
        events.append(_receipt_event(envelope, tuple(delivered), now, key))
    if dead:
        events.append(
            make_event(
                EventKind.DEAD_LETTERED,
                message_id,
                discriminator=key,
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
        claimed=claimed,
    )


RECEIPTS = (ReceiptReceived, ReceiptRegistered, ReceiptAnswered)


def _receipt_event(
    envelope: Envelope[Payload], delivered: tuple[str, ...], now: datetime, key: str
) -> AuditEvent:
    """A ``receipt`` event in the *original* message's history: who acknowledged it, how."""
    receipt = envelope.payload
    assert isinstance(receipt, RECEIPTS)
    kind = envelope.type.removeprefix("receipt.")
    detail = f"{kind} by {envelope.sender} (receipt {envelope.message_id})"
    if isinstance(receipt, ReceiptRegistered):
        detail += f", registry number {receipt.registry_number}"
    elif isinstance(receipt, ReceiptAnswered):
        detail += f", answered by {receipt.answer_message_id}"
    return make_event(
        EventKind.RECEIPT,
        str(receipt.original_message_id),
        discriminator=dedupe.receipt(str(envelope.message_id), key),
        at=now,
        type=envelope.type,
        sender=envelope.sender,
        recipients=delivered,
        detail=detail,
    )


def envelope_facts(envelope: Envelope[Payload]) -> dict[str, Any]:
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
    stamp: int,
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
        # Carried by `dlq retry`, so that a retried letter keeps its first arrival.
        timestamp=stamp,
    )


def _copy_refusal(
    participant: Participant, envelope: Envelope[Payload]
) -> tuple[ReasonCode, str, str] | None:
    """Why the copy for ``participant`` is refused (reason, text, field), or ``None``."""
    if participant.clearance.rank < envelope.classification.rank:
        return (
            ReasonCode.CLEARANCE,
            f"{participant.code!r} is cleared to {participant.clearance.value}, the message "
            f"is {envelope.classification.value}",
            "classification",
        )
    allowed = participant.receives_from
    if allowed is not None and envelope.sender not in allowed:
        return (
            ReasonCode.RECIPIENT_CLOSED,
            f"{participant.code!r} receives only from {', '.join(allowed)}, not from "
            f"{envelope.sender!r}",
            "recipients",
        )
    return None


def refused(
    incoming: Incoming,
    envelope: Envelope[Payload] | None,
    refusal: Refusal,
    now: datetime,
    *,
    stamp: int | None = None,
) -> Decision:
    snapshot: RawJson | None
    if envelope is not None:
        message_id = str(envelope.message_id)
        facts: dict[str, Any] = envelope_facts(envelope)
        snapshot = RawJson(incoming.body)
    else:
        message_id = body_id(incoming.body)
        facts = _salvage(incoming.body)
        snapshot = None
    text = refusal.text
    arrived = int(now.timestamp()) if stamp is None else stamp
    dead = _dead(incoming, envelope, refusal.reason, text, refusal.path, arrived)
    common = {**facts, "reason": refusal.reason.value}
    # Keyed by the body too: a refused copy must never shadow the records of a
    # genuine message that carries the same id (a spoofer could otherwise do so);
    # and by the reason: the same bytes refused later for another reason (expired
    # on a redelivery) are a new fact, not a repeat of the first.
    tag = dedupe.refused(
        dedupe.owner(envelope.sender, incoming.body) if envelope is not None else None,
        refusal.reason.value,
    )
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


def duplicate(envelope: Envelope[Payload], message_id: str, owner: str, now: datetime) -> Decision:
    """The same sender's same bytes again within the window: dropped, audited once."""
    event = make_event(
        EventKind.DUPLICATE,
        message_id,
        discriminator=owner,
        at=now,
        **envelope_facts(envelope),
        detail="already routed within the duplicate window; dropped",
    )
    return Decision(message_id, envelope.type, envelope.sender, (), (), (event,), False)


def is_duplicate(decision: Decision) -> bool:
    """Whether ``decision`` dropped its message as a duplicate (see ``duplicate``)."""
    return any(e.event is EventKind.DUPLICATE for e in decision.events)


@dataclass(frozen=True)
class Unroutable:
    """What the copies the broker returned (no inbox for the recipient) turn into."""

    #: The decision's events, "delivered" no longer claiming the returned copies.
    events: tuple[AuditEvent, ...]
    #: One dead letter (reason ``unroutable``) per returned copy.
    dead_letters: tuple[Outgoing, ...]
    #: One ``dead_lettered`` event per returned copy.
    extra_events: tuple[AuditEvent, ...]


def unroutable(decision: Decision, returned: Sequence[Outgoing]) -> Unroutable:
    """The dead letters and corrected events for ``decision``'s ``returned`` deliveries."""
    # A copy's routing key names its band (<code> or <code>.urgent): record the code.
    recipients = {wire.delivery_recipient(out.routing_key) for out in returned}
    # "delivered" was written at decision time: it must not claim the returned copies.
    events = tuple(
        e._replace(recipients=tuple(r for r in e.recipients if r not in recipients))
        if e.event is EventKind.DELIVERED
        else e
        for e in decision.events
        if not (e.event is EventKind.DELIVERED and set(e.recipients) <= recipients)
    )
    dead: list[Outgoing] = []
    extra: list[AuditEvent] = []
    for out in returned:
        code = wire.delivery_recipient(out.routing_key)
        text = f"no inbox for {out.routing_key!r} on the broker (topology out of date?)"
        headers = {
            **{k: v for k, v in out.headers.items() if k != wire.H_RECEIPT_TOKEN},
            wire.H_REASON: ReasonCode.UNROUTABLE.value,
            wire.H_REASON_TEXT: text,
            wire.H_RECIPIENT: code,
            wire.H_ORIGINAL_EXCHANGE: wire.DELIVER_EXCHANGE,
            wire.H_ORIGINAL_ROUTING_KEY: out.routing_key,
        }
        dead.append(
            Outgoing(
                wire.DEAD_EXCHANGE,
                code,
                out.body,
                headers,
                out.message_id,
                out.type,
                out.correlation_id,
                out.timestamp,  # the message's first arrival, for a retry to carry on
            )
        )
        extra.append(
            make_event(
                EventKind.DEAD_LETTERED,
                decision.message_id,
                discriminator=dedupe.unroutable(
                    dedupe.owner(str(decision.sender), out.body),
                    relay.operation_of(out.headers),
                    code,
                ),
                type=decision.type,
                sender=decision.sender,
                recipients=(code,),
                reason=ReasonCode.UNROUTABLE.value,
                detail=text,
            )
        )
    return Unroutable(events, tuple(dead), tuple(extra))


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
