"""The latency run's load: messages offered at a steady rate, timed to the recipient's inbox.

One pika asynchronous event loop carries both connections (the sender's, to publish;
the hub's, to read the recipient's inbox with automatic acks): a timer publishes
what is due every ``TICK_S``, each message stamped (``created_at``) with the moment
it was due, not the moment the tick got to it: a late tick (a busy loop, a busy
machine) counts in the latency, as a sender's would. The blocking adapter it
replaces spent about 0.4 ms of CPU per message on this side alone (one flush and
one poll per publish, a thread per direction), CPU that a 2-core machine then took
from the hub it was measuring.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pika
import pika.channel
import pika.connection
import pika.spec
from pika.adapters.select_connection import IOLoop

from liaison.adapters.coalesce import coalesce_writes

#: How often due messages are published (in one write).
TICK_S = 0.005


class PacedRun:
    """Offer ``total`` messages at ``rate``/s; record ms from ``created_at`` to arrival."""

    def __init__(
        self,
        *,
        publish_params: pika.connection.Parameters,
        consume_params: pika.connection.Parameters,
        exchange: str,
        routing_key: str,
        inbox: str,
        properties: pika.BasicProperties,
        body: Callable[[datetime], bytes],
        rate: int,
        total: int,
        timeout: float = 120.0,
    ) -> None:
        self._publish_params, self._consume_params = publish_params, consume_params
        self._exchange, self._routing_key, self._inbox = exchange, routing_key, inbox
        self._properties, self._body = properties, body
        self._rate, self._total, self._timeout = rate, total, timeout
        self.received: list[float] = []
        self._sent = 0
        self._start = 0.0
        self._start_wall = datetime.now(UTC)
        self._closing = False
        self._publisher: pika.channel.Channel | None = None
        self._connections: list[pika.SelectConnection] = []
        self._ioloop = IOLoop()
        self.error = ""

    def run(self) -> list[float]:
        """Run to the last arrival (or the timeout); milliseconds per message, in order."""
        self._connections.append(
            pika.SelectConnection(
                self._consume_params,
                on_open_callback=lambda c: c.channel(on_open_callback=self._on_consumer),
                on_open_error_callback=self._on_error,
                on_close_callback=self._on_closed,
                custom_ioloop=self._ioloop,
            )
        )
        self._ioloop.call_later(self._timeout, self._stop)
        self._ioloop.start()
        if self.error:
            raise RuntimeError(f"latency run: {self.error}")
        return self.received

    def _on_consumer(self, channel: pika.channel.Channel) -> None:
        channel.basic_qos(prefetch_count=1000)
        channel.basic_consume(self._inbox, self._on_arrival, auto_ack=True)
        # Publish only once the inbox is being read: nothing waits in it before.
        self._connections.append(
            pika.SelectConnection(
                self._publish_params,
                on_open_callback=self._on_publisher_open,
                on_open_error_callback=self._on_error,
                on_close_callback=self._on_closed,
                custom_ioloop=self._ioloop,
            )
        )

    def _on_publisher_open(self, connection: pika.SelectConnection) -> None:
        coalesce_writes(connection)
        connection.channel(on_open_callback=self._on_publisher)

    def _on_publisher(self, channel: pika.channel.Channel) -> None:
        self._publisher = channel
        self._start, self._start_wall = time.perf_counter(), datetime.now(UTC)
        self._tick()

    def _tick(self) -> None:
        assert self._publisher is not None
        due = min(self._total, int((time.perf_counter() - self._start) * self._rate) + 1)
        while self._sent < due:
            at = self._start_wall + timedelta(seconds=self._sent / self._rate)
            self._publisher.basic_publish(
                self._exchange, self._routing_key, self._body(at), self._properties
            )
            self._sent += 1
        if self._sent < self._total:
            self._ioloop.call_later(TICK_S, self._tick)

    def _on_arrival(
        self,
        _channel: pika.channel.Channel,
        _method: pika.spec.Basic.Deliver,
        _properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        arrived = datetime.now(UTC)
        created = datetime.fromisoformat(
            body.split(b'"created_at":"', 1)[1].split(b'"', 1)[0].decode()
        )
        self.received.append((arrived - created).total_seconds() * 1000)
        if len(self.received) >= self._total:
            self._stop()

    def _stop(self) -> None:
        """Close both connections; the loop stops once they are closed."""
        self._closing = True
        open_ = [c for c in self._connections if not c.is_closed]
        for connection in open_:
            if not connection.is_closing:
                connection.close()
        if not open_:
            self._ioloop.stop()

    def _on_error(self, _connection: pika.SelectConnection, error: Exception) -> None:
        self.error = f"cannot connect: {error}"
        self._stop()

    def _on_closed(self, _connection: pika.SelectConnection, reason: Exception) -> None:
        if not self._closing:
            self.error = self.error or f"connection lost: {reason}"
            self._stop()
        elif all(c.is_closed for c in self._connections):
            self._ioloop.stop()
