"""Audit events: what the hub tells the audit writer, one JSON batch per AMQP message.

Each event has a deterministic ``dedupe_key``: the same event about the same
message, published twice (a redelivery after a crash), is recorded once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import canonical_json

CONTENT_TYPE = "application/vnd.liaison.audit+json"


class EventKind(StrEnum):
    """What happened to a message (or what an operator did)."""

    RECEIVED = "received"
    REJECTED = "rejected"
    ROUTED = "routed"
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"
    DUPLICATE = "duplicate"
    RECEIPT = "receipt"
    RETRIED = "retried"
    REPLAYED = "replayed"
    OPERATOR_ACTION = "operator_action"


class AuditEvent(BaseModel):
    """One fact for the ledger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: EventKind
    dedupe_key: str = Field(max_length=300)
    at: datetime
    #: The envelope's id; for bytes that never parsed, ``sha256:<hex>`` of the body.
    message_id: str = Field(max_length=80)
    type: str | None = Field(default=None, max_length=64)
    sender: str | None = Field(default=None, max_length=64)
    recipients: tuple[str, ...] = ()
    reason: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, max_length=2_000)
    actor: str = Field(default="router", max_length=120)
    #: The full envelope as JSON data, so the message can be replayed from the log.
    envelope: dict[str, Any] | None = None


def body_id(body: bytes) -> str:
    """A stable id for bytes that carry no usable message id."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def make_event(
    kind: EventKind,
    message_id: str,
    *,
    discriminator: str = "",
    at: datetime | None = None,
    **fields: Any,
) -> AuditEvent:
    """An event whose dedupe key is ``kind:message_id[:discriminator]``."""
    key = f"{kind.value}:{message_id}" + (f":{discriminator}" if discriminator else "")
    return AuditEvent(
        event=kind, dedupe_key=key, at=at or datetime.now(UTC), message_id=message_id, **fields
    )


def encode_batch(events: Iterable[AuditEvent]) -> bytes:
    """The body of one audit message: ``{"events": [...]}`` in canonical JSON."""
    return canonical_json({"events": [e.model_dump(mode="json") for e in events]})


def decode_batch(body: bytes) -> list[AuditEvent]:
    """The events of one audit message; raises ``ValueError`` on a malformed body."""
    data = json.loads(body)
    items: Sequence[Any] = data["events"]
    return [AuditEvent.model_validate(item) for item in items]
