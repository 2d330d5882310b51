"""The routing decision: one ingress message in, deliveries, dead letters and audit events out.

A function of its inputs (bytes, AMQP properties, directory, rules, clock) and
of one piece of state passed in, the duplicate window, which it reads and
claims; the I/O shell in ``liaison.adapters.pika_router`` only moves bytes and confirms.
Order of checks, each refusing with its own reason:

1. decode (size and nesting caps, JSON, registry, schema) → the contract's reasons;
2. identity: the AMQP ``user_id`` (validated by RabbitMQ) is the envelope's
   sender, or the hub's own user relaying a retry or replay;
3. the directory knows the sender and lets it send this type;
4. signature, when the sender's directory entry has a public key;
5. time: not expired, not dated in the future beyond the allowed skew;
6. receipts: the receipt carries the delivery token of the copy it acknowledges;
7. message ids within the window: the same sender's same bytes again are a
   duplicate (dropped, audited); the id on other bytes or from another sender is
   refused as ``id_reused``;
8. recipients: explicit ones must exist; routing rules add copies; each
   recipient's clearance must reach the classification, or that copy is refused.

Anything else that goes wrong while deciding is a bug: the message is refused as
``internal_error`` (dead-lettered, audited), never handed back to the broker to
fail again until the delivery limit drops it without a trace.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from liaison.core import dedupe, relay
from liaison.core.outcomes import RECEIPTS, arrival, duplicate, refused, routed
from liaison.core.relay import Relay, RelayRequest
from liaison.core.rules import Rules
from liaison.core.tokens import receipt_token, token_matches
from liaison.core.values import Decision, Incoming, Outgoing, Refusal
from liaison.core.window import IdWindow
from liaison.directory import Directory
from schemas import wire
from schemas.envelope import Envelope
from schemas.errors import ContractError, ReasonCode
from schemas.registry import Registry
from schemas.signing import public_key_from_b64, verify_data
from schemas.types import Payload, Precedence


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
    #: The secret behind the delivery tokens (``liaison.core.tokens``).
    receipt_secret: bytes = field(kw_only=True, repr=False)


def decide(
    incoming: Incoming,
    ctx: RoutingContext,
    *,
    now: datetime,
    window: IdWindow | None = None,
) -> Decision:
    """Decide the fate of one ingress message (see the module docstring for the order).

    Never raises. A routed message claims its id in ``window`` (when given).
    """
    stamp = arrival(incoming, ctx.hub_user, now)
    try:
        envelope, data = ctx.registry.decode_with_data(
            incoming.body, max_bytes=ctx.max_bytes, max_depth=ctx.max_depth
        )
    except ContractError as exc:
        return refused(incoming, None, Refusal(exc.reason, exc.message, exc.path), now, stamp=stamp)
    except Exception as exc:  # the last line of defence: see the docstring
        return _internal_error(incoming, None, exc, now, stamp)
    try:
        return _decide(incoming, envelope, data, ctx, now, window, stamp)
    except Exception as exc:  # the last line of defence: see the docstring
        return _internal_error(incoming, envelope, exc, now, stamp)


def _decide(
    incoming: Incoming,
    envelope: Envelope[Payload],
    data: dict[str, Any],
    ctx: RoutingContext,
    now: datetime,
    window: IdWindow | None,
    stamp: int,
) -> Decision:
    request = relay.parse(incoming.headers, incoming.user_id, ctx.hub_user)
    try:
        _check_identity(incoming, envelope, ctx, request)
        _check_sender(envelope, data, ctx)
        if request is None or request.kind is not Relay.REPLAY:
            _check_time(envelope, ctx, now, redelivered=incoming.redelivered)
        if request is None and isinstance(envelope.payload, RECEIPTS):
            _check_receipt(incoming, envelope, ctx)
    except Refusal as refusal:
        return refused(incoming, envelope, refusal, now, stamp=stamp)
    message_id = str(envelope.message_id)
    # Who sent which bytes: part of every audit key, so that two messages sharing an
    # id never share a record, and what the window remembers for the id.
    owner = dedupe.owner(envelope.sender, incoming.body)
    known = window.owner(message_id) if window is not None and request is None else None
    if known == owner:
        return duplicate(envelope, message_id, owner, now)
    if known is not None:
        first = known.split(":", 1)[0]
        whose = "the same sender" if first == envelope.sender else f"{first!r}"
        reused = Refusal(
            ReasonCode.ID_REUSED,
            f"message id {message_id} was already used by {whose} for another message: "
            "every message needs a new id",
            "message_id",
        )
        return refused(incoming, envelope, reused, now, stamp=stamp)
    try:
        wanted, raised = _recipients(envelope, ctx, request)
    except Refusal as refusal:
        return refused(incoming, envelope, refusal, now, stamp=stamp)
    claim = window is not None and request is None
    decision = routed(
        incoming,
        envelope,
        ctx.directory,
        wanted,
        now,
        request,
        owner=owner,
        secret=ctx.receipt_secret,
        claimed=claim,
        message_id=message_id,
        raised=raised,
        stamp=stamp,
    )
    if claim:
        assert window is not None
        window.claim(message_id, owner)
    return decision


def _internal_error(
    incoming: Incoming,
    envelope: Envelope[Payload] | None,
    exc: Exception,
    now: datetime,
    stamp: int,
) -> Decision:
    """A refusal for a failure of the hub's own (a bug), saying where it happened."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    text = f"the hub failed to decide this message: {type(exc).__name__}: {exc}"[:800] + where
    refusal = Refusal(ReasonCode.INTERNAL_ERROR, text)
    try:
        return refused(incoming, envelope, refusal, now, stamp=stamp)
    except Exception:  # the envelope itself may be what breaks: leave it out
        return refused(incoming, None, refusal, now, stamp=stamp)


