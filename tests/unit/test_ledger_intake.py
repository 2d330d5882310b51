"""The writer's file side without a broker: waiting for the lock, and when it signs."""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.core.events import EventKind, make_event
from liaison.ledger.intake import CheckpointSchedule, open_when_free
from liaison.ledger.store import Ledger


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _append(ledger: Ledger, *ids: str) -> None:
    ledger.append([make_event(EventKind.ROUTED, i) for i in ids])


class TestCheckpointSchedule:
    def test_signs_once_enough_records_are_unsigned(self, tmp_path: Path) -> None:
        """Below ``every`` unsigned records nothing is signed; at ``every`` a checkpoint covers them."""
        clock = Clock()
        schedule = CheckpointSchedule(every=3, seconds=60, clock=clock)
        with Ledger.open(tmp_path, key=Ed25519PrivateKey.generate()) as ledger:
            _append(ledger, "a", "b")
            assert schedule.sign_if_due(ledger) is None
            _append(ledger, "c")
            signed = schedule.sign_if_due(ledger)
            assert signed is not None and signed.tree_size == 3
            assert ledger.unsigned == 0

    def test_signs_a_few_records_once_the_time_is_up(self, tmp_path: Path) -> None:
        """With none unsigned nothing is signed; one unsigned record is signed ``seconds`` after the last signing."""
        clock = Clock()
        schedule = CheckpointSchedule(every=1000, seconds=10, clock=clock)
        with Ledger.open(tmp_path, key=Ed25519PrivateKey.generate()) as ledger:
            clock.now += 30
            assert schedule.sign_if_due(ledger) is None
            clock.now -= 30
            _append(ledger, "a")
            clock.now += 9
            assert schedule.sign_if_due(ledger) is None
            clock.now += 1
            signed = schedule.sign_if_due(ledger)
            assert signed is not None and signed.tree_size == 1


class TestOpenWhenFree:
    def test_waits_for_the_other_writer_then_opens(self, tmp_path: Path) -> None:
        """A second writer says once why it waits, and opens the ledger when the first closes."""
        key = Ed25519PrivateKey.generate()
        first = Ledger.open(tmp_path, key=key)
        _append(first, "a")
        waits: list[str] = []
        sizes: list[int] = []

        def open_second() -> None:
            ledger = open_when_free(
                tmp_path,
                key=key,
                segment_bytes=1 << 20,
                stopping=threading.Event(),
                on_wait=waits.append,
            )
            assert ledger is not None
            sizes.append(ledger.size)
            ledger.close()

        second = threading.Thread(target=open_second)
        second.start()
        second.join(0.5)
        assert second.is_alive() and len(waits) == 1
        first.close()
        second.join(5)
        assert sizes == [1]

    def test_gives_up_when_stopping(self, tmp_path: Path) -> None:
        """Asked to stop while it waits for the lock, it returns ``None`` instead of a ledger."""
        key = Ed25519PrivateKey.generate()
        stopping = threading.Event()
        with Ledger.open(tmp_path, key=key):
            found = open_when_free(
                tmp_path,
                key=key,
                segment_bytes=1 << 20,
                stopping=stopping,
                on_wait=lambda _reason: stopping.set(),
            )
        assert found is None
