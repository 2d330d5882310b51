"""The writer's decoder (jiter) accepts and refuses exactly what ``decode_batch`` does, with equal values."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import jiter
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from liaison.core.events import EventKind, decode_batch, encode_batch, make_event
from liaison.ledger.decode import decode_events

EXAMPLES = 5_000 if os.environ.get("LIAISON_PROOF_LONG") == "1" else 300
budget = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

AT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0, -0.0 is not 0.0, key order counts)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


def outcome(decode: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", [tuple(event) for event in decode(body)]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        return "refused", (type(exc), str(exc))


def assert_decoded_alike(body: bytes) -> None:
    expected, got = outcome(decode_batch, body), outcome(decode_events, body)
    assert expected[0] == got[0], (body[:200], expected, got)
    if expected[0] == "ok":
        assert same(expected[1], got[1])
    else:
        assert expected[1][0] is got[1][0]


# -- the parsers --------------------------------------------------------------------------

#: Documents where the parsers might disagree: what jiter parses, json.loads must
#: parse to the same value (what jiter refuses is handed to decode_batch).
TRICKY = [
    b'{"a":1,"a":2,"b":3}',
    b'"\\ud800"',
    b'"\\udfdb\\ud83c"',
    b'"\\ud83c\\udfdb"',
    b'"\\ud800\\u0041"',
    b'"a\x01b"',
    b'"a\x7fb"',
    b"NaN",
    b"[NaN,Infinity,-Infinity]",
    b"1e400",
    b"[-0.0,-0,0.0]",
    b"123456789012345678901234567890",
    b"1" * 4300,
    b"1" * 4301,
    b"1" * 5000 + b".0",
    b"0." + b"1" * 5000,
    b"5e-324",
    b"2.4703282292062327e-324",
    b"0.1000000000000000055511151231257827",
    b"1.7976931348623157e308",
    b"[1e22,1E+5,1e-5,123e-2,0.30000000000000004]",
    b'\xef\xbb\xbf{"a":1}',
    '{"a":1}'.encode("utf-16"),
    b'{"a":1} x',
    b' \t{"a":1}\r\n',
    b'{"a":"\xed\xa0\x80"}',
    b'{"a":"\xff"}',
    b'"\xc0\x80"',
    b"[1,]",
    b'{"a":1,}',
    b"01",
    b"1.",
    b".5",
    b"-",
    b"",
    b'"\\/\\b\\f\\n\\r\\t\\u0000\\"\\\\"',
    b'"\\x"',
    b'{"\\u00e9":1,"\xc3\xa9":2}',
    b"[" * 300 + b"]" * 300,
    b"[" * 100_000 + b"]" * 100_000,
]


def assert_parsed_alike(doc: bytes) -> None:
    try:
        parsed = jiter.from_json(doc)
    except ValueError:
        return  # decode_events hands it to decode_batch
    assert same(json.loads(doc), parsed), doc[:200]


@pytest.mark.parametrize("doc", TRICKY, ids=range(len(TRICKY)))
def test_jiter_parses_what_json_parses_to_the_same_value(doc: bytes) -> None:
    """Whatever jiter parses, json.loads parses to an identical value (types, signs, key order)."""
    assert_parsed_alike(doc)


any_text = st.text(st.characters(exclude_categories=()), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | any_text
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=20,
)


def dumped(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """JSON text, as json writes it or damaged: bytes replaced, cut or inserted."""
    doc = bytearray(dumped(draw(json_values), draw(st.booleans())))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(doc)))
        how = draw(st.sampled_from(["replace", "insert", "cut"]))
        piece = draw(st.sampled_from([b'"', b"\\", b"\\u", b"\xed\xa0\x80", b"\x00", b"e"]))
        if how == "cut":
            del doc[at : at + draw(st.integers(1, 4))]
        elif how == "insert":
            doc[at:at] = piece
        else:
            doc[at : at + 1] = draw(st.binary(min_size=1, max_size=2))
    return bytes(doc)


@budget
@given(doc=documents())
@example(doc=b'{"a":[1,2.5,"x"]}')
def test_generated_documents_parse_alike(doc: bytes) -> None:
    """Generated and damaged JSON: jiter refuses it, or agrees with json.loads exactly."""
    assert_parsed_alike(doc)


# -- whole audit messages -------------------------------------------------------------------

ENVELOPE = {
    "message_id": "m-1",
    "payload": {"texte": "Séance n°1 ✓ 🏛", "n": [1, 2.5, -0.0, 10**30, None, True]},
}
VALID = encode_batch(
    [
        make_event(
            EventKind.RECEIVED,
            "m-1",
            at=AT,
            envelope=ENVELOPE,
            sender="MAEE",
            recipients=("A", "B"),
            type="t",
        ),
        make_event(EventKind.ROUTED, "m-1", at=AT, sender="MAEE", recipients=("A", "B")),
        make_event(EventKind.REJECTED, "m-2", at=AT, reason="not_json", detail='"\\\n ✓'),
    ]
)


def _event(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "event": "routed",
        "dedupe_key": "k",
        "at": AT.isoformat(),
        "message_id": "m",
    }
    return json.dumps({"events": [{**base, **fields}]}).encode()


MESSAGES = {
    "valid": VALID,
    "valid, pretty and ASCII-escaped": json.dumps(json.loads(VALID), indent=2).encode(),
    "valid behind a UTF-8 BOM": b"\xef\xbb\xbf" + VALID,
    "valid in UTF-16": VALID.decode().encode("utf-16"),
    "empty batch": b'{"events":[]}',
    "extra top-level member": b'{"events":[],"other":1}',
    "not JSON": b"garbage",
    "truncated": VALID[:-5],
    "not an object": b"[1,2]",
    "a string": b'"events"',
    "null": b"null",
    "no events": b'{"evnts":[]}',
    "events not a list": b'{"events":{"a":1}}',
    "events holding arrays": b'{"events":[["received","k","2025-01-01T00:00:00Z","m"]]}',
    "unknown field": _event(bogus=1),
    "missing field": b'{"events":[{"event":"routed","dedupe_key":"k","message_id":"m"}]}',
    "unknown kind": _event(event="teleported"),
    "dedupe key over its cap": _event(dedupe_key="k" * 301),
    "message id at its cap": _event(message_id="m" * 80),
    "message id over its cap": _event(message_id="m" * 81),
    "detail over its cap": _event(detail="d" * 2001),
    "recipients not strings": _event(recipients=[1, 2]),
    "recipients a string": _event(recipients="AB"),
    "sender a number": _event(sender=5),
    "envelope a list": _event(envelope=[1]),
    "envelope with NaN": b'{"events":[{"event":"received","dedupe_key":"k","at":"2026-03-01T09:30:15Z","message_id":"m","envelope":{"x":NaN}}]}',
    "time without zone": _event(at="2026-03-01T09:30:15"),
    "time as a number": _event(at=1_700_000_000),
    "time not a time": _event(at="yesterday"),
    "time with an offset": _event(at="2026-03-01T09:30:15.5+05:30"),
    "lone surrogate escaped": _event(detail="\ud800"),
    "surrogate pair escaped": _event(detail="🏛"),
    "lone surrogate in UTF-8": b'{"events":[{"event":"routed","dedupe_key":"k\xed\xa0\x80","at":"2026-03-01T09:30:15Z","message_id":"m"}]}',
    "invalid UTF-8": b'{"events":[{"event":"routed","dedupe_key":"k\xff","at":"2026-03-01T09:30:15Z","message_id":"m"}]}',
    "duplicate keys": b'{"events":[{"event":"routed","dedupe_key":"a","dedupe_key":"b","at":"2026-03-01T09:30:15Z","message_id":"m"}]}',
    "deeply nested envelope": b'{"events":[{"event":"received","dedupe_key":"k","at":"2026-03-01T09:30:15Z","message_id":"m","envelope":{"x":'
    + b"[" * 300
    + b"]" * 300
    + b"}}]}",
}


@pytest.mark.parametrize("name", list(MESSAGES))
def test_audit_messages_decode_alike(name: str) -> None:
    """Chosen audit messages, valid and malformed: same events, or refused with the same kind of error."""
    assert_decoded_alike(MESSAGES[name])


def test_valid_message_decodes_through_jiter() -> None:
    """The fast path is taken for the router's messages (not everything handed back)."""
    assert decode_events(VALID) == decode_batch(VALID)
    assert decode_events(VALID)[0].envelope == ENVELOPE


field_values = st.one_of(json_values, st.sampled_from(list(EventKind)).map(str), any_text)
event_objects = st.fixed_dictionaries(
    {
        "event": st.sampled_from(list(EventKind)).map(str) | field_values,
        "dedupe_key": any_text,
        "at": st.sampled_from(["2026-03-01T09:30:15Z", "2026-03-01T09:30:15.123+01:00", "x"])
        | field_values,
        "message_id": any_text,
    },
    optional=dict.fromkeys(
        ("type", "sender", "recipients", "reason", "detail", "actor", "envelope"), field_values
    ),
)


@budget
@given(events=st.lists(event_objects, max_size=4), ascii_only=st.booleans())
def test_generated_audit_messages_decode_alike(events: list[Any], ascii_only: bool) -> None:
    """Generated audit messages (any field values, surrogates and NaN included) decode alike."""
    assert_decoded_alike(dumped({"events": events}, ascii_only))
