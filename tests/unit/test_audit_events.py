"""Audit event batches: what the router publishes is what the writer reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from liaison.core.events import (
    AuditEvent,
    EventKind,
    RawJson,
    decode_batch,
    encode_batch,
    make_event,
)
from schemas.envelope import canonical_json


class TestEncodeBatch:
    def test_raw_envelopes_are_spliced_in_order(self) -> None:
        """Envelopes passed as received bytes come back as the same JSON, each with its own event."""
        envelopes = [{"message_id": str(i), "payload": {"text": f"é {i}"}} for i in range(5)]
        events = [
            make_event(EventKind.RECEIVED, str(i), envelope=RawJson(canonical_json(env)))
            for i, env in enumerate(envelopes)
        ]
        events.insert(2, make_event(EventKind.ROUTED, "x", envelope={"plain": True}))
        decoded = decode_batch(encode_batch(events))
        assert [e.message_id for e in decoded] == ["0", "1", "x", "2", "3", "4"]
        got = [e.envelope for e in decoded if e.event is EventKind.RECEIVED]
        assert got == envelopes
        assert decoded[2].envelope == {"plain": True}

    def test_input_cannot_pose_as_a_placeholder(self) -> None:
        """Text that looks like the internal placeholder stays text."""
        hostile = "\x00liaison-raw-" + "0" * 32
        events = [
            make_event(EventKind.REJECTED, "m", detail=hostile),
            make_event(EventKind.RECEIVED, "m", envelope=RawJson(b'{"a":1}')),
        ]
        decoded = decode_batch(encode_batch(events))
        assert decoded[0].detail == hostile
        assert decoded[1].envelope == {"a": 1}

    def test_lone_surrogate_is_escaped_not_fatal(self) -> None:
        """A lone surrogate in an event's text cannot stop the encoding."""
        body = encode_batch([make_event(EventKind.REJECTED, "m", detail="bad \ud800")])
        assert json.loads(body)["events"][0]["detail"].startswith("bad ")


def test_events_must_be_objects() -> None:
    """An event written as an array of positional values is malformed, not decoded."""
    import pytest

    from liaison.core.events import decode_batch

    positional = b'{"events":[["received","k","2025-01-01T00:00:00Z","m"]]}'
    with pytest.raises(ValueError, match="event objects"):
        decode_batch(positional)
    with pytest.raises(ValueError, match="bogus"):
        decode_batch(
            b'{"events":[{"event":"received","dedupe_key":"k","at":"2025-01-01T00:00:00Z","message_id":"m","bogus":1}]}'
        )


def _reference(events: list[AuditEvent]) -> bytes:
    """What ``encode_batch`` must equal: ``json.dumps`` of each event's fields."""
    items = [
        {
            "event": str(e.event),
            "dedupe_key": e.dedupe_key,
            "at": e.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "message_id": e.message_id,
            "type": e.type,
            "sender": e.sender,
            "recipients": list(e.recipients),
            "reason": e.reason,
            "detail": e.detail,
            "actor": e.actor,
            "envelope": json.loads(e.envelope) if isinstance(e.envelope, RawJson) else e.envelope,
        }
        for e in events
    ]
    return json.dumps(
        {"events": items}, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "backslashreplace")


def test_encoding_equals_json_dumps_of_the_fields() -> None:
    """Field by field, byte for byte what ``json.dumps`` writes (raw envelopes compact)."""
    at = datetime(2026, 11, 30, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    # Compact, as json.dumps writes it: a raw envelope goes in as its bytes, unchanged.
    value = {"a": [1, 2.5, None], "b": 'é"q"', "c": {"d": True}}
    raw = RawJson(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    events = [
        make_event(EventKind.RECEIVED, "m-1", at=at, type="t", sender="gs", envelope=raw),
        make_event(
            EventKind.REJECTED,
            "m-2",
            discriminator="gs:abc",
            at=at,
            recipients=("a", "b-c"),
            reason="schema_violation",
            detail='quote " backslash \\ newline \n tab \t nul \x00 é 漢字 \u2028',
            actor="operator 'x'",
            envelope={"nested": {"list": [1, -2, 3.25, 10**30], "none": None}},
        ),
        make_event(EventKind.ROUTED, "m-3", at=at.astimezone(UTC), recipients=("z",)),
    ]
    assert encode_batch(events) == _reference(events)
    assert decode_batch(encode_batch(events)) == [
        e._replace(
            at=e.at.astimezone(UTC),
            envelope=json.loads(e.envelope) if isinstance(e.envelope, RawJson) else e.envelope,
        )
        for e in events
    ]
