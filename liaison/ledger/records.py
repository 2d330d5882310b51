"""Ledger records: one audit event, numbered, chained to the previous one, hashed.

The canonical record (what an auditor recomputes with only ``hashlib`` and ``json``)
-----------------------------------------------------------------------------------

Each record is a JSON object with exactly these 14 keys, every key always present
(``null`` when there is nothing to say):

=============  ====================================================================
``seq``        integer, 0 for the first record, then +1 with no gaps
``ts``         when the event happened, UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
``event``      ``received``, ``rejected``, ``routed``, ``delivered``,
               ``dead_lettered``, ``duplicate``, ``receipt``, ``retried``,
               ``replayed`` or ``operator_action``
``message_id`` the envelope's message id (``sha256:<hex>`` for unparseable bytes)
``type``       the message type, or ``null``
``sender``     the sender's participant code, or ``null``
``recipients`` array of participant codes (possibly empty)
``reason``     a reason code (refusals, dead letters), or ``null``
``detail``     free text, or ``null``
``actor``      who acted: ``router``, or an operator's or auditor's name
``envelope``   the full envelope as JSON, or ``null``
``dedupe_key`` the event's idempotency key; no two records share one
``prev``       the previous record's ``hash`` (64 zeros for seq 0)
``hash``       see below
=============  ====================================================================

*Canonical bytes* of a record: the record WITHOUT the ``hash`` key, serialised as
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
and encoded as UTF-8.

- ``hash`` = ``hashlib.sha256(canonical_bytes).hexdigest()`` (lowercase hex);
- ``prev`` of record *n* = ``hash`` of record *n-1*, so the records form a chain;
- the Merkle leaf of record *n* is its canonical bytes: leaf hash =
  ``sha256(b"\\x00" + canonical_bytes)``, and the tree over records ``0..N-1``
  (RFC 9162, see ``merkle.py``) has the root that checkpoints sign.

On disk each record is one line: the canonical JSON of the record INCLUDING
``hash`` (same serialisation), then ``\\n``. Because keys are sorted and
``"hash"`` sorts between ``"event"`` and ``"message_id"``, the line is the
canonical bytes with ``,"hash":"<64 hex>"`` inserted just before
``,"message_id":``; removing that member from the line gives back the canonical
bytes exactly. The verifier relies on this to hash the bytes on disk without
re-serialising them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from liaison.core.events import AuditEvent
from schemas.envelope import canonical_json
from schemas.errors import LiaisonError

ZERO_HASH = "0" * 64
_HASH_MARK = b',"hash":"'
_HASH_MEMBER_LEN = len(_HASH_MARK) + 64 + 1  # ,"hash":"<64 hex>"
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

FIELDS: tuple[str, ...] = (
    "actor",
    "dedupe_key",
    "detail",
    "envelope",
    "event",
    "hash",
    "message_id",
    "prev",
    "reason",
    "recipients",
    "sender",
    "seq",
    "ts",
    "type",
)


class RecordError(LiaisonError):
    """A record that cannot be built or read (the message says which and why)."""

    def __init__(self, message: str, *, dedupe_key: str | None = None) -> None:
        #: The dedupe key of the event that could not be recorded, when it is one.
        self.dedupe_key = dedupe_key
        super().__init__(message)


def format_ts(at: datetime) -> str:
    """``at`` in UTC with microseconds and ``Z``: fixed width, so strings sort by time."""
    if at.tzinfo is None:
        raise RecordError("event time has no timezone")
    try:
        if type(at) is not datetime:  # a subclass may compare or format otherwise
            return at.astimezone(UTC).strftime(_TS_FORMAT)
        # The events of one message share their time: most calls are answered from the
        # cache. ``fold`` is part of the key because two datetimes that differ only by it
        # compare equal yet may be different instants (PEP 495); equal otherwise means
        # the same instant, hence the same string.
        return _format_utc(at, at.fold)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 has no UTC equivalent Python can hold: a refusal
        # (the message is dead-lettered), not a crash the redelivery would repeat.
        raise RecordError(f"event time {at.isoformat()} is outside the UTC range") from None


def ts_seconds(ts: str) -> int:
    """A record's ``ts`` in whole seconds since the epoch: the AMQP ``timestamp`` the
    router gave what it published for that event (``liaison.core.outcomes.arrival``)."""
    return int(datetime.fromisoformat(ts).timestamp())


@lru_cache(maxsize=256)
def _format_utc(at: datetime, _fold: int) -> str:
    utc = at.astimezone(UTC)
    if utc.year < 1000:
        # strftime's %Y does not pad years before 1000 on every platform (glibc
        # writes "1", not "0001"): keep whatever it wrote, as the ledger always did.
        return utc.strftime(_TS_FORMAT)
    # isoformat is several times faster than strftime and, for 4-digit years, writes
    # the same "YYYY-MM-DDTHH:MM:SS.ffffff" before its "+00:00".
    return utc.isoformat(timespec="microseconds")[:26] + "Z"


class Record(NamedTuple):
    """One line of the ledger, as data.

    A named tuple, immutable, because the writer makes one per event: a frozen
    dataclass sets its fourteen fields one ``object.__setattr__`` at a time, which
    cost as much as hashing the record (as for ``AuditEvent``).
    """

    seq: int
    ts: str
    event: str
    message_id: str
    type: str | None
    sender: str | None
    recipients: tuple[str, ...]
    reason: str | None
    detail: str | None
    actor: str
    envelope: dict[str, Any] | None
    dedupe_key: str
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The record without ``hash``: what the hash and the Merkle leaf cover."""
        return {
            "actor": self.actor,
            "dedupe_key": self.dedupe_key,
            "detail": self.detail,
            "envelope": self.envelope,
            "event": self.event,
            "message_id": self.message_id,
            "prev": self.prev,
            "reason": self.reason,
            "recipients": list(self.recipients),
            "sender": self.sender,
            "seq": self.seq,
            "ts": self.ts,
            "type": self.type,
        }

    def to_json(self) -> dict[str, Any]:
        """The whole record as JSON data, ``hash`` included."""
        data = self.body()
        data["hash"] = self.hash
        return data

    def canonical_bytes(self) -> bytes:
        """The canonical bytes (without ``hash``)."""
        return canonical_json(self.body())

    def line(self) -> bytes:
        """The record as stored: canonical JSON with ``hash``, then a newline."""
        return canonical_json(self.to_json()) + b"\n"

    def leaf_hash(self) -> bytes:
        """This record's Merkle leaf hash."""
        return hashlib.sha256(b"\x00" + self.canonical_bytes()).digest()

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """A record from parsed JSON; :class:`RecordError` when a field is missing or mistyped."""
        if not isinstance(data, dict) or set(data) != set(FIELDS):
            raise RecordError("not a ledger record (wrong set of keys)")
        try:
            _expect(data, "seq", int)
            for name in ("ts", "event", "message_id", "actor", "dedupe_key", "prev", "hash"):
                _expect(data, name, str)
            for name in ("type", "sender", "reason", "detail"):
                _expect(data, name, (str, type(None)))
            _expect(data, "envelope", (dict, type(None)))
            _expect(data, "recipients", list)
            _expect_strings(data, "recipients")
        except TypeError as exc:
            raise RecordError(str(exc)) from None
        return cls(
            seq=data["seq"],
            ts=data["ts"],
            event=data["event"],
            message_id=data["message_id"],
            type=data["type"],
            sender=data["sender"],
            recipients=tuple(data["recipients"]),
            reason=data["reason"],
            detail=data["detail"],
            actor=data["actor"],
            envelope=data["envelope"],
            dedupe_key=data["dedupe_key"],
            prev=data["prev"],
            hash=data["hash"],
        )

    @classmethod
    def from_line(cls, line: bytes) -> Record:
        """A record from one stored line (trailing newline allowed)."""
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise RecordError(f"not JSON: {exc}") from None
        return cls.from_json(data)


