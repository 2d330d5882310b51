"""The router's hand-encoded publish frames are byte for byte what pika would send."""

from __future__ import annotations

import math
from typing import Any

import pika
import pytest
from pika import frame, spec

from liaison.adapters.frames import FramePublisher


def _pika_frames(
    channel: int, max_body: int, exchange: str, key: str, body: bytes, **p: Any
) -> list[bytes]:
    """What ``Connection._send_message`` marshals for ``basic_publish(..., mandatory=True)``."""
    properties = pika.BasicProperties(
        content_type=p["content_type"],
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=p["message_id"],
        type=p["type_"],
        correlation_id=p["correlation_id"],
        headers=p["headers"] or None,
        timestamp=p["timestamp"],
        user_id=p["user_id"],
    )
    method = spec.Basic.Publish(exchange=exchange, routing_key=key, mandatory=True)
    frames = [
        frame.Method(channel, method).marshal(),
        frame.Header(channel, len(body), properties).marshal(),
    ]
    for chunk in range(math.ceil(len(body) / max_body)):
        frames.append(
            frame.Body(channel, body[chunk * max_body : (chunk + 1) * max_body]).marshal()
        )
    return frames


CASES: list[dict[str, Any]] = [
    {
        "content_type": "application/json",
        "message_id": "27402cec-0975-410c-a993-b43928770543",
        "type_": "correspondence.letter",
        "correlation_id": None,
        "headers": {"x-liaison-receipt-token": "68af736a38a87589afc45d93ac7c6cdd"},
        "timestamp": 1_796_030_000,
        "user_id": "liaison-hub",
    },
    {
        "content_type": "application/vnd.liaison.audit+json",
        "message_id": "0" * 32,
        "type_": "audit",
        "correlation_id": None,
        "headers": {},
        "timestamp": 0,
        "user_id": "guest",
    },
    {
        "content_type": "application/json",
        "message_id": None,
        "type_": None,
        "correlation_id": "5b4c1a9e-7d1c-4d0e-9c43-1f6f2f6b9a11",
        "headers": {
            "x-liaison-reason": "schema_violation",
            "x-liaison-reason-text": 'é 漢字 \\ " quote',
            "x-liaison-retry-to": ["gs", "gs-archives"],
            "x-count": 3,
            "x-flag": True,
        },
        "timestamp": 2**40,
        "user_id": "hub-ü",
    },
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("body", [b"", b"{}", b"x" * 1078, bytes(range(256)) * 600])
def test_frames_equal_pikas(case: dict[str, Any], body: bytes) -> None:
    max_body = 131_072 - 8  # pika's frame_max minus a frame's overhead
    publisher = FramePublisher(5, lambda _b: None, max_body, object())
    mine = publisher.encode("liaison.deliver", "gs-archives.urgent", body, **case)
    assert mine == _pika_frames(5, max_body, "liaison.deliver", "gs-archives.urgent", body, **case)


def test_publish_emits_one_buffer_and_counts_frames() -> None:
    class Stats:
        bytes_sent = 0
        frames_sent = 0

    sent: list[bytes] = []
    stats = Stats()
    publisher = FramePublisher(1, sent.append, 100, stats)
    publisher.publish("ex", "key", b"y" * 250, **CASES[0])
    assert len(sent) == 1
    assert stats.frames_sent == 5  # method, header, three body frames (100, 100, 50)
    assert stats.bytes_sent == len(sent[0])


def test_short_strings_over_255_bytes_are_refused() -> None:
    publisher = FramePublisher(1, lambda _b: None, 100, object())
    with pytest.raises(ValueError, match="short string"):
        publisher.encode("ex", "k" * 256, b"", **CASES[0])


def test_of_needs_a_pika_connection() -> None:
    assert FramePublisher.of(object()) is None
