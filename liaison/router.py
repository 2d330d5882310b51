"""The router's I/O shell: pika's asynchronous adapter around ``routing.decide``.

Per ingress message: decide, publish the deliveries and dead letters, and once
the broker has confirmed all of them publish the audit events (batched across
messages); ack the ingress message only when its audit batch is confirmed too.
Many publishes are in flight at once (pipelined publisher confirms): waiting for
each confirm in turn caps a 2-core machine at about 1,300 msg/s.

A returned delivery (no such inbox) becomes a dead letter with reason
``unroutable``; a nacked publish is sent again; neither is ever dropped. After a
lost connection the router reconnects with backoff; everything it had not acked
comes back from the broker, and downstream deduplication absorbs the repeats.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from uuid import uuid4

import pika
import pika.channel
import pika.frame
import pika.spec
import structlog

from liaison.amqp import TLS_REFUSED, Failover, describe_connect_error, login_refused
from liaison.audit.events import CONTENT_TYPE as AUDIT_CONTENT_TYPE
from liaison.audit.events import AuditEvent, EventKind, encode_batch, make_event
from liaison.errors import LoginRefusedError
from liaison.flow import AckTracker, IdWindow, RouterStats
from liaison.outcomes import body_tag
from liaison.routing import Decision, Incoming, Outgoing, RoutingContext, decide
from liaison.settings import Settings
from liaison.transport import coalesce_writes
from schemas import wire
from schemas.errors import ReasonCode

log = structlog.get_logger("liaison.router")

AUDIT_BATCH_MAX = 256
MAX_PUBLISH_ATTEMPTS = 5
DRAIN_TIMEOUT_S = 30.0


@dataclass
class _Entry:
    """One ingress message between its arrival and its ack."""

    tag: int
    decision: Decision
    started: float
    pending: int = 0
    returned: list[Outgoing] = field(default_factory=list)
    returns_handled: bool = False
    extra_events: list[AuditEvent] = field(default_factory=list)
    #: The decision's events as corrected after returns (``None``: unchanged).
    events: tuple[AuditEvent, ...] | None = None


#: Observer called once per acked message: (decision, seconds from arrival to ack).
Observer = Callable[[Decision, float], None]


class Router:
    """Consumes ``hub.ingress`` until stopped; ``run`` returns the exit code."""

    def __init__(
        self,
        settings: Settings,
        context: RoutingContext,
        *,
        observer: Observer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._ctx = context
        self._observer = observer
        self._clock = clock
        self.stats = RouterStats()
        self._window = IdWindow(settings.dedupe_window)
        self._entries: dict[int, _Entry] = {}
        self._stopping = threading.Event()
        self._nodes = Failover(settings, name="liaison-router")
        self._connected_once = False
        #: Why the router gave up (a TLS refusal at start), or ``None``.
        self.failure: str | None = None
        self._connection: pika.SelectConnection | None = None
        self._channel: pika.channel.Channel | None = None
        self._consumer_tag: str | None = None
        self._reset_channel_state()
        self.consuming = threading.Event()
        self._refused: LoginRefusedError | None = None

    # -- lifecycle -----------------------------------------------------------------

    def run(self, *, install_signals: bool = True) -> int:
        """Route until SIGTERM/SIGINT (or ``stop``); reconnect with backoff in between."""
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        delay = self._settings.reconnect_initial_s
        while not self._stopping.is_set():
            started = time.monotonic()
            self._connect_and_loop()
            if self._stopping.is_set():
                break
            if time.monotonic() - started > 10:
                delay = self._settings.reconnect_initial_s
            self.stats.reconnects += 1
            log.warning("router.reconnecting", in_s=round(delay, 2))
            self._stopping.wait(delay)
            delay = min(delay * 2, self._settings.reconnect_max_s)
        if self._refused is not None:
            raise self._refused
        log.info(
            "router.stopped", **{k: v for k, v in vars(self.stats).items() if k != "by_reason"}
        )
        return 0 if self.failure is None else 1

    def stop(self) -> None:
        """Ask the router to stop: stop consuming, finish what is in flight, close."""
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            connection.ioloop.add_callback_threadsafe(self._begin_stop)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("router.signal", signal=signal.Signals(signum).name)
        self.stop()

    def _connect_and_loop(self) -> None:
        # Each (re)connection goes to the next node of amqp_url: not the one just lost.
        params = self._nodes.next()
        log.info("router.connecting", node=self._nodes.describe(params))
        self._reset_channel_state()
        connection = pika.SelectConnection(
            params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_error,
            on_close_callback=self._on_connection_closed,
        )
        self._connection = connection
        try:
            connection.ioloop.start()
        finally:
            self._connection = None
            self.consuming.clear()

    def _reset_channel_state(self) -> None:
        # Whatever was not acked comes back from the broker: its ids are not routed yet.
        for entry in self._entries.values():
            if entry.decision.claimed:
                self._window.release(entry.decision.message_id)
        self._channel = None
        self._next_seq = 1
        self._outstanding: dict[int, tuple[str, Any, Outgoing | None, int]] = {}
        self._entries = {}
        self._by_delivery: dict[tuple[str, str], _Entry] = {}
        self._audit_batch: list[_Entry] = []
        self._returned_other: set[tuple[str, str]] = set()
        self._flush_scheduled = False
        self._drain_deadline: float | None = None
        self._acks = AckTracker()

    # -- connection and channel callbacks -------------------------------------------

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        self._connected_once = True
        coalesce_writes(connection)
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_error(self, connection: pika.SelectConnection, error: Exception) -> None:
        message = describe_connect_error(self._settings, error)
        log.warning("router.connect_failed", error=message)
        # A password or certificate refused before the first login will not heal by
        # retrying: stop and say so. Refused later (a broker restarting) is worth the
        # reconnect loop.
        refused = login_refused(self._settings, error)
        if refused is not None and not self._connected_once:
            self._refused = refused
            self._stopping.set()
        elif message.startswith(TLS_REFUSED) and not self._connected_once:
            self.failure = message
            self._stopping.set()
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: pika.SelectConnection, reason: Exception) -> None:
        if not self._stopping.is_set():
            log.warning("router.connection_lost", reason=str(reason), in_flight=len(self._entries))
        connection.ioloop.stop()

    def _on_channel_open(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.add_on_cancel_callback(self._on_cancelled)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_on)

    def _on_confirm_on(self, _frame: pika.frame.Method) -> None:
        assert self._channel is not None
        self._channel.basic_qos(prefetch_count=self._settings.prefetch, callback=self._on_qos)

    def _on_qos(self, _frame: pika.frame.Method) -> None:
        assert self._channel is not None
        if self._stopping.is_set():
            self._begin_stop()
            return
        self._consumer_tag = self._channel.basic_consume(wire.INGRESS_QUEUE, self._on_message)
        self.consuming.set()
        log.info(
            "router.consuming",
            queue=wire.INGRESS_QUEUE,
            vhost=self._settings.vhost,
            prefetch=self._settings.prefetch,
        )

    def _on_cancelled(self, _frame: pika.frame.Method) -> None:
        # The broker cancels a consumer when its queue is deleted: not ready any more,
        # and reconnecting (with backoff) is how to find out when the queue is back.
        log.error("router.consumer_cancelled", queue=wire.INGRESS_QUEUE)
        self.consuming.clear()
        self._consumer_tag = None
        connection = self._connection
        if connection is not None and connection.is_open:
            connection.close()

    def _on_channel_closed(self, _channel: pika.channel.Channel, reason: Exception) -> None:
        if not self._stopping.is_set():
            log.error("router.channel_closed", reason=str(reason))
        connection = self._connection
        if connection is not None and connection.is_open:
            connection.close()

    # -- the hot path ---------------------------------------------------------------

    def _on_message(
        self,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        if self._stopping.is_set():
            return  # stopping: left unacked, requeued by the broker when the connection closes
        started = time.monotonic()
        self.stats.received += 1
        incoming = Incoming(
            body=body,
            user_id=properties.user_id,
            routing_key=method.routing_key,
            headers=properties.headers or {},
            property_message_id=properties.message_id,
        )
        try:
            decision = decide(incoming, self._ctx, now=self._clock(), window=self._window)
        except Exception:  # decide refuses its own failures (internal_error): only a bug in
            # that refusal lands here, and must not stop the hub.
            log.exception("router.decide_failed", routing_key=method.routing_key)
            channel.basic_nack(method.delivery_tag, requeue=True)
            for tag, multiple in self._acks.finish(method.delivery_tag, ack=False):
                channel.basic_ack(tag, multiple=multiple)
            return
        entry = _Entry(tag=method.delivery_tag, decision=decision, started=started)
        self._entries[entry.tag] = entry
        self.stats.in_flight = len(self._entries)
        if decision.reason is ReasonCode.INTERNAL_ERROR:
            log.error(
                "router.internal_error",
                message_id=decision.message_id,
                type=decision.type,
                sender=decision.sender,
                detail=decision.dead_letters[0].headers.get(wire.H_REASON_TEXT),
            )
        elif decision.reason is not None:
            log.info(
                "router.rejected",
                message_id=decision.message_id,
                type=decision.type,
                sender=decision.sender,
                reason=decision.reason.value,
            )
        for out in (*decision.deliveries, *decision.dead_letters):
            self._publish_for(entry, out)
        if entry.pending == 0:
            self._phase_done(entry)

    def _publish_for(self, entry: _Entry, out: Outgoing, attempt: int = 1) -> None:
        entry.pending += 1
        if out.exchange == wire.DELIVER_EXCHANGE:
            self._by_delivery[(out.message_id or "", out.routing_key)] = entry
        seq = self._publish(out)
        self._outstanding[seq] = ("entry", entry, out, attempt)

    def _publish(self, out: Outgoing, content_type: str = wire.CONTENT_TYPE) -> int:
        assert self._channel is not None
        self._channel.basic_publish(
            exchange=out.exchange,
            routing_key=out.routing_key,
            body=out.body,
            properties=pika.BasicProperties(
                content_type=content_type,
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=out.message_id,
                type=out.type,
                correlation_id=out.correlation_id,
                headers=out.headers or None,  # an empty table still costs encoding
                timestamp=int(time.time()),
                # RabbitMQ validates user_id, so everything the router publishes
                # (deliveries, dead letters, audit) provably comes from the hub.
                user_id=self._settings.hub_user,
            ),
            mandatory=True,
        )
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Return,
        properties: pika.spec.BasicProperties,
        _body: bytes,
    ) -> None:
        key = (properties.message_id or "", method.routing_key)
        entry = self._by_delivery.get(key)
        if method.exchange == wire.DELIVER_EXCHANGE and entry is not None:
            for out in entry.decision.deliveries:
                if out.routing_key == method.routing_key:
                    entry.returned.append(out)
            return
        # Dead letters and audit events go to fanout exchanges bound at topology time;
        # a return here means the topology is broken. The ack that follows is then
        # treated as a nack, so the message is sent again and finally handed back.
        self._returned_other.add((method.exchange, properties.message_id or ""))
        log.error(
            "router.returned",
            exchange=method.exchange,
            routing_key=method.routing_key,
            reply=method.reply_text,
        )

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        tags = [method.delivery_tag]
        if method.multiple:
            # Sequence numbers only grow and the dict keeps insertion order, so the
            # confirmed ones are a prefix: stop at the first one beyond the tag.
            tags = []
            for seq in self._outstanding:
                if seq > method.delivery_tag:
                    break
                tags.append(seq)
        for seq in tags:
            item = self._outstanding.pop(seq, None)
            if item is None:
                continue
            kind, target, out, attempt = item
            ok = acked
            if out is not None and self._returned_other:
                key = (out.exchange, out.message_id or "")
                if key in self._returned_other:
                    self._returned_other.discard(key)
                    ok = False
            if kind == "entry":
                self._confirmed_for_entry(target, out, attempt, ok)
            else:
                self._confirmed_audit(target, ok, attempt)
        self._maybe_finish_stop()

    def _confirmed_for_entry(
        self, entry: _Entry, out: Outgoing | None, attempt: int, acked: bool
    ) -> None:
        entry.pending -= 1
        if not acked and out is not None:
            if attempt < MAX_PUBLISH_ATTEMPTS:
                self.stats.republished += 1
                self._publish_for(entry, out, attempt + 1)
            else:
                self._give_up(entry, f"broker nacked a publish {attempt} times")
                return
        if out is not None and out.exchange == wire.DELIVER_EXCHANGE:
            self._by_delivery.pop((out.message_id or "", out.routing_key), None)
        if entry.pending == 0 and entry.tag in self._entries:
            self._phase_done(entry)

    def _phase_done(self, entry: _Entry) -> None:
        """All deliveries and dead letters of ``entry`` are confirmed (or returned)."""
        if entry.returned and not entry.returns_handled:
            entry.returns_handled = True
            self._dead_letter_returned(entry)
            if entry.pending:
                return
        self._audit_batch.append(entry)
        if len(self._audit_batch) >= AUDIT_BATCH_MAX:
            self._flush_audit()
        elif not self._flush_scheduled and self._connection is not None:
            self._flush_scheduled = True
            self._connection.ioloop.call_later(0, self._flush_audit)

    def _dead_letter_returned(self, entry: _Entry) -> None:
        decision = entry.decision
        # A copy's routing key names its band (<code> or <code>.urgent): record the code.
        returned = {wire.delivery_recipient(out.routing_key) for out in entry.returned}
        # "delivered" was written at decision time: it must not claim the returned copies.
        entry.events = tuple(
            e._replace(recipients=tuple(r for r in e.recipients if r not in returned))
            if e.event is EventKind.DELIVERED
            else e
            for e in decision.events
            if not (e.event is EventKind.DELIVERED and set(e.recipients) <= returned)
        )
        for out in entry.returned:
            self.stats.unroutable += 1
            code = wire.delivery_recipient(out.routing_key)
            text = f"no inbox for {out.routing_key!r} on the broker (topology out of date?)"
            headers = {
                **{k: v for k, v in out.headers.items() if k != wire.H_RECEIPT_TOKEN},
                wire.H_REASON: ReasonCode.UNROUTABLE.value,
                wire.H_REASON_TEXT: text,
                wire.H_RECIPIENT: code,
                wire.H_ORIGINAL_EXCHANGE: wire.DELIVER_EXCHANGE,
                wire.H_ORIGINAL_ROUTING_KEY: out.routing_key,
            }
            dead = Outgoing(
                wire.DEAD_EXCHANGE,
                code,
                out.body,
                headers,
                out.message_id,
                out.type,
                out.correlation_id,
            )
            entry.extra_events.append(
                make_event(
                    EventKind.DEAD_LETTERED,
                    decision.message_id,
                    # Per sender and content (ids can be reused), recipient and retry
                    # operation: a retry that fails again is a new fact, not a repeat.
                    discriminator=":".join(
                        part
                        for part in (
                            f"{decision.sender}:{body_tag(out.body)}",
                            str(out.headers.get(wire.H_OPERATION, "")),
                            code,
                        )
                        if part
                    ),
                    type=decision.type,
                    sender=decision.sender,
                    recipients=(code,),
                    reason=ReasonCode.UNROUTABLE.value,
                    detail=text,
                )
            )
            self._publish_for(entry, dead)

    def _flush_audit(self) -> None:
        self._flush_scheduled = False
        if not self._audit_batch or self._channel is None or not self._channel.is_open:
            return
        batch, self._audit_batch = self._audit_batch, []
        self._publish_audit(batch, attempt=1)

    def _publish_audit(self, batch: list[_Entry], attempt: int) -> None:
        events = [
            e
            for entry in batch
            for e in (
                *(entry.decision.events if entry.events is None else entry.events),
                *entry.extra_events,
            )
        ]
        out = Outgoing(wire.AUDIT_EXCHANGE, "", encode_batch(events), {}, uuid4().hex, "audit")
        seq = self._publish(out, content_type=AUDIT_CONTENT_TYPE)
        self._outstanding[seq] = ("audit", batch, out, attempt)

    def _confirmed_audit(self, batch: list[_Entry], acked: bool, attempt: int) -> None:
        if not acked:
            if attempt < MAX_PUBLISH_ATTEMPTS:
                self.stats.republished += 1
                self._publish_audit(batch, attempt + 1)
            else:
                for entry in batch:
                    self._give_up(entry, "broker nacked the audit batch")
            return
        assert self._channel is not None
        now = time.monotonic()
        acks: list[tuple[int, bool]] = []
        for entry in batch:
            acks.extend(self._acks.finish(entry.tag))
            self._entries.pop(entry.tag, None)
            self._account(entry.decision, now - entry.started)
        for tag, multiple in acks:
            self._channel.basic_ack(tag, multiple=multiple)
        self.stats.in_flight = len(self._entries)

    def _account(self, decision: Decision, seconds: float) -> None:
        stats = self.stats
        if decision.reason is not None:
            stats.rejected += 1
            stats.by_reason[decision.reason.value] = (
                stats.by_reason.get(decision.reason.value, 0) + 1
            )
        elif decision.routed:
            stats.routed += 1
            stats.deliveries += len(decision.deliveries)
        elif any(e.event is EventKind.DUPLICATE for e in decision.events):
            stats.duplicates += 1
        if self._observer is not None:
            self._observer(decision, seconds)

    def _give_up(self, entry: _Entry, why: str) -> None:
        """Hand the message back to the broker; its delivery limit parks it if this repeats."""
        log.error("router.requeue", message_id=entry.decision.message_id, why=why)
        self._entries.pop(entry.tag, None)
        if entry.decision.claimed:
            self._window.release(entry.decision.message_id)
        if self._channel is not None and self._channel.is_open:
            self._channel.basic_nack(entry.tag, requeue=True)
            for tag, multiple in self._acks.finish(entry.tag, ack=False):
                self._channel.basic_ack(tag, multiple=multiple)

    # -- stopping ---------------------------------------------------------------------

    def _begin_stop(self) -> None:
        channel = self._channel
        if channel is None or not channel.is_open:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
            return
        self._drain_deadline = time.monotonic() + DRAIN_TIMEOUT_S
        # No basic.cancel: on a quorum queue (RabbitMQ 3.10) the acks a channel sends
        # after cancelling its consumer are partly lost, so messages routed during the
        # drain went back to ingress and were routed twice. The consumer stays; what
        # arrives from now on is left unacked (see _on_message) and the broker requeues
        # it when the connection closes, once everything in flight is acked.
        self._consumer_tag = None
        self._maybe_finish_stop()
        if self._connection is not None:
            self._connection.ioloop.call_later(DRAIN_TIMEOUT_S, self._close)

    def _maybe_finish_stop(self) -> None:
        if not self._stopping.is_set() or self._consumer_tag is not None:
            return
        if self._entries or self._outstanding:
            return
        self._close()

    def _close(self) -> None:
        if self._entries:
            log.warning("router.stop_with_in_flight", count=len(self._entries))
        connection = self._connection
        if connection is not None and connection.is_open:
            connection.close()
