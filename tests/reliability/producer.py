"""A producer as a real one behaves under faults: pipelined confirms, retries, reconnection.

Run as its own process by the no-loss test::

    python -m tests.reliability.producer URL USER SENDER RECIPIENTS COUNT RATE OUT

It publishes ``COUNT`` letters from ``SENDER`` (its own RabbitMQ user ``USER``) to
the comma-separated ``RECIPIENTS`` (round robin, one or two per message), at most
``RATE`` per second, with up to :data:`MAX_IN_FLIGHT` unconfirmed publishes. A
publish counts as done only when the broker acks it; a nack, a return, a lost
connection or a confirm that never comes sends it again (same bytes, same
message id). When every message is confirmed it writes the confirmed message ids
and their recipients (``id<TAB>a,b`` lines) to ``OUT`` and a JSON line of counters to standard output.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import pika
import pika.channel
import pika.exceptions
import pika.frame
import pika.spec

from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import new_envelope

MAX_IN_FLIGHT = 500
#: No confirm for this long while publishes are in flight: assume they are lost.
STALL_S = 15.0
RECONNECT_S = 0.5
DEADLINE_S = 1_800.0
TICK_S = 0.01


@dataclass
class Counters:
    """What one producer went through (printed as JSON at the end)."""

    sender: str
    messages: int = 0
    published: int = 0
    confirmed: int = 0
    nacked: int = 0
    returned: int = 0
    republished: int = 0
    connections: int = 0
    connect_failures: int = 0
    stalls: int = 0
    seconds: float = 0.0


def letters(sender: str, recipients: list[str], count: int) -> list[tuple[str, bytes, str]]:
    """``count`` (message id, body, recipients): small letters, one or two recipients each."""
    found: list[tuple[str, bytes, str]] = []
    for n in range(count):
        first = recipients[n % len(recipients)]
        to = [first]
        if n % 5 == 0 and len(recipients) > 1:
            to.append(recipients[(n + 1) % len(recipients)])
        letter = Letter(
            registry_reference=f"PROOF/{sender}/{n:07d}",
            subject=f"No-loss proof {n}",
            body="Message under fault injection.",
            addressee="Service des archives",
            signatory="Le Secrétaire général",
        )
        envelope = new_envelope(letter, sender=sender, recipients=to)
        found.append((str(envelope.message_id), envelope.encode(), ",".join(to)))
    return found


class Producer:
    """Publishes a fixed list until the broker has confirmed every message."""

    def __init__(
        self, url: str, user: str, messages: list[tuple[str, bytes, str]], rate: float, sender: str
    ) -> None:
        # Several comma-separated URLs (a cluster's nodes): each reconnection takes the next.
        self._nodes = [pika.URLParameters(one.strip()) for one in url.split(",") if one.strip()]
        for params in self._nodes:
            params.client_properties = {"connection_name": f"proof-producer-{sender}"}
            params.heartbeat = 10
            params.socket_timeout = 5
        self._attempts = 0
        self._user = user
        self._messages = messages
        self._rate = rate
        self._unsent: deque[int] = deque(range(len(messages)))
        self._in_flight: dict[int, int] = {}  # publish sequence number -> message index
        self._returned: set[int] = set()
        self.confirmed: set[int] = set()
        self.counters = Counters(sender=sender, messages=len(messages))
        self._ever_sent: set[int] = set()
        self._connection: pika.SelectConnection | None = None
        self._channel: pika.channel.Channel | None = None
        self._seq = 1
        self._started = 0.0
        self._allowed = 0.0
        self._last_progress = 0.0

    def run(self) -> None:
        """Publish until all are confirmed (reconnecting as often as needed) or the deadline."""
        self._started = time.monotonic()
        while len(self.confirmed) < len(self._messages):
            if time.monotonic() - self._started > DEADLINE_S:
                raise TimeoutError(f"{len(self.confirmed)} of {len(self._messages)} confirmed")
            self._attempts += 1
            self._connection = pika.SelectConnection(
                self._nodes[self._attempts % len(self._nodes)],
                on_open_callback=self._on_open,
                on_open_error_callback=self._on_open_error,
                on_close_callback=self._on_closed,
            )
            self._connection.ioloop.start()
            self._requeue_in_flight()
            if len(self.confirmed) < len(self._messages):
                time.sleep(RECONNECT_S)
        self.counters.confirmed = len(self.confirmed)
        self.counters.seconds = round(time.monotonic() - self._started, 2)

    def confirmed_lines(self) -> list[str]:
        """``message id<TAB>recipients`` of every message the broker confirmed."""
        return [f"{self._messages[i][0]}\t{self._messages[i][2]}" for i in sorted(self.confirmed)]

    # -- connection ---------------------------------------------------------------------

    def _on_open(self, connection: pika.SelectConnection) -> None:
        self.counters.connections += 1
        connection.channel(on_open_callback=self._on_channel)

    def _on_open_error(self, connection: pika.SelectConnection, _error: Exception) -> None:
        self.counters.connect_failures += 1
        connection.ioloop.stop()

    def _on_closed(self, connection: pika.SelectConnection, _reason: Exception) -> None:
        self._channel = None
        connection.ioloop.stop()

    def _on_channel(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        self._seq = 1
        channel.add_on_return_callback(self._on_return)
        channel.add_on_close_callback(self._on_channel_closed)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirming)

    def _on_channel_closed(self, _channel: pika.channel.Channel, _reason: Exception) -> None:
        connection = self._connection
        if connection is not None and connection.is_open:
            connection.close()

    def _on_confirming(self, _frame: pika.frame.Method) -> None:
        self._allowed = 0.0
        self._last_progress = time.monotonic()
        self._tick()

    def _requeue_in_flight(self) -> None:
        """Everything not confirmed on a channel that is gone goes out again, first."""
        for index in sorted(self._in_flight.values(), reverse=True):
            self._unsent.appendleft(index)
        self._in_flight.clear()
        self._returned.clear()

    # -- publishing ----------------------------------------------------------------------

    def _tick(self) -> None:
        channel, connection = self._channel, self._connection
        if channel is None or connection is None or not channel.is_open:
            return
        if len(self.confirmed) >= len(self._messages):
            connection.close()
            return
        now = time.monotonic()
        if self._in_flight and now - self._last_progress > STALL_S:
            # The broker took the publishes but never confirmed them: start over.
            self.counters.stalls += 1
            connection.close()
            return
        self._allowed = min(self._allowed + self._rate * TICK_S, float(MAX_IN_FLIGHT))
        try:
            self._publish_allowed(channel)
        except pika.exceptions.AMQPError:
            # The channel or connection is going away; its close callback requeues.
            return
        connection.ioloop.call_later(TICK_S, self._tick)

    def _publish_allowed(self, channel: pika.channel.Channel) -> None:
        while self._allowed >= 1 and self._unsent and len(self._in_flight) < MAX_IN_FLIGHT:
            index = self._unsent[0]
            if index in self.confirmed:
                self._unsent.popleft()
                continue
            message_id, body, _to = self._messages[index]
            channel.basic_publish(
                wire.INGRESS_EXCHANGE,
                "correspondence.letter",
                body,
                pika.BasicProperties(
                    content_type=wire.CONTENT_TYPE,
                    delivery_mode=pika.DeliveryMode.Persistent,
                    user_id=self._user,
                    message_id=message_id,
                    type="correspondence.letter",
                ),
                mandatory=True,
            )
            # Taken off the list only once handed to pika: a publish that raises stays.
            self._unsent.popleft()
            if index in self._ever_sent:
                self.counters.republished += 1
            self._ever_sent.add(index)
            self.counters.published += 1
            self._in_flight[self._seq] = index
            self._seq += 1
            self._allowed -= 1

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        _method: pika.spec.Basic.Return,
        properties: pika.spec.BasicProperties,
        _body: bytes,
    ) -> None:
        # The ack that follows a return only says "handled": the message reached no queue.
        self.counters.returned += 1
        for seq, index in self._in_flight.items():
            if self._messages[index][0] == properties.message_id:
                self._returned.add(seq)

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        if method.multiple:
            seqs = [seq for seq in self._in_flight if seq <= method.delivery_tag]
        else:
            seqs = [method.delivery_tag]
        for seq in seqs:
            index = self._in_flight.pop(seq, None)
            if index is None:
                continue
            if acked and seq not in self._returned:
                self.confirmed.add(index)
            else:
                self.counters.nacked += 0 if acked else 1
                self._unsent.append(index)
            self._returned.discard(seq)
        self._last_progress = time.monotonic()


def main(argv: list[str]) -> int:
    """Entry point: see the module docstring for the arguments."""
    url, user, sender, recipients, count, rate, out = argv
    messages = letters(sender, recipients.split(","), int(count))
    producer = Producer(url, user, messages, float(rate), sender)
    try:
        producer.run()
    except pika.exceptions.AMQPError as exc:  # pragma: no cover - reported, not expected
        print(json.dumps({"error": repr(exc)}), flush=True)
        return 1
    Path(out).write_text("\n".join(producer.confirmed_lines()) + "\n", encoding="utf-8")
    print(json.dumps(asdict(producer.counters)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
