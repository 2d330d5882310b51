"""Load watching for the benchmarks: queue depths and drain rates."""

from __future__ import annotations

import time

import pika
import pika.adapters.blocking_connection
import pika.channel
import pika.connection
import pika.frame
import pika.spec


def queue_depth(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> int:
    """Ready messages in ``queue`` (a passive declare: works without the management API)."""
    frame = channel.queue_declare(queue, passive=True)
    return int(frame.method.message_count)


def watch_drain(
    params: pika.connection.Parameters,
    queue: str,
    expected: int,
    *,
    timeout: float = 300.0,
    poll: float = 0.02,
) -> float:
    """Messages per second at which ``queue`` filled to ``expected``, timed from the first one."""
    connection = pika.BlockingConnection(params)
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


def purge(params: pika.connection.Parameters, queue: str) -> None:
    """Empty ``queue`` between runs."""
    connection = pika.BlockingConnection(params)
    try:
        connection.channel().queue_purge(queue)
    finally:
        connection.close()