@lru_cache(maxsize=1024)
def _public_key(b64: str) -> Ed25519PublicKey:
    return public_key_from_b64(b64)


def _check_identity(
    incoming: Incoming,
    envelope: Envelope[Payload],
    ctx: RoutingContext,
    request: RelayRequest | None,
) -> None:
    if request is not None:
        return
    if incoming.user_id is None:
        raise Refusal(
            ReasonCode.SENDER_MISMATCH,
            "no user_id property: publish with user_id set to your RabbitMQ user name",
        )
    expected = ctx.user_prefix + envelope.sender
    if incoming.user_id != expected:
        raise Refusal(
            ReasonCode.SENDER_MISMATCH,
            f"published by RabbitMQ user {incoming.user_id!r} but the envelope's sender is "
            f"{envelope.sender!r} (expected user {expected!r})",
            "sender",
        )


def _check_sender(envelope: Envelope[Payload], data: dict[str, Any], ctx: RoutingContext) -> None:
    participant = ctx.directory.get(envelope.sender)
    if participant is None:
        raise Refusal(
            ReasonCode.UNKNOWN_SENDER, f"{envelope.sender!r} is not in the directory", "sender"
        )
    if not participant.can_send(envelope.type):
        raise Refusal(
            ReasonCode.TYPE_NOT_ALLOWED,
            f"the directory does not let {envelope.sender!r} send {envelope.type!r}",
            "type",
        )
    if not participant.may_use(envelope.precedence):
        raise Refusal(
            ReasonCode.PRECEDENCE_NOT_ALLOWED,
            f"the directory lets {envelope.sender!r} send at most "
            f"{participant.max_precedence.value}; this message is {envelope.precedence.value}",
            "precedence",
        )
    if participant.public_key is not None:
        if envelope.signature is None:
            raise Refusal(
                ReasonCode.SIGNATURE_MISSING,
                f"{envelope.sender!r} signs its messages and this one carries no signature",
                "signature",
            )
        if not verify_data(data, _public_key(participant.public_key)):
            raise Refusal(
                ReasonCode.SIGNATURE_INVALID,
                f"the signature does not verify with {envelope.sender!r}'s public key",
                "signature",
            )


