"""The router's hand-encoded publish frames are byte for byte what pika would send."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pika
import pika.callback
import pika.channel
import pika.connection
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.adapters.frames import FramePublisher


class _Captured(pika.connection.Connection):  # type: ignore[misc]
    """A pika connection with no socket: what it would send is kept in ``out``."""

    def __init__(self, max_body: int) -> None:  # no super(): nothing to connect
        self._body_max_length = max_body
        self.bytes_sent = 0
        self.frames_sent = 0
        self.callbacks = pika.callback.CallbackManager()
        self.out: list[bytes] = []

    def _adapter_emit_data(self, data: bytes) -> None:
        self.out.append(data)


_Captured.__abstractmethods__ = frozenset()


def _pika_frames(
    channel: int, max_body: int, exchange: str, key: str, body: bytes, **p: Any
) -> list[bytes]:
    """What pika's own ``Channel.basic_publish(..., mandatory=True)`` sends, frame by frame."""
    connection = _Captured(max_body)
    pika_channel = pika.channel.Channel(connection, channel, lambda _c: None)
    pika_channel._set_state(pika_channel.OPEN)
    properties = pika.BasicProperties(
        content_type=p["content_type"],
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=p["message_id"],
        type=p["type_"],
        correlation_id=p["correlation_id"],
        headers=p["headers"] or None,  # as the router's basic_publish path passes them
        timestamp=p["timestamp"],
        user_id=p["user_id"],
    )
    pika_channel.basic_publish(exchange, key, body, properties, mandatory=True)
    return connection.out


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


class _Band(StrEnum):
    URGENT = "FLASH"


CASES.append(
    {  # boundaries: empty strings, a 255-byte short string, a StrEnum header value
        "content_type": "",
        "message_id": "m" * 255,
        "type_": "",
        "correlation_id": "",
        "headers": {"x-liaison-precedence": _Band.URGENT, "k" * 255: "v"},
        "timestamp": 2**64 - 1,
        "user_id": "u",
    }
)
MAX_BODY = 131_072 - 8  # pika's default frame_max minus a frame's overhead


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b"x" * 1078, b"y" * MAX_BODY, b"z" * (MAX_BODY + 1), bytes(range(256)) * 1100],
)
@pytest.mark.parametrize("channel", [1, 300, 65535])
def test_frames_equal_pikas(case: dict[str, Any], body: bytes, channel: int) -> None:
    publisher = FramePublisher(channel, lambda _b: None, MAX_BODY, object())
    mine = publisher.encode("liaison.deliver", "gs-archives.urgent", body, **case)
    assert mine == _pika_frames(
        channel, MAX_BODY, "liaison.deliver", "gs-archives.urgent", body, **case
    )


_text = st.text(max_size=40)
# pika hands a short string that is not UTF-8 over as bytes, and publishes bytes as they
# are: the frame writer must too (a participant's message id b"\xff" once crashed it).
_short = _text | st.binary(max_size=40)
_header_value = st.one_of(
    _text,
    st.binary(max_size=20),
    st.integers(-(2**31), 2**31 - 1),
    st.booleans(),
    st.lists(_text, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    exchange=_text,
    key=_short,
    body=st.binary(max_size=300),
    max_body=st.integers(1, 120),
    content_type=_text,
    message_id=st.none() | _short,
    type_=st.none() | _short,
    correlation_id=st.none() | _short,
    headers=st.none() | st.dictionaries(_short, _header_value, max_size=4),
    timestamp=st.integers(0, 2**64 - 1),
    user_id=_text,
)
def test_any_publish_equals_pikas(
    exchange: str, key: Any, body: bytes, max_body: int, **case: Any
) -> None:
    """Whatever the strings, headers and body (split at any frame size): pika's bytes."""
    publisher = FramePublisher(7, lambda _b: None, max_body, object())
    mine = publisher.encode(exchange, key, body, **case)
    assert mine == _pika_frames(7, max_body, exchange, key, body, **case)


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
