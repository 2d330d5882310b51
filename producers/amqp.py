"""kombu and py-amqp behind one seam, typed as ``Any``.

kombu 5.7 ships partial annotations that strict mypy rejects at every call
(untyped functions, names not re-exported), and py-amqp ships none. The SDK
talks to them only through these names. A public module of the SDK, so the
consumer side shares it without reaching into a private part of ``producers``.
"""

from __future__ import annotations

from typing import Any

from amqp.exceptions import MessageNacked as _MessageNacked  # type: ignore[import-untyped]
from kombu.connection import Connection as _Connection
from kombu.entity import Queue as _Queue
from kombu.exceptions import KombuError as _KombuError
from kombu.exceptions import OperationalError as _OperationalError
from kombu.messaging import Consumer as _Consumer
from kombu.messaging import Producer as _Producer

Connection: Any = _Connection
Producer: Any = _Producer
Consumer: Any = _Consumer
Queue: Any = _Queue
#: The broker nacked a confirmed publish.
MessageNacked: type[Exception] = _MessageNacked
#: Base of kombu's own errors; OperationalError: the broker stayed out of reach.
KombuError: type[Exception] = _KombuError
OperationalError: type[Exception] = _OperationalError

__all__ = [
    "Connection",
    "Consumer",
    "KombuError",
    "MessageNacked",
    "OperationalError",
    "Producer",
    "Queue",
]
