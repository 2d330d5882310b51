"""Load generation for the benchmarks: pipelined publishing and queue-depth watching."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pika
import pika.channel
import pika.frame
import pika.spec

MAX_IN_FLIGHT = 1_000


class _PipelinedPublisher:
    """Keeps up to ``max_in_flight`` unconfirmed publishes going until all are confirmed."""

    def __init__(
        self,
        exchange: str,
        messages: Sequence[tuple[str, bytes, pika.BasicProperties]],
        max_in_flight: int,
    ) -> None:
        self.exchange, self.messages, self.max_in_flight = exchange, messages, max_in_flight
        self.next = self.confirmed = 0
        self.seq = 1
        self.pending: set[int] = set()
        self.failed = ""
        self.channel: pika.channel.Channel | None = None

    def on_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self.on_channel)

    def on_open_error(self, connection: pika.SelectConnection, error: Exception) -> None:
        self.failed = str(error)
        connection.ioloop.stop()

    def on_channel(self, channel: pika.channel.Channel) -> None:
        self.channel = channel
        channel.add_on_return_callback(self.on_return)
        channel.confirm_delivery(ack_nack_callback=self.on_confirm, callback=self.fill)

    def on_return(self, *_args: object) -> None:
        self.failed = "returned"

    def fill(self, _frame: object = None) -> None:
        assert self.channel is not None
        while len(self.pending) < self.max_in_flight and self.next < len(self.messages):
            key, body, props = self.messages[self.next]
            self.channel.basic_publish(self.exchange, key, body, props, mandatory=True)
            self.pending.add(self.seq)
            self.seq += 1
            self.next += 1

    def on_confirm(self, frame: pika.frame.Method) -> None:
        assert self.channel is not None
        method = frame.method
        if not isinstance(method, pika.spec.Basic.Ack):
            self.failed = "nacked"
        tag = method.delivery_tag
        done = {s for s in self.pending if s <= tag} if method.multiple else {tag}
        self.pending.difference_update(done)
        self.confirmed += len(done)
        if self.confirmed >= len(self.messages) or self.failed:
            self.channel.connection.close()
        else:
            self.fill()


def publish_pipelined(
    url: str,
    exchange: str,
    messages: Sequence[tuple[str, bytes, pika.BasicProperties]],
    *,
    max_in_flight: int = MAX_IN_FLIGHT,
) -> float:
    """Publish (routing key, body, properties) with confirms, many in flight; seconds taken.

    Raises ``RuntimeError`` when the broker nacks or returns anything: a load that
    was not fully accepted would make every figure after it meaningless.
    """
    if not messages:
        return 0.0
    publisher = _PipelinedPublisher(exchange, messages, max_in_flight)
    started = time.perf_counter()
    connection = pika.SelectConnection(
        pika.URLParameters(url),
        on_open_callback=publisher.on_open,
        on_open_error_callback=publisher.on_open_error,
        on_close_callback=lambda c, _r: c.ioloop.stop(),
    )
    connection.ioloop.start()
    if publisher.failed:
        raise RuntimeError(f"load publish failed: {publisher.failed}")
    return time.perf_counter() - started


def queue_depth(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> int:
    """Ready messages in ``queue`` (a passive declare: works without the management API)."""
    frame = channel.queue_declare(queue, passive=True)
    return int(frame.method.message_count)


def watch_drain(
    url: str, queue: str, expected: int, *, timeout: float = 300.0, poll: float = 0.02
) -> float:
    """Messages per second at which ``queue`` filled to ``expected``, timed from the first one."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        first_at: float | None = None
        first_count = 0
        while time.monotonic() < deadline:
            count = queue_depth(channel, queue)
            now = time.perf_counter()
            if first_at is None and count > 0:
                first_at, first_count = now, count
            if count >= expected:
                if first_at is None or now == first_at:
                    return float("inf")
                return (expected - first_count) / (now - first_at)
            time.sleep(poll)
        raise TimeoutError(f"{queue} reached only {queue_depth(channel, queue)} of {expected}")
    finally:
        connection.close()
