"""Edge SDK for systems that consume their inbox from the hub (kombu).

It imports ``schemas`` and ``producers`` (settings, publishing) and never the
hub (``liaison``)::

    from consumers import Consumer, SqliteStore
    from producers import ParticipantSettings

    consumer = Consumer(ParticipantSettings.from_env(), store=SqliteStore("seen.db"))

    @consumer.handler(Letter)
    def file_letter(envelope: Envelope[Letter]) -> None: ...

    consumer.run()
"""

from __future__ import annotations

from consumers.consumer import Consumer, Outcome
from consumers.errors import ConsumeError, ReplyTimeout
from consumers.handlers import Handler, HandlerTable, Waiter
from consumers.reply import request
from consumers.retry import PARK_DELAY, RetryPolicy
from consumers.stores import IdempotencyStore, InMemoryStore, SqliteStore

__all__ = [
    "PARK_DELAY",
    "ConsumeError",
    "Consumer",
    "Handler",
    "HandlerTable",
    "IdempotencyStore",
    "InMemoryStore",
    "Outcome",
    "ReplyTimeout",
    "RetryPolicy",
    "SqliteStore",
    "Waiter",
    "request",
]
