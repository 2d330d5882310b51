"""Audit event batches: what the router publishes is what the writer reads."""

from __future__ import annotations

import json

from liaison.core.events import EventKind, RawJson, decode_batch, encode_batch, make_event
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
