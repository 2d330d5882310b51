"""The raw baseline: a plain pika forwarder (consume, publish, confirm, ack; no validation).

Same adapter, same prefetch and the same pipelined confirms as the router, so
the ratio between the two is the cost of what the router adds: decoding,
validation, authorisation, routing and the audit event.

Run as ``python -m liaison.bench.raw URL SOURCE_QUEUE TARGET_EXCHANGE PREFETCH``.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import pika
import pika.channel
import pika.frame
import pika.spec


class RawForwarder:
    """Forwards every message of one queue to one exchange, acking after its confirm."""

    def __init__(self, url: str, source: str, target: str, prefetch: int) -> None:
        self._params = pika.URLParameters(url)
        self._source, self._target, self._prefetch = source, target, prefetch
        self._connection: pika.SelectConnection | None = None
        self._channel: pika.channel.Channel | None = None
        self._seq = 1
        self._pending: dict[int, int] = {}

    def run(self) -> None:
        """Forward until SIGTERM."""
        signal.signal(signal.SIGTERM, self._on_signal)
        self._connection = pika.SelectConnection(
            self._params,
            on_open_callback=self._on_open,
            on_close_callback=lambda c, _r: c.ioloop.stop(),
        )
        self._connection.ioloop.start()

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        if self._connection is not None:
            self._connection.ioloop.add_callback_threadsafe(self._connection.close)

    def _on_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_on)

    def _on_confirm_on(self, _frame: pika.frame.Method) -> None:
        assert self._channel is not None
        self._channel.basic_qos(prefetch_count=self._prefetch, callback=self._on_qos)

    def _on_qos(self, _frame: pika.frame.Method) -> None:
        assert self._channel is not None
        self._channel.basic_consume(self._source, self._on_message)

    def _on_message(
        self,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        channel.basic_publish(self._target, method.routing_key, body, properties, mandatory=True)
        self._pending[self._seq] = method.delivery_tag
        self._seq += 1

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        assert self._channel is not None
        method = frame.method
        tags = [method.delivery_tag]
        if method.multiple:
            tags = [seq for seq in self._pending if seq <= method.delivery_tag]
        for seq in tags:
            tag = self._pending.pop(seq, None)
            if tag is None:
                continue
            if isinstance(method, pika.spec.Basic.Ack):
                self._channel.basic_ack(tag)
            else:
                self._channel.basic_nack(tag, requeue=True)


if __name__ == "__main__":
    url, source, target, prefetch = sys.argv[1:5]
    RawForwarder(url, source, target, int(prefetch)).run()
