"""The router's state machine, without I/O: what to publish, ack and close, and when.

Per ingress message: decide, publish the deliveries and dead letters, and once
the broker has confirmed all of them publish the audit events (batched across
messages); ack the ingress message only when its audit batch is confirmed too.
Many publishes are in flight at once (pipelined publisher confirms).

A returned delivery (no such inbox) becomes a dead letter with reason
``unroutable`` (``liaison.core.outcomes.unroutable``); a nacked publish is sent
again, up to ``MAX_PUBLISH_ATTEMPTS`` times, after which the ingress message is
handed back to the broker (nack with requeue). Neither is ever dropped. After a
lost connection everything not acked comes back from the broker: the machine
forgets the old channel (its publishes and tags) and releases the ids those
messages claimed in the duplicate window.

``RouterState`` is driven by plain method calls, one per thing that happened
(``on_message``, ``on_confirm``, ``on_return``, ``on_flush``, ``on_stop``,
``on_drain_timeout``, ``on_connection_lost``), and answers each with the
commands to carry out, in order: ``Publish``, ``Ack``, ``Nack``,
``ScheduleFlush``, ``StartDrainTimer``, ``Close``, and reports for the log.
The pika adapter (``liaison.adapters.pika_router``) executes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple
from uuid import uuid4

from liaison.core import outcomes
from liaison.core.decide import RoutingContext, decide
from liaison.core.events import CONTENT_TYPE as AUDIT_CONTENT_TYPE
from liaison.core.events import AuditEvent, encode_batch
from liaison.core.values import Decision, Incoming, Outgoing
from liaison.core.window import AckTracker, IdWindow
from schemas import wire

#: Most entries whose audit events travel in one audit message.
AUDIT_BATCH_MAX = 256
#: Publishes of one message (or audit batch) before the ingress message is handed back.
MAX_PUBLISH_ATTEMPTS = 5
#: Longest a drain (SIGTERM) waits for what is in flight before closing anyway.
DRAIN_TIMEOUT_S = 30.0
#: How long finished messages wait for others to share their audit message (unless
#: ``AUDIT_BATCH_MAX`` fill it first). Deliveries never wait: only the ingress ack
#: does. Flushing every event-loop turn instead sent one audit message (a quorum
#: queue write, a writer batch, an fsync) per message at moderate rates: at 1,000
#: msg/s offered the broker then spent more CPU per message than at full load.
AUDIT_FLUSH_DELAY_S = 0.02


# -- commands: what the adapter must do, in the order given ------------------------------


class Publish(NamedTuple):
    """Publish ``out`` (persistent, mandatory, as the hub's user); the broker confirms ``seq``.

    ``seq`` is the channel's publish sequence number: publishes are numbered from 1
    on each new channel, in the order they are made.
    """

    seq: int
    out: Outgoing
    content_type: str


class Ack(NamedTuple):
    """Ack the ingress delivery ``tag`` (with ``multiple``: and every one below it)."""

    tag: int
    multiple: bool


class Nack(NamedTuple):
    """Hand the ingress delivery ``tag`` back to the broker (``requeue=True``)."""

    tag: int


@dataclass(frozen=True, slots=True)
class ScheduleFlush:
    """Call ``on_flush`` after ``seconds`` (0: once the current event-loop turn is done)."""

    seconds: float = AUDIT_FLUSH_DELAY_S


@dataclass(frozen=True, slots=True)
class StartDrainTimer:
    """Call ``on_drain_timeout`` after ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection (a no-op if it is closed already)."""


# -- reports: what the adapter logs -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refused:
    """``decision`` refused its whole message (``internal_error``: a bug of the hub's own)."""

    decision: Decision


@dataclass(frozen=True, slots=True)
class DecideFailed:
    """``decide`` raised (a bug in its own refusal): the message was handed back."""

    routing_key: str
    error: Exception


@dataclass(frozen=True, slots=True)
class Requeued:
    """A message was handed back to the broker: its publishes kept being nacked."""

    message_id: str
    why: str


@dataclass(frozen=True, slots=True)
class ReturnedElsewhere:
    """A dead letter or audit batch came back unroutable: the topology is broken."""

    exchange: str
    routing_key: str
    reply: str


@dataclass(frozen=True, slots=True)
class StoppingWithInFlight:
    """The drain timed out with ``count`` messages still unacked (the broker redelivers them)."""

    count: int


Command = (
    Publish
    | Ack
    | Nack
    | ScheduleFlush
    | StartDrainTimer
    | Close
    | Refused
    | DecideFailed
    | Requeued
    | ReturnedElsewhere
    | StoppingWithInFlight
)


# -- the state ---------------------------------------------------------------------------------


@dataclass
class RouterStats:
    """Counters the router keeps; metrics and the benchmark read them."""

    received: int = 0
    routed: int = 0
    rejected: int = 0
    duplicates: int = 0
    deliveries: int = 0
    unroutable: int = 0
    republished: int = 0
    reconnects: int = 0
    in_flight: int = 0
    #: Audit messages the broker confirmed (each carries the events of up to
    #: ``AUDIT_BATCH_MAX`` ingress messages).
    audit_messages: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Entry:
    """One ingress message between its arrival and its ack."""

    tag: int
    decision: Decision
    started: float
    #: Its deliveries and dead letters not confirmed yet.
    pending: int = 0
    #: Deliveries the broker returned (no inbox for the recipient).
    returned: list[Outgoing] = field(default_factory=list)
    returns_handled: bool = False
    #: The ``dead_lettered`` events of the returned copies.
    extra_events: tuple[AuditEvent, ...] = ()
    #: The decision's events as corrected after returns (``None``: unchanged).
    events: tuple[AuditEvent, ...] | None = None


@dataclass(slots=True, eq=False)
class CopyInFlight:
    """A delivery or dead letter of ``entry``, published and not confirmed yet."""

    entry: Entry
    out: Outgoing
    attempt: int


@dataclass(slots=True, eq=False)
class AuditInFlight:
    """An audit message carrying the events of ``batch``, published and not confirmed yet."""

    batch: list[Entry]
    out: Outgoing
    attempt: int


#: Observer called once per acked message: (decision, seconds from arrival to ack).
Observer = Callable[[Decision, float], None]


class RouterState:
    """Everything the router tracks between a message's arrival and its ack; no I/O."""

    def __init__(
        self,
        context: RoutingContext,
        *,
        dedupe_window: int,
        prefetch: int | None = None,
        observer: Observer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ctx = context
        #: A waiting audit batch goes at once when it holds this many messages: at most
        #: ``AUDIT_BATCH_MAX``, and half the consumer's prefetch, since with the whole
        #: window unacked the broker sends nothing more and waiting would only stall
        #: (prefetch 1: every message at once).
        self._batch_full = (
            AUDIT_BATCH_MAX if prefetch is None else max(1, min(AUDIT_BATCH_MAX, prefetch // 2))
        )
        self._observer = observer
        self._clock = clock
        self._monotonic = monotonic
        self.stats = RouterStats()
        #: The ids routed lately, each with its owner (the duplicate window).
        self.window = IdWindow(dedupe_window)
        #: True once ``on_stop`` was called: nothing new is taken, then close.
        self.draining = False
        self._entries: dict[int, Entry] = {}
        self._reset()

    @property
    def in_flight(self) -> int:
        """Ingress messages received and not acked (nor handed back) yet."""
        return len(self._entries)

    @property
    def unconfirmed(self) -> int:
        """Publishes waiting for the broker's confirm."""
        return len(self._outstanding)

    # -- the channel ---------------------------------------------------------------------------

    def _reset(self) -> None:
        # Whatever was not acked comes back from the broker: its ids are not routed yet.
        for entry in self._entries.values():
            if entry.decision.claimed:
                self.window.release(entry.decision.message_id)
        self._next_seq = 1
        self._outstanding: dict[int, CopyInFlight | AuditInFlight] = {}
        self._entries = {}
        self._by_delivery: dict[tuple[str, str], Entry] = {}
        self._audit_batch: list[Entry] = []
        self._returned_other: set[tuple[str, str]] = set()
        self._flush_scheduled = False
        self._acks = AckTracker()

    def on_connection_lost(self) -> list[Command]:
        """The channel is gone: forget it; what it did not ack, the broker redelivers.

        Nothing is acked or re-published: a new channel starts with no publishes and
        no delivery tags, and the ids the unacked messages claimed are released so
        that their redeliveries are routed, not dropped as their own duplicates.
        """
        self._reset()
        return []

    # -- ingress ---------------------------------------------------------------------------------

    def on_message(self, tag: int, incoming: Incoming) -> list[Command]:
        """An ingress message with delivery tag ``tag``: decide it and publish its outcomes."""
        if self.draining:
            return []  # left unacked: the broker requeues it when the connection closes
        started = self._monotonic()
        self.stats.received += 1
        commands: list[Command] = []
        try:
            decision = decide(incoming, self._ctx, now=self._clock(), window=self.window)
        except Exception as exc:  # decide refuses its own failures (internal_error): only a
            # bug in that refusal lands here, and must not stop the hub.
            commands.append(DecideFailed(incoming.routing_key, exc))
            commands.append(Nack(tag))
            commands.extend(Ack(t, m) for t, m in self._acks.finish(tag, ack=False))
            return commands
        entry = Entry(tag, decision, started)
        self._entries[tag] = entry
        self.stats.in_flight = len(self._entries)
        if decision.reason is not None:
            commands.append(Refused(decision))
        for out in (*decision.deliveries, *decision.dead_letters):
            self._publish_copy(entry, out, 1, commands)
        if entry.pending == 0:
            self._phase_done(entry, commands)
        return commands

    def _publish(self, out: Outgoing, content_type: str, commands: list[Command]) -> int:
        seq = self._next_seq
        self._next_seq += 1
        commands.append(Publish(seq, out, content_type))
        return seq

    def _publish_copy(
        self, entry: Entry, out: Outgoing, attempt: int, commands: list[Command]
    ) -> None:
        entry.pending += 1
        if out.exchange == wire.DELIVER_EXCHANGE:
            self._by_delivery[(out.message_id or "", out.routing_key)] = entry
        seq = self._publish(out, wire.CONTENT_TYPE, commands)
        self._outstanding[seq] = CopyInFlight(entry, out, attempt)

    # -- the broker's answers ----------------------------------------------------------------

    def on_return(
        self, exchange: str, routing_key: str, message_id: str | None, reply: str
    ) -> list[Command]:
        """The broker returned a publish (mandatory, routed nowhere); its confirm follows."""
        key = (message_id or "", routing_key)
        entry = self._by_delivery.get(key)
        if exchange == wire.DELIVER_EXCHANGE and entry is not None:
            for out in entry.decision.deliveries:
                if out.routing_key == routing_key:
                    entry.returned.append(out)
            return []
        # Dead letters and audit events go to fanout exchanges bound at topology time;
        # a return here means the topology is broken. The ack that follows is then
        # treated as a nack, so the message is sent again and finally handed back.
        self._returned_other.add((exchange, message_id or ""))
        return [ReturnedElsewhere(exchange, routing_key, reply)]

    def on_confirm(self, seq: int, multiple: bool, acked: bool) -> list[Command]:
        """The broker confirmed (``acked``) or refused publish ``seq`` (and those below it)."""
        commands: list[Command] = []
        seqs = [seq]
        if multiple:
            # Sequence numbers only grow and the dict keeps insertion order, so the
            # confirmed ones are a prefix: stop at the first one beyond the tag.
            seqs = []
            for pending in self._outstanding:
                if pending > seq:
                    break
                seqs.append(pending)
        for number in seqs:
            item = self._outstanding.pop(number, None)
            if item is None:
                continue
            ok = acked
            if self._returned_other:
                key = (item.out.exchange, item.out.message_id or "")
                if key in self._returned_other:
                    self._returned_other.discard(key)
                    ok = False
            if isinstance(item, CopyInFlight):
                self._confirmed_copy(item, ok, commands)
            else:
                self._confirmed_audit(item, ok, commands)
        self._maybe_finish_stop(commands)
        return commands

    def _confirmed_copy(self, item: CopyInFlight, acked: bool, commands: list[Command]) -> None:
        entry, out, attempt = item.entry, item.out, item.attempt
        entry.pending -= 1
        if not acked:
            if attempt < MAX_PUBLISH_ATTEMPTS:
                self.stats.republished += 1
                self._publish_copy(entry, out, attempt + 1, commands)
            else:
                self._give_up(entry, f"broker nacked a publish {attempt} times", commands)
                return
        if out.exchange == wire.DELIVER_EXCHANGE:
            self._by_delivery.pop((out.message_id or "", out.routing_key), None)
        if entry.pending == 0 and entry.tag in self._entries:
            self._phase_done(entry, commands)

    def _phase_done(self, entry: Entry, commands: list[Command]) -> None:
        """All deliveries and dead letters of ``entry`` are confirmed (or returned)."""
        if entry.returned and not entry.returns_handled:
            entry.returns_handled = True
            self._dead_letter_returned(entry, commands)
            if entry.pending:
                return
        self._audit_batch.append(entry)
        if len(self._audit_batch) >= self._batch_full or self.draining:
            self._flush(commands)
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            commands.append(ScheduleFlush())

    def _dead_letter_returned(self, entry: Entry, commands: list[Command]) -> None:
        fate = outcomes.unroutable(entry.decision, entry.returned)
        entry.events = fate.events
        entry.extra_events = fate.extra_events
        self.stats.unroutable += len(fate.dead_letters)
        for dead in fate.dead_letters:
            self._publish_copy(entry, dead, 1, commands)

    # -- audit -----------------------------------------------------------------------------------

    def on_flush(self, *, writable: bool = True) -> list[Command]:
        """The scheduled flush: publish the audit events of the finished messages.

        ``writable`` is false when the channel is closed or closing: the batch then
        waits (and goes with the channel; the broker redelivers its messages).
        """
        # The one timer scheduled is spent, whatever flushed the batch meanwhile: a batch
        # that filled up before it fired does not arm a second one.
        self._flush_scheduled = False
        commands: list[Command] = []
        if writable:
            self._flush(commands)
        return commands

    def _flush(self, commands: list[Command]) -> None:
        if not self._audit_batch:
            return
        batch, self._audit_batch = self._audit_batch, []
        self._publish_audit(batch, 1, commands)

    def _publish_audit(self, batch: list[Entry], attempt: int, commands: list[Command]) -> None:
        events = [
            e
            for entry in batch
            for e in (
                *(entry.decision.events if entry.events is None else entry.events),
                *entry.extra_events,
            )
        ]
        out = Outgoing(wire.AUDIT_EXCHANGE, "", encode_batch(events), {}, uuid4().hex, "audit")
        seq = self._publish(out, AUDIT_CONTENT_TYPE, commands)
        self._outstanding[seq] = AuditInFlight(batch, out, attempt)

    def _confirmed_audit(self, item: AuditInFlight, acked: bool, commands: list[Command]) -> None:
        if not acked:
            if item.attempt < MAX_PUBLISH_ATTEMPTS:
                self.stats.republished += 1
                self._publish_audit(item.batch, item.attempt + 1, commands)
            else:
                for entry in item.batch:
                    self._give_up(entry, "broker nacked the audit batch", commands)
            return
        self.stats.audit_messages += 1
        now = self._monotonic()
        acks: list[tuple[int, bool]] = []
        for entry in item.batch:
            acks.extend(self._acks.finish(entry.tag))
            self._entries.pop(entry.tag, None)
            self._account(entry.decision, now - entry.started)
        commands.extend(Ack(tag, multiple) for tag, multiple in acks)
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
        elif outcomes.is_duplicate(decision):
            stats.duplicates += 1
        if self._observer is not None:
            self._observer(decision, seconds)

    def _give_up(self, entry: Entry, why: str, commands: list[Command]) -> None:
        """Hand the message back to the broker; its delivery limit parks it if this repeats."""
        commands.append(Requeued(entry.decision.message_id, why))
        self._entries.pop(entry.tag, None)
        if entry.decision.claimed:
            self.window.release(entry.decision.message_id)
        commands.append(Nack(entry.tag))
        commands.extend(
            Ack(tag, multiple) for tag, multiple in self._acks.finish(entry.tag, ack=False)
        )

    # -- stopping ----------------------------------------------------------------------------------

    def on_stop(self) -> list[Command]:
        """Drain (SIGTERM): take nothing new, finish what is in flight, then close.

        The consumer is not cancelled: on a quorum queue (RabbitMQ 3.10) the acks a
        channel sends after cancelling its consumer are partly lost, so messages
        routed during the drain went back to ingress and were routed twice. What
        arrives from now on is left unacked (``on_message``) and the broker requeues
        it when the connection closes, once everything in flight is acked.
        """
        self.draining = True
        commands: list[Command] = []
        self._flush(commands)  # what waits for company would only delay the drain
        self._maybe_finish_stop(commands)
        commands.append(StartDrainTimer(DRAIN_TIMEOUT_S))
        return commands

    def on_drain_timeout(self) -> list[Command]:
        """The drain took too long: close anyway (the broker redelivers what is unacked)."""
        commands: list[Command] = []
        if self._entries:
            commands.append(StoppingWithInFlight(len(self._entries)))
        commands.append(Close())
        return commands

    def _maybe_finish_stop(self, commands: list[Command]) -> None:
        if self.draining and not self._entries and not self._outstanding:
            commands.append(Close())
