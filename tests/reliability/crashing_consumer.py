"""A consumer that dies on one message, as a buggy participant system would.

Run as ``python -m tests.reliability.crashing_consumer URL QUEUE POISON_ID OUT``:
it consumes ``QUEUE`` one message at a time (prefetch 1), appends the message id
of every message it handles to ``OUT`` and acks it; on the message whose id is
``POISON_ID`` it exits at once with status 3, without acking (a crash). It exits
0 after two seconds without a message.
"""

from __future__ import annotations

import os
import sys

import pika


def main(argv: list[str]) -> int:
    """Entry point: see the module docstring."""
    url, queue, poison, out = argv
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)
    with open(out, "a", encoding="utf-8") as handled:
        for method, props, _body in channel.consume(queue, inactivity_timeout=2.0):
            if method is None:
                break
            if props.message_id == poison:
                handled.write(f"crash {props.message_id}\n")
                handled.flush()
                os._exit(3)
            handled.write(f"ok {props.message_id}\n")
            handled.flush()
            channel.basic_ack(method.delivery_tag)
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
