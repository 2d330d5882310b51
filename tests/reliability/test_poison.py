"""A message that makes its consumer fail cannot hold up an inbox.

Each inbox is a quorum queue with ``x-delivery-limit`` (``settings.delivery_limit``)
and ``liaison.dead`` as its dead-letter exchange. A consumer that keeps refusing
one message (``nack`` with requeue) or keeps dying on it (no ack at all) sees it
at most ``delivery_limit + 1`` times; then RabbitMQ parks it in ``hub.dead`` with
an ``x-death`` entry whose reason is ``delivery_limit``, and the messages behind
it reach the consumer.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pika

from liaison.credentials import participant_url
from liaison.settings import Settings
from schemas import wire
from schemas.errors import ReasonCode
from schemas.examples import example_envelope
from tests.integration.harness import take

RECIPIENT = "gs-archives"
GOOD = 20


def deliver(settings: Settings, count: int) -> tuple[str, list[str]]:
    """Put a poison message and ``count`` good ones behind it into the inbox, as the router does."""
    ids: list[str] = []
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for _ in range(count + 1):
            envelope = example_envelope(
                "correspondence.letter", 1, sender="gs", recipients=(RECIPIENT,)
            )
            channel.basic_publish(
                wire.DELIVER_EXCHANGE,
                RECIPIENT,
                envelope.encode(),
                pika.BasicProperties(
                    content_type=wire.CONTENT_TYPE,
                    delivery_mode=2,
                    message_id=str(envelope.message_id),
                    type=envelope.type,
                    headers={wire.H_ORIGINAL_USER: settings.user_for("gs")},
                ),
                mandatory=True,
            )
            ids.append(str(envelope.message_id))
    finally:
        connection.close()
    return ids[0], ids[1:]


def parked(settings: Settings, poison: str) -> dict[str, Any]:
    """The headers of the one dead letter, which must be the poison message."""
    ((props, _body),) = take(settings, wire.DEAD_QUEUE, 1, timeout=30)
    assert props.message_id == poison
    headers: dict[str, Any] = props.headers
    return headers


def assert_parked_for_delivery_limit(headers: dict[str, Any]) -> None:
    """RabbitMQ's own record of why and from where it dead-lettered the message."""
    (death,) = headers["x-death"]
    assert death["reason"] == ReasonCode.DELIVERY_LIMIT.value == "delivery_limit"
    assert death["queue"] == wire.inbox_queue(RECIPIENT)
    assert death["exchange"] == wire.DELIVER_EXCHANGE
    assert death["routing-keys"] == [RECIPIENT]
    assert headers["x-first-death-reason"] == "delivery_limit"
    assert headers["x-first-death-queue"] == wire.inbox_queue(RECIPIENT)
    # The router's header survives the trip: an operator still sees who sent it.
    assert wire.H_ORIGINAL_USER in headers


class TestPoison:
    def test_nack_requeue_loop_is_cut_by_the_delivery_limit(self, hub_settings: Settings) -> None:
        """A consumer that nacks (requeue) one message forever sees it delivery_limit+1 times at most; it is parked in hub.dead and the rest arrive."""
        s = hub_settings
        poison, good = deliver(s, GOOD)
        limit = s.delivery_limit
        poison_seen: list[int] = []
        handled: list[str] = []
        connection = pika.BlockingConnection(pika.URLParameters(participant_url(s, RECIPIENT)))
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=10)
            for method, props, _body in channel.consume(
                wire.inbox_queue(RECIPIENT), inactivity_timeout=3.0
            ):
                if method is None:
                    break
                if props.message_id == poison:
                    poison_seen.append(int((props.headers or {}).get("x-delivery-count", 0)))
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    assert len(poison_seen) <= limit + 1, "the consumer is looping on the poison"
                    continue
                handled.append(props.message_id)
                channel.basic_ack(method.delivery_tag)
            channel.cancel()
        finally:
            connection.close()
        assert handled == good  # every message behind it, in order, once
        assert len(poison_seen) == limit + 1
        assert poison_seen == list(range(limit + 1))  # x-delivery-count 0, 1, …, limit
        assert_parked_for_delivery_limit(parked(s, poison))

    def test_consumer_dying_on_a_message_is_cut_by_the_delivery_limit(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """A consumer process that dies without ack on one message, restarted by its supervisor each time, gets past it after delivery_limit+1 crashes."""
        s = hub_settings
        poison, good = deliver(s, GOOD)
        out = tmp_path / "handled.txt"
        out.touch()
        exits: list[int] = []
        for _restart in range(s.delivery_limit + 5):
            exits.append(
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "tests.reliability.crashing_consumer",
                        participant_url(s, RECIPIENT),
                        wire.inbox_queue(RECIPIENT),
                        poison,
                        str(out),
                    ],
                    timeout=60,
                    check=False,
                ).returncode
            )
            if exits[-1] == 0:
                break
        lines = out.read_text().splitlines()
        crashes = [line for line in lines if line.startswith("crash ")]
        handled = [line.removeprefix("ok ") for line in lines if line.startswith("ok ")]
        assert exits == [3] * (s.delivery_limit + 1) + [0]
        assert len(crashes) == s.delivery_limit + 1
        assert handled == good
        assert_parked_for_delivery_limit(parked(s, poison))

    def test_other_inboxes_are_unaffected(self, hub_settings: Settings) -> None:
        """While one consumer refuses a message, other participants' inboxes stay empty of it and nothing else is dead-lettered."""
        s = hub_settings
        poison, _good = deliver(s, 0)
        connection = pika.BlockingConnection(pika.URLParameters(participant_url(s, RECIPIENT)))
        try:
            channel = connection.channel()
            refused = 0
            for method, _props, _body in channel.consume(
                wire.inbox_queue(RECIPIENT), inactivity_timeout=2.0
            ):
                if method is None:
                    break
                channel.basic_reject(method.delivery_tag, requeue=True)
                refused += 1
            channel.cancel()
        finally:
            connection.close()
        assert refused == s.delivery_limit + 1
        assert parked(s, poison)["x-first-death-reason"] == "delivery_limit"
        probe = pika.BlockingConnection(pika.URLParameters(s.amqp_url))
        try:
            channel = probe.channel()
            for code in ("gs", "gs-legal", RECIPIENT):
                frame = channel.queue_declare(wire.inbox_queue(code), passive=True)
                assert frame.method.message_count == 0
            assert channel.queue_declare(wire.DEAD_QUEUE, passive=True).method.message_count == 0
        finally:
            probe.close()
        assert uuid.UUID(poison)
