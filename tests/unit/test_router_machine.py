"""The router's state machine without a broker: a fake channel carries out its commands.

Each test drives ``RouterState`` the way pika would (deliveries, confirms, returns,
a lost connection, SIGTERM) and asserts exactly which ingress tags are acked (and
how: ``multiple`` or one by one), which are handed back, and what is published again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from liaison.core.decide import RoutingContext
from liaison.core.events import CONTENT_TYPE as AUDIT_CONTENT_TYPE
from liaison.core.events import AuditEvent, EventKind, decode_batch
from liaison.core.machine import (
    AUDIT_BATCH_MAX,
    AUDIT_FLUSH_DELAY_S,
    DRAIN_TIMEOUT_S,
    MAX_PUBLISH_ATTEMPTS,
    Ack,
    Close,
    Command,
    DecideFailed,
    Nack,
    Publish,
    Refused,
    Requeued,
    ReturnedElsewhere,
    RouterState,
    ScheduleFlush,
    StartDrainTimer,
    StoppingWithInFlight,
)
from liaison.core.rules import Rules
from liaison.core.values import Incoming, Outgoing
from liaison.directory import load_directory
from schemas import wire
from schemas.catalog import default_registry
from schemas.examples import example_envelope

HUB = "hub"


def context() -> RoutingContext:
    directory = load_directory(None)
    return RoutingContext(
        default_registry(),
        directory,
        Rules.load(None, directory),
        HUB,
        receipt_secret=b"k" * 32,
    )


def letter(*recipients: str) -> bytes:
    """A letter from ``gs`` (published by RabbitMQ user ``gs``) to ``recipients``."""
    return example_envelope("correspondence.letter", 1, sender="gs", recipients=recipients).encode()


@dataclass
class FakeChannel:
    """Carries out the machine's commands as a pika channel would, and remembers them."""

    state: RouterState
    #: Every publish, by sequence number, in order.
    published: dict[int, Publish] = field(default_factory=dict)
    #: Publishes the fake broker has not confirmed yet.
    unconfirmed: list[int] = field(default_factory=list)
    acks: list[tuple[int, bool]] = field(default_factory=list)
    nacks: list[int] = field(default_factory=list)
    reports: list[Command] = field(default_factory=list)
    flush_pending: bool = False
    drain_timer: float | None = None
    closed: int = 0

    def run(self, commands: list[Command]) -> list[Command]:
        for command in commands:
            if isinstance(command, Publish):
                assert command.seq not in self.published, "a sequence number used twice"
                self.published[command.seq] = command
                self.unconfirmed.append(command.seq)
            elif isinstance(command, Ack):
                self.acks.append((command.tag, command.multiple))
            elif isinstance(command, Nack):
                self.nacks.append(command.tag)
            elif isinstance(command, ScheduleFlush):
                self.flush_pending = True
            elif isinstance(command, StartDrainTimer):
                self.drain_timer = command.seconds
            elif isinstance(command, Close):
                self.closed += 1
            else:
                self.reports.append(command)
        return commands

    # -- what the broker does -------------------------------------------------------------

    def deliver(self, tag: int, body: bytes, user: str | None = "gs") -> list[Command]:
        return self.run(self.state.on_message(tag, Incoming(body, user, "letter")))

    def confirm(self, seq: int, *, acked: bool = True, multiple: bool = False) -> list[Command]:
        if multiple:
            self.unconfirmed = [s for s in self.unconfirmed if s > seq]
        else:
            self.unconfirmed.remove(seq)
        return self.run(self.state.on_confirm(seq, multiple, acked))

    def give_back(self, seq: int, reply: str = "NO_ROUTE") -> list[Command]:
        out = self.published[seq].out
        return self.run(self.state.on_return(out.exchange, out.routing_key, out.message_id, reply))

    def flush(self) -> list[Command]:
        assert self.flush_pending, "no flush was scheduled"
        self.flush_pending = False
        return self.run(self.state.on_flush())

    def settle(self) -> None:
        """Confirm everything, flushing the audit when asked, until nothing is pending."""
        while self.unconfirmed or self.flush_pending:
            while self.unconfirmed:
                self.confirm(self.unconfirmed[0])
            if self.flush_pending:
                self.flush()

    # -- reading what happened -------------------------------------------------------------

    def outs(self, seqs: list[int] | None = None) -> list[Outgoing]:
        return [self.published[s].out for s in (seqs or sorted(self.published))]

    def audit_events(self) -> list[AuditEvent]:
        return [
            event
            for command in self.published.values()
            if command.content_type == AUDIT_CONTENT_TYPE
            for event in decode_batch(command.out.body)
        ]

    def acked_tags(self) -> set[int]:
        """Every ingress tag an ack covered (``multiple``: all below it not nacked)."""
        tags: set[int] = set()
        for tag, multiple in self.acks:
            tags.update(range(1, tag + 1) if multiple else (tag,))
        return tags - set(self.nacks)


