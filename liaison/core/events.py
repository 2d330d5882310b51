"""Audit events: what the hub tells the audit writer, one JSON batch per AMQP message.

Each event has a deterministic ``dedupe_key`` (the scheme: ``liaison.core.dedupe``):
the same event about the same message, published twice (a redelivery after a
crash), is recorded once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, NamedTuple

from pydantic import Field, TypeAdapter

from liaison.core.dedupe import event_key

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
    #: A consumer gave up on its copy (``x-liaison-delay: dead``); the hub parked it.
    PARKED = "parked"


class AuditEvent(NamedTuple):
    """One fact for the ledger.

    A named tuple, immutable, so the router builds three per message cheaply (a
    frozen dataclass sets its twelve fields one ``object.__setattr__`` at a time,
    about five times the cost); events read from the wire are validated against the
    bounds below by ``decode_batch``, which refuses unknown fields.
    """

    event: EventKind
    dedupe_key: Annotated[str, Field(max_length=300)]
    at: datetime
    #: The envelope's id; for bytes that never parsed, ``sha256:<hex>`` of the body.
    message_id: Annotated[str, Field(max_length=80)]
    type: Annotated[str | None, Field(max_length=64)] = None
    sender: Annotated[str | None, Field(max_length=64)] = None
    recipients: tuple[str, ...] = ()
    reason: Annotated[str | None, Field(max_length=64)] = None
    detail: Annotated[str | None, Field(max_length=2_000)] = None
    actor: Annotated[str, Field(max_length=120)] = "router"
    #: The full envelope as JSON data, so the message can be replayed from the log
    #: (in the router, the bytes as received: see ``RawJson``).
    envelope: dict[str, Any] | None = None


_BATCH = TypeAdapter(list[AuditEvent])


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
    """An event whose dedupe key is ``kind:message_id[:discriminator]`` (see ``dedupe``)."""
    return AuditEvent(
        event=kind,
        dedupe_key=event_key(kind, message_id, discriminator),
        at=at or datetime.now(UTC),
        message_id=message_id,
        **fields,
    )


class RawJson(bytes):
    """Bytes already known to be one valid JSON value, put into a batch as they are.

    The router passes an envelope this way: it arrived as JSON and was parsed,
    so encoding it again would only spend time on the hot path. Only
    ``encode_batch`` knows this type; everything that reads events reads JSON.
    """


#: Stands in for a RawJson envelope while a batch is encoded. It holds a NUL (which
#: JSON escapes, so no printable input can spell it) and a per-process random part.
_RAW_MARK = "\x00liaison-raw-" + uuid.uuid4().hex
_RAW_TOKEN = json.dumps(_RAW_MARK).encode()


def encode_batch(events: Iterable[AuditEvent]) -> bytes:
    """The body of one audit message: ``{"events": [...]}`` as compact JSON.

    One ``json.dumps`` for the whole batch (the router's hot path), with each
    envelope that arrived as JSON spliced back in as its original bytes.
    """
    raws: list[bytes] = []
    items: list[dict[str, Any]] = []
    for event in events:
        data = _jsonable(event)
        if isinstance(data["envelope"], RawJson):
            raws.append(data["envelope"])
            data["envelope"] = _RAW_MARK
        items.append(data)
    # backslashreplace: a lone surrogate that slipped into an event must not take
    # the router down when the batch is encoded (the writer then sees the escape).
    text = json.dumps(
        {"events": items}, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "backslashreplace")
    if not raws:
        return text
    parts = text.split(_RAW_TOKEN)
    if len(parts) != len(raws) + 1:
        raise ValueError("audit batch: envelope placeholders do not match")  # pragma: no cover
    out = [parts[0]]
    for raw, part in zip(raws, parts[1:], strict=True):
        out += (raw, part)
    return b"".join(out)


@lru_cache(maxsize=256)
def _iso(at: datetime) -> str:
    # Cached: the events of one message share one timestamp.
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _jsonable(event: AuditEvent) -> dict[str, Any]:
    # By hand rather than model_dump: a third of the router's audit cost was here.
    return {
        "event": event.event,  # a StrEnum: json writes its value (no descriptor call)
        "dedupe_key": event.dedupe_key,
        "at": _iso(event.at),
        "message_id": event.message_id,
        "type": event.type,
        "sender": event.sender,
        "recipients": list(event.recipients),
        "reason": event.reason,
        "detail": event.detail,
        "actor": event.actor,
        "envelope": event.envelope,
    }


def decode_batch(body: bytes) -> list[AuditEvent]:
    """The events of one audit message; raises ``ValueError`` on a malformed body."""
    # The audit writer uses liaison.ledger.decode.decode_events (same result, faster): change both.
    data = json.loads(body)
    items: Sequence[Any] = data["events"]
    # Objects only: a named tuple would also take an array of positional values.
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError("an audit batch holds a list of event objects")
    return _BATCH.validate_python(items)
