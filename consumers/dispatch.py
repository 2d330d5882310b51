"""What happens to one delivery from the inbox: the consumer's per-message logic, without the loop.

In order:

0. the copy must come from the hub: its ``user_id`` (validated by RabbitMQ) is the
   hub's user, and a retry the hub relayed (``x-liaison-own-retry``) is this
   consumer's own. Anything else is refused: not handled, parked in dead letters
   as ``not_from_hub`` (through the hub's retry relay, like every give-up), and
   acked only once that is confirmed;
1. decode with the registry; bytes that break the contract are parked in dead
   letters with the contract's reason (the consumer never crashes on input);
2. a pending request waiting for this answer takes it;
3. the handler table picks the handler, adapting a newer version down to the
   newest one the handler knows; no handler: parked as ``no_handler`` (or held
   unacked, for a requester borrowing the inbox);
4. a key already in the idempotency store is acked and skipped;
5. the handler runs; when it returns, the key is recorded, then the message is
   acked. When it raises, the same bytes go to ``liaison.retry`` for the next
   delay of the :class:`~consumers.retry.RetryPolicy`, or to dead letters after
   the last one, and only once the broker confirmed that is the original acked.

A delivery is anything with kombu's message surface: ``body``, ``headers``,
``properties``, ``content_encoding``, ``ack()``, ``reject(requeue)``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any
from uuid import UUID

from consumers.handlers import HandlerTable, Waiter
from consumers.retry import RetryPolicy, failure_headers, next_step, park_headers
from consumers.stores import IdempotencyStore
from producers.errors import PublishError
from producers.publisher import Publisher
from producers.settings import ParticipantSettings
from schemas import wire
from schemas.envelope import Envelope
from schemas.errors import ContractError, ReasonCode
from schemas.registry import Registry

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """What became of one delivery."""

    HANDLED = "handled"
    DUPLICATE = "duplicate"
    RETRIED = "retried"
    PARKED = "parked"
    ANSWER = "answer"
    HELD = "held"
    REQUEUED = "requeued"


class Dispatcher:
    """Decides and carries out the fate of each delivery (see the module docstring)."""

    def __init__(
        self,
        settings: ParticipantSettings,
        *,
        registry: Registry,
        table: HandlerTable,
        store: IdempotencyStore,
        retry: RetryPolicy,
        publisher: Callable[[], Publisher],
        hold_unhandled: bool = False,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._table = table
        self._store = store
        self._retry = retry
        self._publisher = publisher
        self._hold = hold_unhandled
        self._held: list[Any] = []
        self._waiters: list[Waiter] = []
        self._lock = threading.Lock()
        self.counts: Counter[Outcome] = Counter()

    @contextmanager
    def expect(self, request_id: UUID, types: Collection[str] | None = None) -> Iterator[Waiter]:
        """While the block runs, a message answering ``request_id`` goes to the waiter."""
        waiter = Waiter(request_id, types)
        with self._lock:
            self._waiters.append(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                self._waiters.remove(waiter)

    def forget_held(self) -> None:
        """The channel holding the held messages is gone: the broker has them back."""
        self._held.clear()

    def handle(self, message: Any) -> Outcome:
        """Process one delivery and count its outcome."""
        try:
            outcome = self._process(message)
        except PublishError as exc:
            # Retrying or parking could not be published: keep the message. It goes back
            # to the queue; past the queue's delivery limit the broker dead-letters it.
            log.error("consumer.republish_failed outcome=requeued error=%s", exc)  # noqa: TRY400 - the message says it all
            message.reject(requeue=True)
            outcome = Outcome.REQUEUED
        self.counts[outcome] += 1
        return outcome

    def _process(self, message: Any) -> Outcome:  # noqa: PLR0911 - one return per outcome
        body = message.body
        if isinstance(body, str):
            body = body.encode(message.content_encoding or "utf-8")
        stranger = self._not_from_hub(message)
        if stranger is not None:
            return self._park(message, body, ReasonCode.NOT_FROM_HUB, stranger, None)
        try:
            envelope = self._registry.decode(body)
        except ContractError as exc:
            return self._park(message, body, exc.reason, exc.message, exc.path)
        # Kept for a receipt the handler (or a later send_receipt) may send.
        token = (message.headers or {}).get(wire.H_RECEIPT_TOKEN)
        if token is not None:
            self._publisher().delivery_tokens.record(envelope.sender, envelope.message_id, token)
        waiter = self._waiter_for(envelope)
        if waiter is not None:
            message.ack()
            waiter.deliver(envelope)
            return Outcome.ANSWER
        try:
            resolved = self._table.resolve(envelope)
        except ContractError as exc:
            return self._park(message, body, exc.reason, exc.message, exc.path)
        if resolved is None:
            if self._hold:
                self._held.append(message)
                return Outcome.HELD
            text = f"no handler for {envelope.type} in {self._settings.code!r}'s consumer"
            return self._park(message, body, ReasonCode.NO_HANDLER, text, "type")
        key = f"{envelope.sender}/{envelope.message_id}"
        if self._store.seen(key):
            message.ack()
            return Outcome.DUPLICATE
        handler, adapted = resolved
        try:
            handler(adapted)
        except Exception as exc:  # any handler error is retried, then parked
            return self._failed(message, body, envelope, exc)
        self._store.record(key)
        message.ack()
        return Outcome.HANDLED

    def _not_from_hub(self, message: Any) -> str | None:
        """Why this copy is not one the hub delivered to this consumer; ``None`` when it is."""
        user = (message.properties or {}).get("user_id")
        if isinstance(user, bytes):
            user = user.decode("utf-8", "replace")
        hub = self._settings.hub_user
        if user != hub:
            who = f"RabbitMQ user {user!r}" if user else "a publisher without user_id"
            return (
                f"refused a copy published by {who}, not by the hub ({hub!r}): only the "
                "hub puts messages in an inbox"
            )
        own = (message.headers or {}).get(wire.H_OWN_RETRY)
        if isinstance(own, bytes):
            own = own.decode("utf-8", "replace")
        if own is not None and own != self._settings.code:
            return f"refused a retry relayed for {own!r}, not for {self._settings.code!r}"
        return None

    def _waiter_for(self, envelope: Envelope[Any]) -> Waiter | None:
        with self._lock:
            return next((w for w in self._waiters if w.matches(envelope)), None)

    def _failed(
        self, message: Any, body: bytes, envelope: Envelope[Any], exc: Exception
    ) -> Outcome:
        step = next_step(self._retry, message.headers)
        log.warning(
            "consumer.handler_failed type=%s message_id=%s attempt=%d error=%r next=%s delay=%s",
            envelope.type,
            envelope.message_id,
            step.attempt,
            exc,
            "park" if step.parked else "retry",
            step.delay,
        )
        headers = failure_headers(message.headers, step, exc, code=self._settings.code)
        self._republish(message, body, headers)
        return Outcome.PARKED if step.parked else Outcome.RETRIED

    def _park(
        self, message: Any, body: bytes, reason: ReasonCode, text: str, path: str | None
    ) -> Outcome:
        log.warning("consumer.parked reason=%s detail=%r", reason.value, text)
        headers = park_headers(
            message.headers, reason=reason, text=text, code=self._settings.code, path=path
        )
        self._republish(message, body, headers)
        return Outcome.PARKED

    def _republish(self, message: Any, body: bytes, headers: dict[str, Any]) -> None:
        properties = message.properties or {}
        kept = {
            name: properties[name]
            for name in ("message_id", "type", "correlation_id")
            if properties.get(name) is not None
        }
        self._publisher().publish_bytes(
            body,
            exchange=wire.RETRY_EXCHANGE,
            routing_key=self._settings.code,
            properties={
                "content_type": properties.get("content_type") or wire.CONTENT_TYPE,
                "delivery_mode": 2,
                "user_id": self._settings.rabbit_user,
                **kept,
            },
            headers=headers,
        )
        # Acked only now: the copy is confirmed in a delay queue or in dead letters.
        message.ack()


__all__ = ["Dispatcher", "Outcome"]