@pytest.fixture
def channel() -> FakeChannel:
    return FakeChannel(RouterState(context(), dedupe_window=1000))


def published_to(channel: FakeChannel, exchange: str) -> list[Outgoing]:
    return [out for out in channel.outs() if out.exchange == exchange]


class TestTheHappyPath:
    def test_ack_waits_for_the_deliveries_and_then_for_the_audit(
        self, channel: FakeChannel
    ) -> None:
        """No ack before every delivery is confirmed and then the audit batch too."""
        commands = channel.deliver(1, letter("gs-archives"))
        deliveries = [c.seq for c in commands if isinstance(c, Publish)]
        assert deliveries and all(
            channel.published[s].out.exchange == wire.DELIVER_EXCHANGE for s in deliveries
        )
        for seq in deliveries:
            assert not [c for c in channel.confirm(seq) if isinstance(c, Ack)]
        assert channel.flush_pending and channel.acks == []
        (audit,) = (c for c in channel.flush() if isinstance(c, Publish))
        assert audit.out.exchange == wire.AUDIT_EXCHANGE and channel.acks == []
        assert channel.confirm(audit.seq) == [Ack(1, True)]
        assert channel.state.in_flight == 0 and channel.state.stats.routed == 1

    def test_messages_finishing_together_share_one_audit_batch(self, channel: FakeChannel) -> None:
        """Three messages confirmed in one turn: one audit message, acked once it is confirmed."""
        for tag in (1, 2, 3):
            channel.deliver(tag, letter("gs-archives"))
        last = max(channel.unconfirmed)
        channel.confirm(last, multiple=True)
        (audit,) = (c for c in channel.flush() if isinstance(c, Publish))
        assert len({e.message_id for e in decode_batch(audit.out.body)}) == 3
        assert channel.acks == []
        channel.confirm(audit.seq)
        # One ack per message as the floor moves (each with ``multiple``), in tag order.
        assert channel.acks == [(1, True), (2, True), (3, True)]


