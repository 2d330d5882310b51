"""The audit writer: consumes ``hub.audit``, appends to the ledger, signs checkpoints.

One process per audit directory writes: it holds an exclusive ``flock`` on the
directory's ``writer.lock`` before it reads the log, and a second instance waits
for that lock (then recovers whatever the first one wrote, and carries on). The
queue is single-active-consumer, so among writers on different machines one
consumes at a time as well.

The order that makes every event land exactly once:

1. take a batch of deliveries (up to ``batch_size`` messages, or what arrived
   within ``batch_window`` seconds of the first);
2. decode each; a malformed message is rejected without requeue, so the queue's
   dead-letter exchange (``liaison.dead``) keeps it for an operator;
3. append the events, skipping dedupe keys already recorded, with one fsync;
4. only then ack the batch (``multiple=True`` on its last delivery tag).

A crash between 3 and 4 means a redelivery, which step 3 skips by dedupe key.
Steps 2 and 3, the lock and the checkpoint schedule are file I/O only and live in
:mod:`liaison.ledger.intake`; this module is the broker side: consume, nack, ack,
reconnect.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pika
import pika.exceptions
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pika.adapters.blocking_connection import BlockingChannel

from liaison.adapters.connections import Backoff, blocking_connection
from liaison.errors import BrokerError, LoginRefusedError, TlsRefusedError
from liaison.ledger.intake import CheckpointSchedule, Delivery, open_when_free, record_messages
from liaison.ledger.keys import load_or_create
from liaison.ledger.store import Ledger, LedgerError
from liaison.settings import Settings
from schemas.wire import AUDIT_QUEUE

_TICK = 0.05


@dataclass
class WriterStats:
    """Counters since the writer started."""

    messages: int = 0
    events: int = 0
    records: int = 0
    rejected: int = 0
    checkpoints: int = 0


class AuditWriter:
    """Consume audit events and record them; :meth:`stop` ends :meth:`run` gracefully."""

    def __init__(
        self,
        settings: Settings,
        *,
        key: Ed25519PrivateKey | None = None,
        batch_size: int = 500,
        batch_window: float = 0.05,
        prefetch: int | None = None,
    ) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.batch_window = batch_window
        self.prefetch = prefetch or 2 * batch_size
        self.stats = WriterStats()
        self._key = key
        self._stopping = threading.Event()
        self._connected_once = False
        self._log = structlog.get_logger("liaison.audit.writer")
        self._schedule = CheckpointSchedule(
            every=settings.checkpoint_every, seconds=settings.checkpoint_seconds
        )

    def stop(self) -> None:
        """Ask :meth:`run` to finish its batch, checkpoint and return (signal-safe)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def run(self) -> None:
        """Wait for the ledger lock, then consume until :meth:`stop`; reconnects on loss."""
        key = self._key or load_or_create(self.settings.hub_key_path)
        ledger = open_when_free(
            self.settings.audit_dir,
            key=key,
            segment_bytes=self.settings.segment_bytes,
            stopping=self._stopping,
            on_wait=lambda reason: self._log.info("audit.lock_waiting", reason=reason),
        )
        if ledger is None:
            return
        for note in ledger.recovery.notes:
            self._log.warning("audit.log_recovered", note=note)
        self._log.info(
            "audit.ledger_open",
            directory=str(self.settings.audit_dir),
            records=ledger.size,
            segments=ledger.recovery.segments,
            records_read=ledger.recovery.records_read,
            resumed_from=ledger.recovery.resumed_from,
        )
        try:
            self._consume_forever(ledger)
        finally:
            try:
                checkpoint = ledger.checkpoint()
            except LedgerError as exc:
                checkpoint = None
                self._log.error("audit.final_checkpoint_failed", error=str(exc))
            if checkpoint is not None:
                self.stats.checkpoints += 1
            ledger.close()
            self._log.info(
                "audit.writer_stopped",
                ledger_size=ledger.size,
                signed=ledger.last_checkpoint.tree_size if ledger.last_checkpoint else 0,
                **vars(self.stats),
            )

    def _consume_forever(self, ledger: Ledger) -> None:
        backoff = Backoff.of(self.settings)
        while not self.stopping:
            backoff.connecting()
            try:
                self._consume(ledger)
            except (pika.exceptions.AMQPError, BrokerError) as exc:
                # A password or certificate refused before the first login will not heal
                # by retrying: say so and stop. Refused later (a broker restarting) is
                # worth waiting for.
                refused = isinstance(exc, (TlsRefusedError, LoginRefusedError))
                if refused and not self._connected_once:
                    raise
                delay = backoff.pause()
                self._log.warning(
                    "audit.reconnecting",
                    error=str(exc) if isinstance(exc, BrokerError) else _describe(exc),
                    retry_in_s=round(delay, 2),
                )
                self._stopping.wait(delay)
            self._maybe_checkpoint(ledger)

    def _consume(self, ledger: Ledger) -> None:
        connection = blocking_connection(self.settings, name="liaison-audit-writer")
        self._connected_once = True
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self.prefetch)
            self._log.info("audit.consuming", queue=AUDIT_QUEUE)
            batch: list[Delivery] = []
            deadline = 0.0
            hub_user = self.settings.hub_user
            for method, props, body in channel.consume(AUDIT_QUEUE, inactivity_timeout=_TICK):
                if method is not None and body is not None and props.user_id != hub_user:
                    # Only the hub's processes publish audit events (the broker refuses
                    # the exchange to participants; this holds if a permission is ever
                    # loosened): RabbitMQ validated user_id, so anything else is refused.
                    self._reject(
                        channel, method.delivery_tag, f"not from the hub: {props.user_id!r}"
                    )
                elif method is not None and body is not None:
                    if not batch:
                        deadline = time.monotonic() + self.batch_window
                    batch.append((method.delivery_tag, body))
                if batch and (
                    len(batch) >= self.batch_size
                    or method is None
                    or time.monotonic() >= deadline
                    or self.stopping
                ):
                    self._commit(channel, ledger, batch)
                    batch = []
                self._maybe_checkpoint(ledger)
                if self.stopping and not batch:
                    break
            channel.cancel()  # hands prefetched, unacked messages back to the queue
        finally:
            if connection.is_open:
                connection.close()

    def _commit(self, channel: BlockingChannel, ledger: Ledger, batch: list[Delivery]) -> None:
        """Record ``batch``; dead-letter what cannot be recorded, then ack the rest at once."""
        recorded = record_messages(ledger, batch, lambda tag, why: self._reject(channel, tag, why))
        if recorded.ack is None:
            return
        channel.basic_ack(recorded.ack, multiple=True)
        self.stats.messages += recorded.messages
        self.stats.events += recorded.events
        self.stats.records += recorded.records

    def _reject(self, channel: BlockingChannel, tag: int, reason: str) -> None:
        channel.basic_nack(tag, requeue=False)
        self.stats.rejected += 1
        self._log.warning("audit.dead_lettered", delivery_tag=tag, reason=reason)

    def _maybe_checkpoint(self, ledger: Ledger) -> None:
        checkpoint = self._schedule.sign_if_due(ledger)
        if checkpoint is not None:
            self.stats.checkpoints += 1
            self._log.info("audit.checkpoint", tree_size=checkpoint.tree_size, root=checkpoint.root)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "404" in text or "NOT_FOUND" in text:
        return f"{text} (does the queue {AUDIT_QUEUE} exist? run `liaison topology apply`)"
    return text
