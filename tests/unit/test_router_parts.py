"""The router shell's bookkeeping, without a broker: acknowledgements and the duplicate window."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from liaison.adapters.pika_router import Router
from liaison.core.decide import Incoming, RoutingContext, decide
from liaison.core.rules import Rules
from liaison.core.window import AckTracker, IdWindow
from liaison.directory import load_directory
from liaison.settings import Settings
from schemas.catalog import default_registry
from schemas.examples import example_envelope


def settle(acks: list[tuple[int, bool]], settled: set[int]) -> None:
    for tag, multiple in acks:
        if multiple:
            settled.update(range(1, tag + 1))
        else:
            settled.add(tag)


class TestAckTracker:
    def test_in_order_completions_ack_with_multiple(self) -> None:
        """Messages finishing in order are acked by one multiple ack each time the floor moves."""
        tracker = AckTracker()
        assert tracker.finish(1) == [(1, True)]
        assert tracker.finish(2) == [(2, True)]

    def test_out_of_order_waits_for_the_gap(self) -> None:
        """A later message finishing first is acked together with the earlier one."""
        tracker = AckTracker()
        assert tracker.finish(2) == []
        assert tracker.finish(3) == []
        assert tracker.finish(1) == [(3, True)]

    def test_nacked_tag_is_never_acked(self) -> None:
        """A message handed back with a nack is passed over: the multiple ack stops below it."""
        tracker = AckTracker()
        assert tracker.finish(1, ack=False) == []
        assert tracker.finish(2) == [(2, True)]
        tracker = AckTracker()
        assert tracker.finish(1) == [(1, True)]
        assert tracker.finish(2, ack=False) == []
        assert tracker.finish(3) == [(3, True)]

    def test_slow_message_does_not_hold_the_window(self) -> None:
        """When too many finished messages wait behind a slow one they are acked one by one."""
        tracker = AckTracker(max_waiting=3)
        for tag in (2, 3, 4):
            assert tracker.finish(tag) == []
        assert tracker.finish(5) == [(2, False), (3, False), (4, False), (5, False)]
        # When the slow one finishes, the multiple ack covers it without re-acking the others.
        assert tracker.finish(1) == [(1, True)]

    def test_random_order_settles_every_acked_tag_exactly(self) -> None:
        """Any completion order ends with every acked tag settled and no nacked tag acked."""
        rng = random.Random(7)
        for _ in range(200):
            n = rng.randint(1, 60)
            tags = list(range(1, n + 1))
            rng.shuffle(tags)
            nacked = {t for t in tags if rng.random() < 0.1}
            tracker = AckTracker(max_waiting=rng.randint(1, 10))
            acks: list[tuple[int, bool]] = []
            for tag in tags:
                acks.extend(tracker.finish(tag, ack=tag not in nacked))
            settled: set[int] = set()
            settle(acks, settled)
            assert settled - nacked == set(range(1, n + 1)) - nacked
            singles = [t for t, multiple in acks if not multiple]
            assert not set(singles) & nacked
            assert len(singles) == len(set(singles))


class TestIdWindow:
    def test_forgets_the_oldest_beyond_its_size(self) -> None:
        """The window keeps only the most recent ids, each with its owner."""
        window = IdWindow(2)
        for key in ("a", "b", "c"):
            window.claim(key, f"gs:{key}")
        assert "a" not in window
        assert window.owner("b") == "gs:b"
        assert window.owner("c") == "gs:c"
        assert len(window) == 2

    def test_size_zero_remembers_nothing(self) -> None:
        """A window of size 0 turns deduplication off."""
        window = IdWindow(0)
        window.claim("a", "gs:a")
        assert window.owner("a") is None

    def test_release_forgets_a_claim(self) -> None:
        """A released claim (its message went back to the broker) is gone; others stay."""
        window = IdWindow(10)
        window.claim("a", "gs:a")
        window.claim("b", "gs:b")
        window.release("a")
        window.release("never-claimed")
        assert "a" not in window and window.owner("b") == "gs:b"


class TestClaimsAcrossReconnects:
    def test_unacked_messages_release_their_ids_on_a_new_channel(self, tmp_path: Path) -> None:
        """After a lost connection the broker redelivers what was not acked: those messages are routed again, not dropped as their own duplicates."""
        directory = load_directory(None)
        ctx = RoutingContext(
            default_registry(),
            directory,
            Rules.load(None, directory),
            "guest",
            receipt_secret=b"k" * 32,
        )
        state = Router(Settings(hub_key_path=tmp_path / "hub.key", http_port=0), ctx).state
        now = datetime.now(UTC)
        in_flight, acked = (
            example_envelope("correspondence.letter", 1, sender="gs", recipients=("gs-archives",))
            for _ in range(2)
        )
        # The first is still waiting for its confirms; the second was acked already.
        state.on_message(1, Incoming(in_flight.encode(), "gs"))
        decide(Incoming(acked.encode(), "gs"), ctx, now=now, window=state.window)
        state.on_connection_lost()  # what a reconnection does
        again = decide(Incoming(in_flight.encode(), "gs"), ctx, now=now, window=state.window)
        assert again.deliveries, "a redelivered, never-acked message was dropped"
        repeat = decide(Incoming(acked.encode(), "gs"), ctx, now=now, window=state.window)
        assert [e.event.value for e in repeat.events] == ["duplicate"]