class TestNack:
    def test_a_nacked_delivery_is_published_again_and_the_ingress_waits(
        self, channel: FakeChannel
    ) -> None:
        """A nack re-publishes the same copy; the ingress message is acked once that is confirmed."""
        channel.deliver(1, letter("gs-archives"))
        first = channel.unconfirmed[0]
        again = [c for c in channel.confirm(first, acked=False) if isinstance(c, Publish)]
        assert [c.out for c in again] == [channel.published[first].out]
        assert again[0].seq > first
        assert channel.acks == [] and channel.nacks == []
        channel.settle()
        assert channel.acks == [(1, True)]
        assert channel.state.stats.republished == 1

    def test_a_copy_nacked_every_time_hands_the_message_back(self, channel: FakeChannel) -> None:
        """After MAX_PUBLISH_ATTEMPTS nacks: nack(requeue) of the ingress tag, no ack, claim released."""
        body = letter("gs-archives")
        channel.deliver(1, body)
        channel.deliver(2, letter("gs-archives"))  # an unrelated message, fine
        second = [s for s in channel.unconfirmed if channel.published[s].out.body != body]
        seq = channel.unconfirmed[0]
        republished = 0
        for _ in range(MAX_PUBLISH_ATTEMPTS - 1):
            (seq,) = (c.seq for c in channel.confirm(seq, acked=False) if isinstance(c, Publish))
            republished += 1
        commands = channel.confirm(seq, acked=False)
        assert not [c for c in commands if isinstance(c, Publish)]
        assert [c for c in commands if isinstance(c, Requeued)]
        assert channel.nacks == [1] and channel.acks == []
        assert channel.state.stats.republished == republished == MAX_PUBLISH_ATTEMPTS - 1
        # Handed back: its redelivery is routed again, not dropped as its own duplicate.
        assert channel.state.window.owner(channel.outs([seq])[0].message_id or "") is None
        for s in second:
            channel.confirm(s)
        channel.settle()
        # The multiple ack stops at 2; tag 1 was nacked and is never acked.
        assert channel.acks == [(2, True)]
        assert channel.acked_tags() == {2}

    def test_a_nacked_audit_batch_is_published_again_then_given_up(
        self, channel: FakeChannel
    ) -> None:
        """The audit batch is re-published on nack; nacked every time, its messages go back."""
        channel.deliver(1, letter("gs-archives"))
        channel.deliver(2, letter("gs-archives"))
        channel.confirm(max(channel.unconfirmed), multiple=True)
        (audit,) = (c for c in channel.flush() if isinstance(c, Publish))
        seq = audit.seq
        for _ in range(MAX_PUBLISH_ATTEMPTS - 1):
            (again,) = (c for c in channel.confirm(seq, acked=False) if isinstance(c, Publish))
            assert again.out.exchange == wire.AUDIT_EXCHANGE and again.out.body == audit.out.body
            seq = again.seq
        channel.confirm(seq, acked=False)
        assert channel.nacks == [1, 2] and channel.acks == []
        assert channel.state.in_flight == 0


class TestReturn:
    def test_a_returned_copy_is_dead_lettered_and_the_audit_says_so(
        self, channel: FakeChannel
    ) -> None:
        """No inbox for a recipient: its copy becomes an ``unroutable`` dead letter, then the ack."""
        channel.deliver(1, letter("gs-archives", "gs-legal"))
        deliveries = list(channel.unconfirmed)
        lost = next(s for s in deliveries if channel.published[s].out.routing_key == "gs-legal")
        assert channel.give_back(lost) == []
        for seq in deliveries:
            channel.confirm(seq)
        dead = published_to(channel, wire.DEAD_EXCHANGE)
        assert len(dead) == 1
        assert dead[0].routing_key == "gs-legal"
        assert dead[0].body == channel.published[lost].out.body
        assert dead[0].headers[wire.H_REASON] == "unroutable"
        assert dead[0].headers[wire.H_RECIPIENT] == "gs-legal"
        assert wire.H_RECEIPT_TOKEN not in dead[0].headers
        # The message's first arrival, for `dlq retry` to carry on.
        assert dead[0].timestamp == channel.published[lost].out.timestamp is not None
        assert channel.acks == [] and not channel.flush_pending  # the dead letter is in flight
        channel.settle()
        assert channel.acks == [(1, True)]
        events = channel.audit_events()
        delivered = [e for e in events if e.event is EventKind.DELIVERED]
        assert "gs-legal" not in delivered[0].recipients
        assert "gs-archives" in delivered[0].recipients
        unroutable = [e for e in events if e.reason == "unroutable"]
        assert [(e.event, e.recipients) for e in unroutable] == [
            (EventKind.DEAD_LETTERED, ("gs-legal",))
        ]
        assert channel.state.stats.unroutable == 1
        # Nothing else was published again: the deliveries, one dead letter, one audit.
        assert len(channel.published) == len(deliveries) + 2

    def test_every_copy_returned_drops_the_delivered_event(self, channel: FakeChannel) -> None:
        """A message none of whose copies found an inbox claims no delivery in the audit."""
        channel.deliver(1, letter("gs-archives"))
        for seq in list(channel.unconfirmed):
            channel.give_back(seq)
        channel.settle()
        events = channel.audit_events()
        assert not [e for e in events if e.event is EventKind.DELIVERED]
        assert {e.recipients for e in events if e.reason == "unroutable"} == {
            (out.routing_key,) for out in published_to(channel, wire.DELIVER_EXCHANGE)
        }
        assert channel.acks == [(1, True)]

    def test_a_returned_dead_letter_counts_as_a_nack(self, channel: FakeChannel) -> None:
        """A dead letter routed nowhere (broken topology): its ack is taken as a nack, so it is sent again."""
        channel.deliver(1, b"not json")
        (seq,) = channel.unconfirmed
        assert channel.published[seq].out.exchange == wire.DEAD_EXCHANGE
        commands = channel.give_back(seq)
        assert [type(c) for c in commands] == [ReturnedElsewhere]
        (again,) = (c for c in channel.confirm(seq) if isinstance(c, Publish))
        assert again.out == channel.published[seq].out
        assert channel.acks == []
        channel.settle()
        assert channel.acks == [(1, True)]
        assert [type(r) for r in channel.reports] == [Refused, ReturnedElsewhere]


