"""The raw baseline: a plain pika forwarder (consume, publish, confirm, ack; no validation).

It gets every optimisation of the router that is not routing work, so the ratio
between the two is the cost of what the router adds (decoding, validation,
authorisation, routing, the audit events) and nothing else: the same adapter,
prefetch (from the same settings object) and pipelined confirms; one ``send()``
per event-loop turn (:func:`liaison.adapters.coalesce.coalesce_writes`); ``multiple``
acks over contiguous runs (:class:`liaison.core.window.AckTracker`); confirms matched
by the same ordered-prefix walk; the same garbage-collector settings
(:func:`liaison.runtime.calm_gc`); and the same ack clock
(:mod:`liaison.devtools.bench.clock`).

Run as ``python -m liaison.devtools.bench.raw SOURCE_QUEUE TARGET_EXCHANGE`` with the
settings as JSON in ``$LIAISON_BENCH_SETTINGS``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType

import pika
import pika.channel
import pika.frame
import pika.spec

from liaison.adapters.coalesce import coalesce_writes
from liaison.adapters.connections import connection_parameters
from liaison.core.window import AckTracker
from liaison.devtools.bench.clock import AckClock
from liaison.runtime import calm_gc
from liaison.settings import Settings

SETTINGS_ENV = "LIAISON_BENCH_SETTINGS"


class RawForwarder:
    """Forwards every message of one queue to one exchange, acking after its confirm."""

    def __init__(self, settings: Settings, source: str, target: str, clock: AckClock) -> None:
        self._params = connection_parameters(settings, name="liaison-bench-raw")
        self._source, self._target = source, target
        self._prefetch = settings.prefetch
        self._clock = clock
        self._connection: pika.SelectConnection | None = None
        self._channel: pika.channel.Channel | None = None
        self._seq = 1
        self._pending: dict[int, int] = {}
        self._acks = AckTracker()

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
        coalesce_writes(connection)
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
        self._clock.arrived(time.monotonic())
        channel.basic_publish(self._target, method.routing_key, body, properties, mandatory=True)
        self._pending[self._seq] = method.delivery_tag
        self._seq += 1

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        channel = self._channel
        assert channel is not None
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        seqs = [method.delivery_tag]
        if method.multiple:
            # As in the router: sequence numbers only grow and the dict keeps insertion
            # order, so the confirmed ones are a prefix.
            seqs = []
            for seq in self._pending:
                if seq > method.delivery_tag:
                    break
                seqs.append(seq)
        count = 0
        for seq in seqs:
            tag = self._pending.pop(seq, None)
            if tag is None:
                continue
            if not acked:
                channel.basic_nack(tag, requeue=True)
            for ack_tag, multiple in self._acks.finish(tag, ack=acked):
                channel.basic_ack(ack_tag, multiple=multiple)
            count += acked
        if count:
            self._clock.ack(count)


def main(argv: list[str]) -> None:
    """The forwarder as its own process (see the module docstring)."""
    source, target = argv
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    clock = AckClock(sys.stdout)
    forwarder = RawForwarder(settings, source, target, clock)
    calm_gc()
    clock.start()
    forwarder.run()


if __name__ == "__main__":
    main(sys.argv[1:])
