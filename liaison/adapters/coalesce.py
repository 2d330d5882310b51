"""One send per event-loop turn on the router's connection, instead of one per frame.

pika's asynchronous transport queues every AMQP frame as its own buffer and
sends each with its own ``send()`` call: three system calls per published
message (method, header, body) and one per ack. Under load the router has
hundreds of frames queued per loop turn, so joining them before pika sends
them saves most of those calls. The bytes and their order are unchanged, and
pika's own partial-send handling still applies to the joined buffer.

This reaches into one private attribute of pika's plaintext transport; when the
attribute is not what is expected (another pika version, TLS) nothing is
changed and the connection works as plain pika does.
"""

from __future__ import annotations

from collections import deque
from typing import Any


def coalesce_writes(connection: Any) -> bool:
    """Make ``connection``'s transport send all queued frames at once; whether it could."""
    transport = getattr(connection, "_transport", None)
    buffers = getattr(transport, "_tx_buffers", None)
    produce = getattr(transport, "_produce", None)
    if type(transport).__name__ != "_AsyncPlaintextTransport":
        return False
    if not isinstance(buffers, deque) or not callable(produce):
        return False

    def coalescing_produce() -> None:
        if len(buffers) > 1:
            joined = b"".join(buffers)
            buffers.clear()
            buffers.append(joined)
        produce()

    transport._produce = coalescing_produce  # type: ignore[union-attr]
    return True