class TestConnectionLost:
    def test_nothing_is_acked_or_published_again_from_the_old_channel(
        self, channel: FakeChannel
    ) -> None:
        """Publishes in flight when the connection drops: no ack; the broker redelivers, claims are freed."""
        first, second = letter("gs-archives"), letter("gs-archives")
        channel.deliver(1, first)
        channel.deliver(2, second)
        # The first message's deliveries are confirmed and its audit batch is in flight.
        mine = [s for s in channel.unconfirmed if channel.published[s].out.body == first]
        for seq in mine:
            channel.confirm(seq)
        channel.flush()
        old = dict(channel.published)
        assert channel.state.on_connection_lost() == []
        # Confirms for the old channel that arrive late change nothing.
        assert channel.state.on_confirm(max(old), True, True) == []
        assert channel.acks == [] and channel.nacks == []
        assert channel.state.in_flight == 0 and channel.state.unconfirmed == 0
        # The new channel: the broker redelivers both with new tags; each is routed again,
        # none is dropped as a duplicate of itself, and publishes are numbered from 1.
        channel.published.clear()
        channel.unconfirmed.clear()
        commands = channel.deliver(1, second) + channel.deliver(2, first)
        assert next(c.seq for c in commands if isinstance(c, Publish)) == 1
        assert {out.body for out in channel.outs()} == {first, second}
        assert all(out.exchange == wire.DELIVER_EXCHANGE for out in channel.outs())
        channel.settle()
        assert channel.acks == [(1, True), (2, True)]
        assert channel.state.stats.duplicates == 0 and channel.state.stats.routed == 2


