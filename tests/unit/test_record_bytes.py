"""The ledger's bytes are the plain definition's, byte for byte, however a record is built.

``records.build`` writes a record member by member (for speed) and formats times
without ``strftime``. This module keeps the straightforward definition from the
record format (``json.dumps(body, sort_keys=True, ...)``, ``strftime``, the hash
member inserted before ``"message_id"``) and checks that both give the same line,
hash and leaf hash, and refuse the same events.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liaison.core.events import AuditEvent, EventKind, decode_batch, encode_batch, make_event
from liaison.ledger import records
from liaison.ledger.records import RecordError, build, build_many, format_ts

EXAMPLES = 5_000 if os.environ.get("LIAISON_PROOF_LONG") == "1" else 300
budget = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PREV = "ab" * 32
AT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


# -- the reference: the record format as documented, written the obvious way ----------


def reference_ts(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reference_canonical(data: Any) -> bytes:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def reference_build(seq: int, prev: str, event: AuditEvent) -> tuple[bytes, str, bytes]:
    """The line, hash and leaf hash of a record; raises where the ledger must refuse."""
    if event.at.tzinfo is None:
        raise ValueError("naive time")
    body = {
        "actor": event.actor,
        "dedupe_key": event.dedupe_key,
        "detail": event.detail,
        "envelope": event.envelope,
        "event": str(event.event),
        "message_id": event.message_id,
        "prev": prev,
        "reason": event.reason,
        "recipients": list(event.recipients),
        "sender": event.sender,
        "seq": seq,
        "ts": reference_ts(event.at),
        "type": event.type,
    }
    data = reference_canonical(body)
    digest = hashlib.sha256(data).hexdigest()
    line = reference_canonical({**body, "hash": digest}) + b"\n"
    return line, digest, hashlib.sha256(b"\x00" + data).digest()


def assert_same(seq: int, prev: str, event: AuditEvent) -> None:
    """``build`` agrees with the reference: same bytes, or both refuse."""
    try:
        expected = reference_build(seq, prev, event)
    except (ValueError, TypeError):
        with pytest.raises(RecordError) as caught:
            build(seq, prev, event)
        assert caught.value.dedupe_key == event.dedupe_key
        return
    record, line, leaf = build(seq, prev, event)
    assert (line, record.hash, leaf) == expected
    # The record's own serialisations (used by proofs and `audit verify`) agree too.
    assert record.line() == line
    assert record.leaf_hash() == leaf
    assert records.split_line(line[:-1]) == (record.canonical_bytes(), record.hash.encode())


# -- chosen cases -----------------------------------------------------------------------

ENVELOPE = {
    "message_id": "00000000-0000-4000-8000-000000000001",
    "type": "correspondence.letter",
    "schema_version": 1,
    "sender": "MAEE",
    "recipients": ["PALAIS", "GOUV"],
    "created_at": "2026-03-01T09:30:15.123456Z",
    "payload": {
        "subject": "Séance n°1 ✓ — «guillemets» 日本語 🏛️",
        "body": 'quote " backslash \\ slash / newline \n tab \t nul \x00 del \x7f \u2028 \u2029',
        "nested": {"z": [1, -2, 3.5, 1e-7, 1e22, -0.0, 2**70, -(2**64) - 1], "a": None},
        "flags": [True, False, None, {}, [], ""],
        "amounts": {"b": 0.1, "a": 1.5e300, "c": 5e-324, "d": 123456789.123456789},
        "keys": {"é": 1, "e": 2, "E": 3, "\U0001f3db": 4, "\uffff": 5, "": 6},
    },
}

CASES: dict[str, AuditEvent] = {
    "received with envelope": make_event(
        EventKind.RECEIVED,
        "00000000-0000-4000-8000-000000000001",
        discriminator="MAEE:0f",
        at=AT,
        type="correspondence.letter",
        sender="MAEE",
        recipients=("PALAIS", "GOUV", "CHAMBRE"),
        envelope=ENVELOPE,
    ),
    "routed, no envelope": make_event(
        EventKind.ROUTED, "m-1", at=AT, type="t", sender="MAEE", recipients=("PALAIS",)
    ),
    "all optional fields None": make_event(EventKind.DELIVERED, "m-2", at=AT),
    "empty strings": make_event(
        EventKind.REJECTED, "", at=AT, type="", sender="", reason="", detail="", actor=""
    ),
    "escapes and unicode in text": make_event(
        EventKind.REJECTED,
        "sha256:" + "00" * 32,
        at=AT,
        reason="not_json",
        detail='"\\\n\r\t\b\f\x01\x1f ünïcödé ✓ 🏛️ \u2028 </script> ,"message_id":"x"',
        actor='opérateur "Jean"',
        recipients=('a"b', "c\\d", "é"),
    ),
    "operator action": make_event(
        EventKind.OPERATOR_ACTION, "m-3", at=AT, actor="ops:alice", detail="replayed to GOUV"
    ),
    "envelope holding only an empty object": make_event(
        EventKind.RECEIVED, "m-4", at=AT, envelope={}
    ),
    "parked": make_event(EventKind.PARKED, "m-5", at=AT, reason="consumer_gave_up"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_chosen_events_match_the_definition(name: str) -> None:
    """Each chosen event gives the reference's line, hash and leaf hash, at several positions."""
    for seq, prev in ((0, records.ZERO_HASH), (1, PREV), (2**40, "f" * 64)):
        assert_same(seq, prev, CASES[name])


def test_events_read_from_the_wire_match_the_definition() -> None:
    """Events as the writer gets them (encode_batch, then decode_batch) give the same bytes."""
    events = decode_batch(encode_batch(CASES.values()))
    for seq, event in enumerate(events):
        assert_same(seq, PREV, event)