def _check_receipt(incoming: Incoming, envelope: Envelope[Payload], ctx: RoutingContext) -> None:
    """A receipt counts only from a participant the original was delivered to."""
    receipt = envelope.payload
    assert isinstance(receipt, RECEIPTS)
    if len(envelope.recipients) != 1:
        raise Refusal(
            ReasonCode.RECEIPT_NOT_DELIVERED,
            "a receipt goes to the original message's sender alone: exactly one recipient",
            "recipients",
        )
    original = str(receipt.original_message_id)
    expected = receipt_token(ctx.receipt_secret, original, envelope.sender, envelope.recipients[0])
    presented = incoming.headers.get(wire.H_RECEIPT_TOKEN)
    if not token_matches(expected, presented):
        missing = "carries no" if presented is None else "carries a wrong"
        raise Refusal(
            ReasonCode.RECEIPT_NOT_DELIVERED,
            f"the receipt for {original} {missing} {wire.H_RECEIPT_TOKEN} header: only a "
            f"participant the message from {envelope.recipients[0]!r} was delivered to may "
            "acknowledge it, with the token its copy carried",
            "payload.original_message_id",
        )


def _check_time(
    envelope: Envelope[Payload], ctx: RoutingContext, now: datetime, *, redelivered: bool
) -> None:
    # A redelivered message may have been routed already, its copies in inboxes while its
    # audit batch was lost with the connection: refusing it now as expired would have the
    # ledger deny a delivery that happened. Its expiry was checked when it first arrived
    # (or it was never decided, and goes through late rather than unrecorded).
    expires_at = envelope.expires_at
    if not redelivered and expires_at is not None and expires_at <= now:
        raise Refusal(
            ReasonCode.EXPIRED,
            f"expired at {expires_at.isoformat()}, received {now.isoformat()}",
            "expires_at",
        )
    if envelope.created_at > now + ctx.max_clock_skew:
        raise Refusal(
            ReasonCode.FUTURE_DATED,
            f"created_at {envelope.created_at.isoformat()} is in the future "
            f"(allowed skew {ctx.max_clock_skew.total_seconds():.0f} s)",
            "created_at",
        )


def _recipients(
    envelope: Envelope[Payload], ctx: RoutingContext, request: RelayRequest | None
) -> tuple[tuple[str, ...], Precedence | None]:
    """Who gets a copy, and the precedence a content rule raised the delivery to (if any)."""
    raised: Precedence | None = None
    content_addresses = False
    explicit: tuple[str, ...]
    extra: tuple[str, ...]
    if request is not None and request.to is not None:
        # A replay to one recipient; a retry of only the copies that failed (the
        # others were delivered): no rule adds recipients, but a content rule still
        # raises the precedence, so a retried serious incident travels as FLASH again.
        explicit, extra = request.to, ()
        precedence = ctx.rules.by_content(envelope)[2]
        if precedence != envelope.precedence:
            raised = precedence
    else:
        explicit = envelope.recipients
        extra = ctx.rules.extra_recipients(
            envelope.type, envelope.sender, envelope.precedence, envelope.classification
        )
        content, content_addresses, precedence = ctx.rules.by_content(envelope)
        if content:
            extra = tuple(dict.fromkeys((*extra, *content)))
        if precedence != envelope.precedence:
            raised = precedence
    for code in explicit:
        if code not in ctx.directory:
            raise Refusal(
                ReasonCode.UNKNOWN_RECIPIENT,
                f"recipient {code!r} is not in the directory",
                "recipients",
            )
    wanted = tuple(dict.fromkeys((*explicit, *extra)))
    # Observer copies (the registry's) alone do not make a message deliverable.
    addressed = (
        bool(explicit)
        or content_addresses
        or (
            bool(extra)
            and ctx.rules.addresses(
                envelope.type, envelope.sender, envelope.precedence, envelope.classification
            )
        )
    )
    if not wanted or not addressed:
        raise Refusal(
            ReasonCode.NO_RECIPIENTS,
            "no explicit recipients and no routing rule applies",
            "recipients",
        )
    return wanted, raised


__all__ = ["Decision", "Incoming", "Outgoing", "RoutingContext", "decide"]