class TestRedeliveredAfterExpiry:
    def test_a_copy_delivered_before_the_connection_dropped_is_recorded_delivered(
        self,
    ) -> None:
        """The copy went out, the audit batch waited, the connection dropped, the letter
        expired meanwhile: on redelivery it is routed again, so the ledger does not say
        "expired" about a letter sitting in the recipient's inbox."""
        t0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        now = [t0]
        env = example_envelope("correspondence.letter", 1, sender="gs", recipients=("gs-archives",))
        body = env.model_copy(
            update={
                "created_at": t0 - timedelta(seconds=1),
                "expires_at": t0 + timedelta(milliseconds=200),
            }
        ).encode()
        channel = FakeChannel(RouterState(context(), dedupe_window=1000, clock=lambda: now[0]))
        channel.run(channel.state.on_message(1, Incoming(body, "gs", "letter")))
        for seq in list(channel.unconfirmed):
            channel.confirm(seq)  # the copies are in the inboxes; the audit batch waits
        assert published_to(channel, wire.AUDIT_EXCHANGE) == []
        channel.state.on_connection_lost()
        channel.published.clear()
        channel.unconfirmed.clear()
        channel.flush_pending = False
        now[0] = t0 + timedelta(seconds=2)  # expired by the time the broker redelivers it
        again = Incoming(body, "gs", "letter", redelivered=True)
        channel.run(channel.state.on_message(1, again))
        channel.settle()
        kinds = [e.event for e in channel.audit_events()]
        assert EventKind.DELIVERED in kinds and EventKind.REJECTED not in kinds
        assert published_to(channel, wire.DEAD_EXCHANGE) == []

    def test_a_first_delivery_after_expiry_is_refused(self) -> None:
        t0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        env = example_envelope("correspondence.letter", 1, sender="gs", recipients=("gs-archives",))
        body = env.model_copy(
            update={"created_at": t0 - timedelta(hours=1), "expires_at": t0 - timedelta(seconds=1)}
        ).encode()
        channel = FakeChannel(RouterState(context(), dedupe_window=1000, clock=lambda: t0))
        channel.run(channel.state.on_message(1, Incoming(body, "gs", "letter")))
        channel.settle()
        (dead,) = published_to(channel, wire.DEAD_EXCHANGE)
        assert dead.headers[wire.H_REASON] == "expired"


class TestDrain:
    def test_sigterm_finishes_what_is_in_flight_acks_exactly_it_then_closes(
        self, channel: FakeChannel
    ) -> None:
        """After on_stop: new deliveries are left alone, the two in flight are acked, then Close."""
        channel.deliver(1, letter("gs-archives"))
        channel.deliver(2, letter("gs-archives"))
        commands = channel.run(channel.state.on_stop())
        assert commands == [StartDrainTimer(DRAIN_TIMEOUT_S)]  # no Close: work in flight
        before = len(channel.published)
        assert channel.deliver(3, letter("gs-archives")) == []
        assert len(channel.published) == before and channel.state.stats.received == 2
        deliveries = list(channel.unconfirmed)
        answers = [c for seq in deliveries for c in channel.confirm(seq)]
        # Draining, a finished message's audit goes at once (no timer to wait for).
        audits = [c for c in answers if isinstance(c, Publish)]
        assert audits and not channel.flush_pending and channel.closed == 0
        commands = [c for audit in audits for c in channel.confirm(audit.seq)]
        assert commands[-1] == Close() and channel.closed == 1
        assert channel.acked_tags() == {1, 2}

    def test_sigterm_with_nothing_in_flight_closes_at_once(self, channel: FakeChannel) -> None:
        assert channel.state.on_stop() == [Close(), StartDrainTimer(DRAIN_TIMEOUT_S)]

    def test_the_drain_timer_closes_with_messages_still_unacked(self, channel: FakeChannel) -> None:
        """The drain gives up after DRAIN_TIMEOUT_S: close without acking (the broker redelivers)."""
        channel.deliver(1, letter("gs-archives"))
        channel.run(channel.state.on_stop())
        assert channel.state.on_drain_timeout() == [StoppingWithInFlight(1), Close()]
        assert channel.acks == []