def test_a_chain_matches_the_definition() -> None:
    """build_many chains records exactly as the reference does, one after another."""
    events = list(CASES.values())
    built = build_many(7, PREV, events)
    prev = PREV
    for offset, (event, (record, line, leaf)) in enumerate(zip(events, built, strict=True)):
        expected = reference_build(7 + offset, prev, event)
        assert (line, record.hash, leaf) == expected
        prev = record.hash


@pytest.mark.parametrize(
    "envelope",
    [
        {"x": math.nan},
        {"x": [1, math.inf]},
        {"x": {"y": -math.inf}},
        {"lone \ud800 surrogate in a key": 1},
        {"x": "lone \udfff surrogate"},
        {"x": {1, 2}},  # not JSON at all
        {"x": b"bytes"},
    ],
)
def test_envelopes_without_canonical_form_are_refused(envelope: dict[str, Any]) -> None:
    """What json.dumps refuses, build refuses with a RecordError naming the event."""
    assert_same(0, PREV, make_event(EventKind.RECEIVED, "m", at=AT, envelope=envelope))


@pytest.mark.parametrize(
    "fields",
    [
        {"detail": "bad \ud800"},
        {"sender": "\udc00"},
        {"recipients": ("ok", "\ud83c")},
        {"actor": "x\udfffy"},
        {"type": "\ud800\udc00"},  # a surrogate pair written as two code points
    ],
)
def test_text_without_utf8_form_is_refused(fields: dict[str, Any]) -> None:
    """A lone surrogate in any text field has no UTF-8 form: refused, as before."""
    assert_same(0, PREV, make_event(EventKind.REJECTED, "m", at=AT, **fields))


def test_unusual_field_types_match_the_definition() -> None:
    """Values a caller in the process could pass (not from the wire) still serialise as json.dumps does."""
    odd = AuditEvent(
        event=EventKind.RECEIPT,
        dedupe_key="k",
        at=AT,
        message_id="m",
        type=EventKind.ROUTED,  # a str subclass
        sender=None,
        recipients=["a", "b"],  # type: ignore[arg-type]
        detail=3,  # type: ignore[arg-type]
        reason=True,  # type: ignore[arg-type]
    )
    assert_same(5, PREV, odd)


# -- times ------------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")

TIMES = [
    AT,
    datetime(2026, 3, 1, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 3, 1, 10, 30, 15, 1, tzinfo=timezone(timedelta(hours=1))),
    datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=7))),
    datetime(1, 1, 1, tzinfo=UTC),  # strftime does not pad years before 1000
    datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(1000, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # 999 in UTC
    datetime(1000, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 10, 25, 2, 30, tzinfo=PARIS),  # ambiguous hour: fold=0
    datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS),  # same wall time, an hour later
    datetime(2026, 3, 29, 2, 30, tzinfo=PARIS),  # a time that does not exist
]


def test_times_match_strftime() -> None:
    """format_ts writes what strftime wrote, including for odd years, offsets and folds."""
    for at in TIMES * 2:  # twice: the second answers come from the cache
        assert format_ts(at) == reference_ts(at), at


def test_equal_times_that_differ_by_fold_are_not_confused() -> None:
    """Two datetimes equal by ==, an hour apart in UTC, get their own strings."""
    first, second = TIMES[-3], TIMES[-2]
    assert first == second
    assert format_ts(first) != format_ts(second)
    assert format_ts(second) == reference_ts(second)


class OddDatetime(datetime):
    """A datetime subclass that writes itself otherwise (as some libraries' do)."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "odd"


def test_datetime_subclasses_format_as_strftime_says() -> None:
    """A subclass of datetime gets what strftime writes for it, not a shortcut's guess."""
    at = OddDatetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert format_ts(at) == reference_ts(at) == "2026-03-01T09:30:00.000000Z"
    assert_same(0, PREV, make_event(EventKind.ROUTED, "m", at=at))


def test_naive_time_is_refused() -> None:
    """An event time with no timezone cannot be put in UTC: refused."""
    with pytest.raises(RecordError, match="no timezone"):
        format_ts(datetime(2026, 3, 1))
    assert_same(0, PREV, make_event(EventKind.ROUTED, "m", at=datetime(2026, 3, 1)))


# -- generated cases --------------------------------------------------------------------

#: Any code point, lone surrogates included (JSON's \uXXXX escapes can carry them).
any_text = st.text(st.characters(exclude_categories=()), max_size=30)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats()
    | any_text
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=25,
)
maybe_text = st.none() | any_text
times = st.datetimes(
    min_value=datetime(1, 1, 2),  # a day of margin: an offset must not leave datetime's range
    max_value=datetime(9999, 12, 30),
    timezones=st.just(UTC)
    | st.builds(timezone, st.timedeltas(timedelta(hours=-23), timedelta(hours=23))),
)
events = st.builds(
    AuditEvent,
    event=st.sampled_from(EventKind),
    dedupe_key=any_text,
    at=times,
    message_id=any_text,
    type=maybe_text,
    sender=maybe_text,
    recipients=st.lists(any_text, max_size=4).map(tuple),
    reason=maybe_text,
    detail=maybe_text,
    actor=any_text,
    envelope=st.none() | st.dictionaries(any_text, json_values, max_size=6),
)


@budget
@given(seq=st.integers(min_value=0, max_value=2**63), event=events)
def test_generated_events_match_the_definition(seq: int, event: AuditEvent) -> None:
    """Any event (any text, any JSON envelope, NaN and surrogates included): same bytes or both refuse."""
    assert_same(seq, PREV, event)
