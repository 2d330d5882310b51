"""Consuming one participant's inboxes on kombu: the loop around :mod:`consumers.dispatch`.

``run`` consumes until stopped (SIGTERM, SIGINT, or ``stop()`` from any thread),
reconnecting with growing pauses when the broker goes away; ``drain`` consumes
for a while or until a condition holds (tests, request/reply). What happens to
each message (typed handlers, once-only effects, delayed retries, dead letters)
is the :class:`~consumers.dispatch.Dispatcher`'s business.

Retrying and parking publish through a :class:`~producers.Publisher` for the
same participant (confirmed, mandatory). Messages fetched but not yet processed
when the consumer stops go back to the queue; on a quorum queue each such return
counts towards its delivery limit, which a small ``prefetch`` keeps rare.

Two precedence bands: ``inbox.<code>.urgent`` (FLASH, IMMEDIATE) and ``inbox.<code>``
(ROUTINE, PRIORITY), one channel each on one connection. Deliveries of both land in
two client-side buffers, each bounded by its channel's prefetch; before every message
handed to a handler the loop takes in whatever the broker has sent meanwhile, and an
urgent message always goes before the next routine one. A FLASH cable thus waits for
at most the one message in hand, however long the routine backlog.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import date
from types import FrameType, TracebackType
from typing import Any, TypeVar
from uuid import UUID

from consumers.dispatch import Dispatcher, Outcome
from consumers.errors import ConsumeError
from consumers.handlers import Handler, HandlerTable, Waiter
from consumers.retry import RetryPolicy
from consumers.stores import IdempotencyStore, InMemoryStore
from producers.amqp import Connection, OperationalError, Queue
from producers.amqp import Consumer as KombuConsumer
from producers.envelopes import ReceiptKind
from producers.errors import SdkConfigError
from producers.publisher import Publisher
from producers.settings import ParticipantSettings
from producers.tls import tls_failure
from schemas import wire
from schemas.catalog import default_registry
from schemas.envelope import Envelope
from schemas.registry import Registry
from schemas.types import Payload

log = logging.getLogger(__name__)
P = TypeVar("P", bound=Payload)

#: Urgent deliveries handled in a row, while routine ones wait, before one routine one
#: goes in between: a participant flooding another with FLASH cannot starve its routine
#: mail (nor keep routine copies unacked in the buffer until reconnections use up their
#: delivery limit). A FLASH then waits at most one routine handler call.
URGENT_RUN = 20


def urgent_turn(urgent_waiting: bool, routine_waiting: bool, streak: int) -> bool | None:
    """Whether the next delivery comes from the urgent band (``None``: nothing waits).

    ``streak`` is how many urgent deliveries were handled in a row before this one.
    """
    if urgent_waiting and (not routine_waiting or streak < URGENT_RUN):
        return True
    if routine_waiting:
        return False
    return None


class Consumer:
    """Takes messages from ``inbox.<code>.urgent`` first, then ``inbox.<code>``, and hands
    each to the handler of its type.

    ::

        consumer = Consumer(ParticipantSettings.from_env(), store=SqliteStore("seen.db"))

        @consumer.handler(Letter)
        def file_letter(envelope: Envelope[Letter]) -> None:
            registry.file(envelope.payload)
            consumer.send_receipt(envelope, "received")

        consumer.run()  # until SIGTERM, SIGINT or consumer.stop()

    Handlers run in the thread that calls ``run`` or ``drain``, one message at a
    time; ``consumer.publisher`` (receipts, replies, retries) belongs to that
    thread. Heartbeats are sent between messages: a handler running longer than
    about two ``heartbeat`` intervals (60 s by default) may lose the connection
    before its ack; the message then comes again and the store drops it as a
    duplicate. Raise ``heartbeat`` (0 turns heartbeats off) for long handlers.

    ``prefetch`` bounds each band's client-side buffer (unacked deliveries per channel);
    ``routine_prefetch``, when given, sets the routine band's alone.
    """

    def __init__(
        self,
        settings: ParticipantSettings,
        *,
        registry: Registry | None = None,
        store: IdempotencyStore | None = None,
        retry: RetryPolicy | None = None,
        prefetch: int = 10,
        routine_prefetch: int | None = None,
        publisher: Publisher | None = None,
        hold_unhandled: bool = False,
        heartbeat: int = 30,
        poll_interval: float = 1.0,
        reconnect_max_s: float = 15.0,
    ) -> None:
        if not settings.hub_user:
            # Fail closed: without the hub's user the consumer could not tell a copy
            # the hub delivered from one a participant slipped into the inbox.
            raise SdkConfigError(
                f"{settings.code!r}: the hub's RabbitMQ user is not configured "
                "(LIAISON_HUB_USER, written by `liaison topology apply` into the "
                "credentials file): the consumer accepts only copies the hub published"
            )
        self._settings = settings
        registry = registry or default_registry()
        self._table = HandlerTable(registry)
        self._own_publisher = publisher is None
        self._publisher = publisher
        # With hold_unhandled, a message no handler takes stays unacked until close
        # (and then returns to the queue): for a requester borrowing the inbox.
        self._dispatch = Dispatcher(
            settings,
            registry=registry,
            table=self._table,
            store=store if store is not None else InMemoryStore(),
            retry=retry or RetryPolicy(),
            publisher=lambda: self.publisher,
            hold_unhandled=hold_unhandled,
        )
        self._prefetch = prefetch
        self._routine_prefetch = prefetch if routine_prefetch is None else routine_prefetch
        # Deliveries taken in but not yet handled, per band: at most a prefetch each.
        self._urgent: deque[Any] = deque()
        self._routine: deque[Any] = deque()
        self._urgent_streak = 0
        self._poll = poll_interval
        self._reconnect_max = reconnect_max_s
        self._connection: Any = Connection(**settings.connection_options(heartbeat=heartbeat))
        self._consumed_once = False
        self._recoverable: tuple[type[BaseException], ...] = (
            OperationalError,
            *self._connection.connection_errors,
            *self._connection.recoverable_connection_errors,
        )
        self._channel_errors: tuple[type[BaseException], ...] = tuple(
            self._connection.channel_errors
        )
        self._kombu_consumers: list[Any] = []
        self._stopping = threading.Event()
        self._runner: threading.Thread | None = None
        self._failures = 0

    @property
    def counts(self) -> Counter[Outcome]:
        """How many deliveries ended how, since the consumer was made."""
        return self._dispatch.counts

    def handle_delivery(self, message: Any) -> Outcome:
        """Process one delivery (a kombu message); the loop calls it, tests may too."""
        return self._dispatch.handle(message)

    @property
    def settings(self) -> ParticipantSettings:
        """Whose inbox this is."""
        return self._settings

    # -- handlers ---------------------------------------------------------------------

    def handler(
        self, model: type[P]
    ) -> Callable[[Callable[[Envelope[P]], object]], Callable[[Envelope[P]], object]]:
        """Decorator: handle ``model``'s type; newer versions arrive adapted to ``model``'s."""

        def decorate(fn: Callable[[Envelope[P]], object]) -> Callable[[Envelope[P]], object]:
            self._table.add(model.message_type, fn, version=model.version)
            return fn

        return decorate

    def register(self, type_: str, fn: Handler, *, version: int | None = None) -> None:
        """Handle ``type_`` with ``fn``: one ``version`` (others adapted down to it) or all."""
        self._table.add(type_, fn, version=version)

    # -- answering ----------------------------------------------------------------------

    @property
    def publisher(self) -> Publisher:
        """The publisher for this participant (retries, parking, receipts, replies)."""
        if self._publisher is None:
            self._publisher = Publisher(self._settings)
        return self._publisher

    def reply(self, original: Envelope[Any], payload: P) -> Envelope[P]:
        """Publish ``payload`` to ``original``'s sender, correlated with ``original``."""
        return self.publisher.reply(original, payload)

    def send_receipt(
        self,
        original: Envelope[Any],
        kind: ReceiptKind = "received",
        *,
        registry_number: str | None = None,
        registered_on: date | None = None,
        answer_message_id: UUID | None = None,
        receipt_token: str | None = None,
    ) -> Envelope[Payload]:
        """Acknowledge ``original`` to its sender (``receipt.received|registered|answered``).

        The hub's delivery token of ``original``, recorded when this consumer received
        it, goes with the receipt; pass ``receipt_token`` for a message received
        before a restart (kept from :meth:`receipt_token`).
        """
        return self.publisher.send_receipt(
            original,
            kind,
            registry_number=registry_number,
            registered_on=registered_on,
            answer_message_id=answer_message_id,
            receipt_token=receipt_token,
        )

    def receipt_token(self, original: Envelope[Any]) -> str | None:
        """The hub's delivery token of ``original``, to keep for a receipt sent later."""
        return self.publisher.delivery_tokens.get(original.sender, original.message_id)

    # -- running ------------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Consume until ``stop()`` (or SIGTERM/SIGINT, when run in the main thread).

        A lost connection is re-established with growing pauses; refused access
        (wrong password, no inbox, no right to read it) raises ConsumeError.
        """
        self._stopping.clear()
        self._runner = threading.current_thread()
        try:
            with self._signals(install_signal_handlers):
                while not self._stopping.is_set():
                    self._turn(self._poll)
        finally:
            self._runner = None
            self._stop_consuming()

    def drain(self, *, timeout: float, until: Callable[[], bool] | None = None) -> int:
        """Process messages for up to ``timeout`` seconds, or until ``until()``; how many.

        ``stop()`` from another thread ends it early too.
        """
        self._stopping.clear()
        before = self.counts.total()
        deadline = time.monotonic() + timeout
        while not (until is not None and until()) and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._turn(min(remaining, self._poll))
        return self.counts.total() - before

    def stop(self) -> None:
        """Ask ``run`` to return after the message in hand; safe from any thread or a signal."""
        self._stopping.set()

    def close(self) -> None:
        """Stop consuming and close; messages held or prefetched return to the queue."""
        self._stopping.set()
        self._stop_consuming()
        if self._own_publisher and self._publisher is not None:
            self._publisher.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------

    def expect(
        self, request_id: UUID, types: Collection[str] | None = None
    ) -> AbstractContextManager[Waiter]:
        """While the block runs, a message answering ``request_id`` goes to the waiter."""
        return self._dispatch.expect(request_id, types)

    def wait_for(self, waiter: Waiter, timeout: float) -> Envelope[Any] | None:
        """The answer for ``waiter`` within ``timeout`` seconds, or ``None``.

        When ``run`` is going in another thread it delivers the answer; otherwise
        this consumes the inbox itself meanwhile, handling other messages as usual.
        """
        runner = self._runner
        if runner is threading.current_thread():
            raise RuntimeError("cannot wait for a reply inside a handler of the same consumer")
        if runner is not None:
            return waiter.wait(timeout)
        self.drain(timeout=timeout, until=waiter.done)
        return waiter.answer

    # -- the loop -----------------------------------------------------------------------

    def _turn(self, timeout: float) -> None:
        """Handle at most one message, urgent first, waiting up to ``timeout`` s for one.

        On a lost connection, pause and reconnect.
        """
        try:
            self._consuming()
            self._take_in(0.0 if self._urgent or self._routine else timeout)
            message = self._next_message()
            if message is not None:
                self.handle_delivery(message)
            self._connection.heartbeat_check()
            self._failures = 0
        except self._channel_errors as exc:
            self._drop()
            urgent, routine = wire.inbox_queues(self._settings.code)
            raise ConsumeError(
                f"RabbitMQ refused {self._settings.code!r} its inboxes "
                f"{urgent} and {routine} ({_describe(exc)}); an inbox missing since "
                "the urgent band came needs `liaison topology apply` on the hub"
            ) from exc
        except self._recoverable as exc:
            self._drop()
            refused = self._tls_refused(exc)
            if refused is not None:
                # A certificate refused before the inbox was ever read is configuration,
                # not an outage: retrying would hide it.
                raise ConsumeError(
                    f"cannot consume {self._settings.code!r}'s inbox: {refused}"
                ) from exc
            self._failures += 1
            pause = min(self._reconnect_max, 0.2 * 2 ** min(self._failures, 10))
            log.warning(
                "consumer.reconnecting url=%s error=%s retry_in_s=%.1f",
                self._settings.safe_url,
                exc,
                pause,
            )
            self._stopping.wait(pause)

    def _take_in(self, timeout: float) -> None:
        """Buffer what the broker has sent: wait up to ``timeout`` s for the first frame,
        then take every complete delivery already there without waiting.

        Bounded: the broker sends no more than each channel's prefetch unacked.
        """
        # A timeout means nothing (more) arrived: the caller checks its stop condition.
        with suppress(TimeoutError):
            self._connection.drain_events(timeout=timeout)
            while True:
                # Timeout 0: py-amqp keeps a partly read frame for the next call.
                self._connection.drain_events(timeout=0)

    def _next_message(self) -> Any:
        """The next delivery to handle: urgent first, one routine after ``URGENT_RUN`` in a row."""
        turn = urgent_turn(bool(self._urgent), bool(self._routine), self._urgent_streak)
        if turn is None:
            return None
        if turn:
            self._urgent_streak += 1
            return self._urgent.popleft()
        self._urgent_streak = 0
        return self._routine.popleft()

    def _tls_refused(self, exc: BaseException) -> str | None:
        if self._consumed_once or not self._settings.uses_tls:
            return None
        return tls_failure(
            f"{type(exc).__name__}: {exc}",
            where=self._settings.safe_url,
            ca_file=self._settings.tls.ca_file,
            cert_file=self._settings.tls.cert_file,
        )

    def _consuming(self) -> None:
        if self._kombu_consumers:
            return
        self._connection.ensure_connection(max_retries=1)
        code = self._settings.code
        bands = (
            (wire.urgent_inbox_queue(code), self._urgent, self._prefetch),
            (wire.inbox_queue(code), self._routine, self._routine_prefetch),
        )
        consumers: list[Any] = []
        for queue, buffer, prefetch in bands:
            channel = self._connection.channel()
            # Bodies stay bytes: the envelope is decoded (and its size checked) by the registry.
            channel.auto_decode = False
            consumer = KombuConsumer(
                channel,
                queues=[Queue(queue, no_declare=True)],
                on_message=buffer.append,
                auto_declare=False,
            )
            consumer.qos(prefetch_count=prefetch)
            consumer.consume()
            consumers.append(consumer)
        self._consumed_once = True
        self._kombu_consumers = consumers

    def _forget_buffered(self) -> None:
        # Unacked: they go back to their queue when their channel closes.
        self._urgent.clear()
        self._routine.clear()
        self._dispatch.forget_held()

    def _stop_consuming(self) -> None:
        consumers, self._kombu_consumers = self._kombu_consumers, []
        self._forget_buffered()
        for consumer in consumers:
            with suppress(*self._recoverable, *self._channel_errors):
                consumer.cancel()
        with suppress(*self._recoverable, *self._channel_errors):
            self._connection.release()

    def _drop(self) -> None:
        self._kombu_consumers = []
        self._forget_buffered()
        with suppress(Exception):  # the connection is already broken: discard it quietly
            self._connection.collect()

    @contextmanager
    def _signals(self, install: bool) -> Iterator[None]:
        if not install or threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("consumer.stopping signal=%s after=message_in_hand", signum)
            self.stop()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "reply_code", None)
    text = getattr(exc, "reply_text", None) or str(exc)
    return f"{code} {text}" if code else text


__all__ = ["Consumer", "Outcome"]