class TestDecideFailure:
    def test_a_decide_crash_hands_the_message_back_and_keeps_the_acks_flowing(
        self, channel: FakeChannel, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bug past decide's own refusal: nack(requeue) that tag, and the others are still acked."""
        channel.deliver(1, letter("gs-archives"))

        def broken(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr("liaison.core.machine.decide", broken)
        commands = channel.deliver(2, letter("gs-archives"))
        assert [type(c) for c in commands] == [DecideFailed, Nack]
        monkeypatch.undo()
        channel.settle()
        assert channel.nacks == [2]
        assert channel.acks == [(1, True)]


def test_refused_message_is_dead_lettered_audited_and_acked(channel: FakeChannel) -> None:
    """A message published by another user than its sender: one dead letter, audited, acked."""
    commands = channel.deliver(1, letter("gs-archives"), user="mallory")
    assert [type(c) for c in commands] == [Refused, Publish]
    assert channel.outs()[0].headers[wire.H_REASON] == "sender_mismatch"
    channel.settle()
    assert channel.acks == [(1, True)]
    assert channel.state.stats.by_reason == {"sender_mismatch": 1}


class TestAuditFlushTiming:
    """The audit batch waits for company (ScheduleFlush's delay), but never needlessly."""

    def test_the_flush_waits_for_the_delay(self, channel: FakeChannel) -> None:
        commands = channel.deliver(1, letter("gs-archives"))
        answers = [c for p in commands if isinstance(p, Publish) for c in channel.confirm(p.seq)]
        (scheduled,) = (c for c in answers if isinstance(c, ScheduleFlush))
        assert scheduled.seconds == AUDIT_FLUSH_DELAY_S > 0
        assert not [c for c in answers if isinstance(c, Publish)]  # nothing published yet

    def test_a_full_batch_does_not_arm_a_second_timer(self) -> None:
        """A batch that filled up before the timer fired: the timer flushes the rest, once."""
        state = RouterState(context(), dedupe_window=10_000)
        scheduled = 0
        audits = 0
        for tag in range(1, AUDIT_BATCH_MAX + 11):
            for command in state.on_message(tag, Incoming(letter("gs-archives"), "gs", "letter")):
                if isinstance(command, Publish):
                    for done in state.on_confirm(command.seq, False, True):
                        scheduled += isinstance(done, ScheduleFlush)
                        audits += isinstance(done, Publish)
        assert audits == 1  # the full batch, at once
        assert scheduled == 1  # the first finished message's timer; none after the flush
        (rest,) = (c for c in state.on_flush() if isinstance(c, Publish))
        assert len(decode_batch(rest.out.body)) == 10 * 3  # the ten after the full batch
        assert not [c for c in state.on_flush() if isinstance(c, Publish)]

    def test_half_the_prefetch_window_flushes_at_once(self) -> None:
        """With half the messages the broker may send waiting, waiting longer would stall."""
        channel = FakeChannel(RouterState(context(), dedupe_window=1000, prefetch=4))
        for tag in (1, 2, 3):
            channel.deliver(tag, letter("gs-archives"))
        first = [p.seq for p in channel.published.values()][:2]  # message 1's two copies
        for seq in first:
            channel.confirm(seq)
        assert channel.flush_pending  # one message waiting: the timer
        channel.confirm(max(channel.unconfirmed), multiple=True)
        audits = [c for c in channel.published.values() if c.content_type == AUDIT_CONTENT_TYPE]
        assert len(audits) == 1  # the second finished message made two of four: at once
        assert len(decode_batch(audits[0].out.body)) == 2 * 3
        channel.settle()
        assert channel.acked_tags() == {1, 2, 3}

    def test_prefetch_one_never_waits(self) -> None:
        channel = FakeChannel(RouterState(context(), dedupe_window=1000, prefetch=1))
        channel.deliver(1, letter("gs-archives"))
        channel.confirm(max(channel.unconfirmed), multiple=True)
        (audit,) = (c for c in channel.published.values() if c.content_type == AUDIT_CONTENT_TYPE)
        assert not channel.flush_pending
        channel.confirm(audit.seq)
        assert channel.acks == [(1, True)]

    def test_a_drain_flushes_what_waits(self, channel: FakeChannel) -> None:
        commands = channel.deliver(1, letter("gs-archives"))
        for seq in [c.seq for c in commands if isinstance(c, Publish)]:
            channel.confirm(seq)
        assert channel.flush_pending
        (audit,) = (c for c in channel.run(channel.state.on_stop()) if isinstance(c, Publish))
        assert audit.out.exchange == wire.AUDIT_EXCHANGE
        channel.confirm(audit.seq)
        assert channel.acks == [(1, True)] and channel.closed == 1
