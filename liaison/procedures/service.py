"""The procedures service's shell: inbox → one transaction → outbox → publish → ack.

For each delivered copy, in this order:

1. the copy must come from the hub (RabbitMQ's validated ``user_id`` is the hub's
   user) and decode; otherwise it is parked in the hub's dead letters with a reason;
2. :meth:`Store.consume` records the consumed key, applies the fold's changes and
   writes the messages to send into the outbox, in ONE transaction;
3. the outbox rows of that copy are published to ``liaison.ingress`` as the
   service's own participant user, with publisher confirms, then marked sent;
4. the copy is acked.

A crash after 2 and before 4 redelivers the copy: step 2 applies nothing (the
consumed key exists) and step 3 re-sends the same ids, which the hub's ledger
and the consumers drop as duplicates. The sweeper (same process, every
``procedures_sweep_s``) fires due deadlines, each in its own transaction, and
publishes whatever the outbox still holds (a crash between commit and publish).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import pika
import pika.adapters.blocking_connection
import pika.connection
import pika.exceptions
import pika.spec
import structlog

from liaison.adapters.connections import Backoff, node_parameters
from liaison.adapters.pipelined import publish_pipelined
from liaison.credentials import participant_url
from liaison.errors import BrokerError
from liaison.procedures import core
from liaison.procedures.store import OutboxRow, Store
from liaison.settings import Settings
from schemas import wire
from schemas.envelope import Envelope
from schemas.errors import ContractError, ReasonCode
from schemas.registry import Registry
from schemas.types import Payload

log = structlog.get_logger("liaison.procedures")

PREFETCH = 250
#: Above this many rows, the outbox is published with pipelined confirms.
PIPELINE_FROM = 8


def inbox(code: str) -> str:
    """The inbox queue of participant ``code``."""
    return f"inbox.{code}"


class ProceduresService:
    """Consumes the procedures service's inbox and runs its sweeper until stopped."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        policy: core.Policy,
        registry: Registry,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings, self.store, self.policy, self.registry = settings, store, policy, registry
        self.clock = clock
        self.stop = threading.Event()
        self.applied = self.duplicates = self.parked = self.fired = 0
        self._publisher: pika.adapters.blocking_connection.BlockingChannel | None = None
        self._batch: list[Any] = []
        self._params: pika.connection.Parameters | None = None

    def run(self, *, install_signals: bool = True) -> int:
        """Serve until SIGTERM/SIGINT; reconnect with backoff when the broker goes away."""
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        backoff = Backoff.of(self.settings)
        while not self.stop.is_set():
            backoff.connecting()
            try:
                self._serve()
            except (pika.exceptions.AMQPError, BrokerError, OSError) as exc:
                if self.stop.is_set():
                    break
                log.warning("procedures.disconnected", error=str(exc) or type(exc).__name__)
                self.stop.wait(backoff.pause())
        log.info("procedures.stopped", applied=self.applied, duplicates=self.duplicates)
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("procedures.signal", signal=signal.Signals(signum).name)
        self.stop.set()

    def _serve(self) -> None:
        url = participant_url(self.settings, self.policy.code)
        nodes = node_parameters(self.settings, url, name="liaison-procedures")
        self._params = nodes[0]
        connection = pika.BlockingConnection(nodes)
        try:
            self._publisher = connection.channel()
            self._publisher.confirm_delivery()
            self.flush(None)  # what a crash left in the outbox
            self.sweep()
            # Both precedence bands, one channel each (acks are per channel).
            for queue in wire.inbox_queues(self.policy.code):
                consumer = connection.channel()
                consumer.basic_qos(prefetch_count=PREFETCH)
                consumer.basic_consume(queue, self._on_message)
                log.info("procedures.consuming", queue=queue)
            next_sweep = time.monotonic() + self.settings.procedures_sweep_s
            while not self.stop.is_set():
                connection.process_data_events(time_limit=0.2)
                self._handle_batch()
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + self.settings.procedures_sweep_s
        finally:
            self._publisher = None
            self._batch = []  # unacked: the broker redelivers them
            if connection.is_open:
                connection.close()

    def _on_message(
        self,
        channel: pika.adapters.blocking_connection.BlockingChannel,
        method: pika.spec.Basic.Deliver,
        props: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        # Collected, then handled as one batch when pika returns (one commit per batch).
        self._batch.append((channel, method, props, body))

    def _handle_batch(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        copies: list[tuple[Envelope[Payload], str | None]] = []
        for _channel, _method, props, body in batch:
            headers: dict[str, Any] = dict(props.headers or {})
            if props.user_id != self.settings.hub_user:
                # Nothing reaches an inbox but through the hub; a copy that did not is a defect.
                self._park(
                    body,
                    headers,
                    ReasonCode.SENDER_MISMATCH,
                    f"not from the hub: {props.user_id!r}",
                )
                continue
            try:
                envelope = self.registry.decode(body)
            except ContractError as exc:
                self._park(body, headers, exc.reason, exc.message, exc.path)
                continue
            token = headers.get(core.RECEIPT_TOKEN_HEADER)
            # Dated by when the hub first received it, within the skew (core.dated).
            arrived_at = core.arrived_at_of(props.timestamp)
            envelope = core.dated(envelope, arrived_at, self.policy.max_clock_skew)
            copies.append((envelope, token.decode() if isinstance(token, bytes) else token))
        if copies:
            applied = self.store.consume_many(self.policy, copies, stamp=self.clock())
            self.applied += sum(applied)
            self.duplicates += len(applied) - sum(applied)
            self.flush([core.message_key(e.sender, e.message_id) for e, _ in copies])
        # The last delivery of each channel (band) in the batch acks the batch's others.
        last = {channel.channel_number: (channel, method) for channel, method, _p, _b in batch}
        for channel, method in last.values():
            channel.basic_ack(method.delivery_tag, multiple=True)

    def _park(
        self,
        body: bytes,
        headers: dict[str, Any],
        reason: ReasonCode | str,
        text: str,
        path: str | None = None,
    ) -> None:
        assert self._publisher is not None
        code = str(reason.value if isinstance(reason, ReasonCode) else reason)
        park = {
            wire.H_DELAY: wire.PARK_DELAY,
            wire.H_REASON: code,
            wire.H_REASON_TEXT: text[:500],
            wire.H_RECIPIENT: self.policy.code,
            wire.H_ORIGINAL_EXCHANGE: wire.DELIVER_EXCHANGE,
            wire.H_ORIGINAL_ROUTING_KEY: self.policy.code,
        }
        if path:
            park[wire.H_REASON_PATH] = path
        self._publisher.basic_publish(
            wire.RETRY_EXCHANGE,
            self.policy.code,
            body,
            pika.BasicProperties(
                content_type=wire.CONTENT_TYPE,
                delivery_mode=2,
                user_id=self.settings.user_for(self.policy.code),
                headers={**headers, **park},
            ),
            mandatory=True,
        )
        self.parked += 1
        log.warning("procedures.parked", reason=code, text=text)

    def flush(self, source: str | list[str] | None) -> int:
        """Publish the outbox's unsent rows (of some sources, or all) with confirms."""
        total = 0
        while True:
            rows = self.store.unsent(source)
            if not rows:
                return total
            if len(rows) > PIPELINE_FROM and self._params is not None:
                # Waiting for each confirm in turn costs a round trip per message; a
                # batch goes out with its confirms in flight on a connection of its own.
                publish_pipelined(
                    self._params,
                    wire.INGRESS_EXCHANGE,
                    [(row.routing_key, row.body, self._properties(row)) for row in rows],
                )
            else:
                for row in rows:
                    self._publish(row)
            self.store.mark_sent([row.message_id for row in rows], at=self.clock())
            total += len(rows)

    def _properties(self, row: OutboxRow) -> pika.BasicProperties:
        return pika.BasicProperties(
            content_type=wire.CONTENT_TYPE,
            delivery_mode=2,
            message_id=row.message_id,
            type=row.routing_key,
            user_id=self.settings.user_for(self.policy.code),
            headers=row.headers or None,
        )

    def _publish(self, row: OutboxRow) -> None:
        assert self._publisher is not None
        try:
            self._publisher.basic_publish(
                wire.INGRESS_EXCHANGE,
                row.routing_key,
                row.body,
                self._properties(row),
                mandatory=True,
            )
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            raise BrokerError(f"publishing {row.message_id} failed: {exc}") from None

    def sweep(self) -> int:
        """Fire every due deadline once, then publish what they wrote."""
        fired = 0
        self.store.expect_reports(self.policy, self.clock())
        for deadline in self.store.due(self.clock()):
            if self.store.fire(self.policy, deadline, stamp=self.clock()):
                fired += 1
                log.info("procedures.deadline_fired", deadline=deadline.id)
        self.fired += fired
        self.flush(None)
        return fired


__all__ = ["ProceduresService", "inbox"]