def _expect(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> None:
    value = data[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"field {name!r} has the wrong type")


def _expect_strings(data: dict[str, Any], name: str) -> None:
    if not all(isinstance(item, str) for item in data[name]):
        raise TypeError(f"field {name!r} must hold strings")


def split_line(line: bytes) -> tuple[bytes, bytes] | None:
    """A stored line's canonical bytes and its ``hash`` (hex, as bytes), or ``None``.

    The inverse of how :func:`build` writes a line (see the module docstring).
    The newline must already be stripped.
    """
    i = line.rfind(_HASH_MARK)
    end = i + _HASH_MEMBER_LEN
    if i < 0 or line[end - 1 : end] != b'"':
        return None
    return line[:i] + line[end:], line[i + len(_HASH_MARK) : end - 1]


def build(seq: int, prev: str, event: AuditEvent) -> tuple[Record, bytes, bytes]:
    """The record for ``event`` at ``seq`` after ``prev``: the record, its line, its leaf hash."""
    try:
        ts = format_ts(event.at)
    except RecordError as exc:
        raise RecordError(
            f"event {event.dedupe_key!r}: {exc}", dedupe_key=event.dedupe_key
        ) from None
    kind = str(event.event)
    try:
        head, tail = _canonical_halves(seq, prev, ts, kind, event)
    except (ValueError, TypeError) as exc:
        raise RecordError(
            f"event {event.dedupe_key!r} cannot be serialised: {exc}", dedupe_key=event.dedupe_key
        ) from None
    data = head + tail
    digest = hashlib.sha256(data).hexdigest()
    line = b"".join((head, _HASH_MARK, digest.encode("ascii"), b'"', tail, b"\n"))
    leaf = _LEAF_PREFIX.copy()
    leaf.update(data)
    record = Record(
        seq=seq,
        ts=ts,
        event=kind,
        message_id=event.message_id,
        type=event.type,
        sender=event.sender,
        recipients=tuple(event.recipients),
        reason=event.reason,
        detail=event.detail,
        actor=event.actor,
        envelope=event.envelope,
        dedupe_key=event.dedupe_key,
        prev=prev,
        hash=digest,
    )
    return record, line, leaf.digest()


# -- canonical bytes without json.dumps per record -----------------------------------
#
# ``canonical_json(body)`` spends as long setting up its encoder as encoding a small
# record. The 13 keys of a body are fixed and sorted, so a body is written here
# member by member, each value exactly as ``json.dumps`` (same options) writes it
# inside an object: strings through ``encode_basestring`` (the function the C
# encoder itself uses when ``ensure_ascii=False``), the envelope (and anything
# unexpected) through one shared encoder with the options of ``canonical_json``.
# tests/unit/test_record_bytes.py holds the plain definition and checks that the
# two agree byte for byte.

_LEAF_PREFIX = hashlib.sha256(b"\x00")
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _canonical_halves(
    seq: int, prev: str, ts: str, kind: str, event: AuditEvent
) -> tuple[bytes, bytes]:
    """The canonical bytes of a record, cut where its line takes the ``hash`` member."""
    try:
        return _halves_of_declared_types(seq, prev, ts, kind, event)
    except TypeError:
        # A field holding another type than declared (only an event built in the
        # process can: the wire's are validated), or an envelope with no JSON form.
        return _halves_of_any_types(seq, prev, ts, kind, event)


def _halves_of_declared_types(
    seq: int, prev: str, ts: str, kind: str, event: AuditEvent
) -> tuple[bytes, bytes]:
    """The common case, inline (a function call per field costs as much as its
    encoding): every text field holds a ``str`` or ``None``, ``seq`` an ``int``.
    Raises ``TypeError`` otherwise (``encode_basestring`` takes only strings)."""
    if type(seq) is not int:
        raise TypeError("seq is not an int")
    text = encode_basestring
    detail, envelope, reason, sender, type_ = (
        event.detail,
        event.envelope,
        event.reason,
        event.sender,
        event.type,
    )
    return _assemble(
        actor=text(event.actor),
        dedupe_key=text(event.dedupe_key),
        detail="null" if detail is None else text(detail),
        envelope="null" if envelope is None else _ENCODER.encode(envelope),
        event=text(kind),
        message_id=text(event.message_id),
        prev=text(prev),
        reason="null" if reason is None else text(reason),
        recipients=",".join([text(r) for r in event.recipients]),
        sender="null" if sender is None else text(sender),
        seq=int.__repr__(seq),
        ts=text(ts),
        type_="null" if type_ is None else text(type_),
    )


def _halves_of_any_types(
    seq: int, prev: str, ts: str, kind: str, event: AuditEvent
) -> tuple[bytes, bytes]:
    """Any values: each written by the shared encoder, as ``json.dumps`` would."""
    encode = _ENCODER.encode
    return _assemble(
        actor=encode(event.actor),
        dedupe_key=encode(event.dedupe_key),
        detail=encode(event.detail),
        envelope=encode(event.envelope),
        event=encode(kind),
        message_id=encode(event.message_id),
        prev=encode(prev),
        reason=encode(event.reason),
        recipients=",".join([encode(r) for r in event.recipients]),
        sender=encode(event.sender),
        seq=encode(seq),
        ts=encode(ts),
        type_=encode(event.type),
    )


def _assemble(
    *,
    actor: str,
    dedupe_key: str,
    detail: str,
    envelope: str,
    event: str,
    message_id: str,
    prev: str,
    reason: str,
    recipients: str,
    sender: str,
    seq: str,
    ts: str,
    type_: str,
) -> tuple[bytes, bytes]:
    """The body from its members' JSON texts, in sorted key order, in two halves:
    ``"hash"`` sorts between ``"event"`` and ``"message_id"`` (module docstring)."""
    head = (
        f'{{"actor":{actor},"dedupe_key":{dedupe_key},"detail":{detail}'
        f',"envelope":{envelope},"event":{event}'
    )
    tail = (
        f',"message_id":{message_id},"prev":{prev},"reason":{reason}'
        f',"recipients":[{recipients}],"sender":{sender},"seq":{seq},"ts":{ts}'
        f',"type":{type_}}}'
    )
    return head.encode("utf-8"), tail.encode("utf-8")


def build_many(
    first_seq: int, prev: str, events: Iterable[AuditEvent]
) -> list[tuple[Record, bytes, bytes]]:
    """:func:`build` for consecutive events, chained; stops at the first that fails."""
    out: list[tuple[Record, bytes, bytes]] = []
    for index, event in enumerate(events):
        built = build(first_seq + index, prev, event)
        out.append(built)
        prev = built[0].hash
    return out
