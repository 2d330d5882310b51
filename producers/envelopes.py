"""Pure envelope building for the edge: replies, receipts and the AMQP properties of a publish.

No I/O here; :class:`~producers.Publisher` calls these and moves the bytes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal
from uuid import UUID

from schemas import wire
from schemas.envelope import Envelope, P, new_envelope
from schemas.receipts import ReceiptAnswered, ReceiptReceived, ReceiptRegistered
from schemas.types import Classification, Payload, Precedence

ReceiptKind = Literal["received", "registered", "answered"]

#: AMQP delivery mode 2: the broker writes the message to disk.
PERSISTENT = 2


def reply_envelope(
    original: Envelope[Any],
    payload: P,
    *,
    sender: str,
    classification: Classification | None = None,
    precedence: Precedence | None = None,
) -> Envelope[P]:
    """An envelope answering ``original``: back to its sender, in the same conversation.

    ``correlation_id`` is the conversation's id (the original's correlation id, or
    the original's message id when it opened the conversation) and ``causation_id``
    is the original's message id: a requester matches an answer on either. The
    classification and precedence default to the original's.
    """
    return new_envelope(
        payload,
        sender=sender,
        recipients=(original.sender,),
        classification=classification or original.classification,
        precedence=precedence or original.precedence,
        correlation_id=original.correlation_id or original.message_id,
        causation_id=original.message_id,
    )


def receipt_payload(
    original: Envelope[Any],
    kind: ReceiptKind,
    *,
    registry_number: str | None = None,
    registered_on: date | None = None,
    answer_message_id: UUID | None = None,
    now: datetime | None = None,
) -> Payload:
    """The receipt payload acknowledging ``original``: received, registered or answered."""
    moment = now or datetime.now(UTC)
    if kind == "received":
        return ReceiptReceived(original_message_id=original.message_id, received_at=moment)
    if kind == "registered":
        if registry_number is None:
            raise ValueError("a 'registered' receipt needs the registry_number it was filed under")
        return ReceiptRegistered(
            original_message_id=original.message_id,
            registry_number=registry_number,
            registered_on=registered_on or moment.date(),
        )
    if kind == "answered":
        if answer_message_id is None:
            raise ValueError("an 'answered' receipt needs the answer_message_id")
        return ReceiptAnswered(
            original_message_id=original.message_id, answer_message_id=answer_message_id
        )
    raise ValueError(f"receipt kind must be received, registered or answered, not {kind!r}")


def receipt_classification(original: Envelope[Any]) -> Classification:
    """A receipt says only that a message arrived: INTERNAL, or PUBLIC for a PUBLIC original."""
    return min(original.classification, Classification.INTERNAL, key=lambda c: c.rank)


def publish_properties(envelope: Envelope[Any], *, user_id: str) -> dict[str, Any]:
    """The AMQP properties of an envelope on ``liaison.ingress`` (see the wire contract)."""
    properties: dict[str, Any] = {
        "content_type": wire.CONTENT_TYPE,
        "delivery_mode": PERSISTENT,
        "message_id": str(envelope.message_id),
        "type": envelope.type,
        "user_id": user_id,
    }
    if envelope.correlation_id is not None:
        properties["correlation_id"] = str(envelope.correlation_id)
    return properties


__all__ = [
    "PERSISTENT",
    "ReceiptKind",
    "publish_properties",
    "receipt_classification",
    "receipt_payload",
    "reply_envelope",
]
