"""The writer's batch step without a broker: what is acked, what is dead-lettered, what is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.adapters.audit_writer import AuditWriter
from liaison.core.events import EventKind, encode_batch, make_event
from liaison.ledger import store
from liaison.ledger.segments import list_segments
from liaison.ledger.store import Ledger, LedgerError
from liaison.settings import Settings


class FakeChannel:
    """Records acks and nacks the way the broker would see them."""

    def __init__(self) -> None:
        self.acks: list[tuple[int, bool]] = []
        self.nacks: list[tuple[int, bool]] = []

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        self.nacks.append((delivery_tag, requeue))


def body(*ids: str) -> bytes:
    return encode_batch(make_event(EventKind.ROUTED, i) for i in ids)


NAN_BODY = (
    b'{"events":[{"event":"received","dedupe_key":"received:nan","at":"2025-01-01T00:00:00Z",'
    b'"message_id":"nan","envelope":{"x":NaN}}]}'
)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[AuditWriter, Ledger, FakeChannel]]:
    key = Ed25519PrivateKey.generate()
    settings = Settings(audit_dir=tmp_path / "audit", hub_key_path=tmp_path / "hub.key")
    with Ledger.open(settings.audit_dir, key=key) as ledger:
        yield AuditWriter(settings, key=key), ledger, FakeChannel()


class TestCommit:
    def test_acks_last_tag_after_append(
        self, setup: tuple[AuditWriter, Ledger, FakeChannel]
    ) -> None:
        """A good batch is written, then acked once with multiple=True on its last tag."""
        writer, ledger, channel = setup
        writer._commit(channel, ledger, [(1, body("a", "b")), (2, body("b", "c"))])
        assert ledger.size == 3
        assert channel.acks == [(2, True)]
        assert channel.nacks == []

    def test_malformed_message_dead_lettered(
        self, setup: tuple[AuditWriter, Ledger, FakeChannel]
    ) -> None:
        """Bytes that are no audit batch are nacked without requeue; the rest is recorded."""
        writer, ledger, channel = setup
        batch = [(1, body("a")), (2, b"{not json"), (3, b'{"events":[{"x":1}]}'), (4, body("d"))]
        writer._commit(channel, ledger, batch)
        assert channel.nacks == [(2, False), (3, False)]
        assert channel.acks == [(4, True)]
        assert ledger.size == 2
        assert writer.stats.rejected == 2

    def test_unrecordable_event_dead_letters_its_message(
        self, setup: tuple[AuditWriter, Ledger, FakeChannel]
    ) -> None:
        """A message whose event has no canonical form (NaN) is dead-lettered, not the batch."""
        writer, ledger, channel = setup
        writer._commit(channel, ledger, [(1, body("a")), (2, NAN_BODY), (3, body("c"))])
        assert channel.nacks == [(2, False)]
        assert channel.acks == [(3, True)]
        assert ledger.size == 2

    def test_out_of_range_time_and_deep_nesting_are_dead_lettered(
        self, setup: tuple[AuditWriter, Ledger, FakeChannel]
    ) -> None:
        """A time with no UTC equivalent, a body nested past the parser's stack: refused,
        each alone, and the writer goes on (it once crashed, and crashed again on each
        redelivery)."""
        writer, ledger, channel = setup
        early = (
            b'{"events":[{"event":"routed","dedupe_key":"routed:e","message_id":"e",'
            b'"at":"0001-01-01T00:00:00+01:00"}]}'
        )
        deep = b'{"events":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        writer._commit(channel, ledger, [(1, body("a")), (2, early), (3, deep), (4, body("d"))])
        assert sorted(channel.nacks) == [(2, False), (3, False)]
        assert channel.acks == [(4, True)]
        assert ledger.size == 2

    def test_only_malformed(self, setup: tuple[AuditWriter, Ledger, FakeChannel]) -> None:
        """A batch of nothing but garbage acks nothing and writes nothing."""
        writer, ledger, channel = setup
        writer._commit(channel, ledger, [(1, b"\xff")])
        assert (channel.acks, channel.nacks, ledger.size) == ([], [(1, False)], 0)


class Timeline:
    """One ordered record of what reached the disk and what reached the broker."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.steps: list[tuple[str, object]] = []

    def records_on_disk(self) -> int:
        return sum(p.read_bytes().count(b"\n") for p in list_segments(self.directory))


class RecordingChannel(FakeChannel):
    """A FakeChannel that writes its acks into the shared timeline."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__()
        self.timeline = timeline

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple)
        self.timeline.steps.append(("ack", delivery_tag))


@pytest.fixture
def timeline(
    setup: tuple[AuditWriter, Ledger, FakeChannel], monkeypatch: pytest.MonkeyPatch
) -> Timeline:
    """The real fdatasync, instrumented at the store's file seam: each call is recorded
    with how many records the segment files held at that moment, then performed."""
    _writer, ledger, _channel = setup
    found = Timeline(ledger.directory)
    real = store.datasync

    def recording_sync(fd: int) -> None:
        found.steps.append(("sync", found.records_on_disk()))
        real(fd)

    monkeypatch.setattr(store, "datasync", recording_sync)
    return found


class TestAckAfterFsync:
    """An audit message is acked only once the records it caused are on disk and synced."""

    def test_one_sync_per_batch_before_its_ack(
        self, setup: tuple[AuditWriter, Ledger, FakeChannel], timeline: Timeline
    ) -> None:
        """Two batches: each written, synced once, then acked; never an ack before its sync."""
        writer, ledger, _ = setup
        channel = RecordingChannel(timeline)
        writer._commit(channel, ledger, [(1, body("a", "b")), (2, body("c"))])
        writer._commit(channel, ledger, [(3, body("d")), (4, body("e", "f"))])
        # The sync sees every record of its batch already written; the ack comes after it.
        assert timeline.steps == [("sync", 3), ("ack", 2), ("sync", 6), ("ack", 4)]
        assert channel.acks == [(2, True), (4, True)]

    def test_failed_sync_acks_nothing(
        self,
        setup: tuple[AuditWriter, Ledger, FakeChannel],
        timeline: Timeline,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """When fdatasync fails the batch is not acked (the broker redelivers it) and the
        ledger refuses further writes until reopened."""
        writer, ledger, _ = setup
        channel = RecordingChannel(timeline)

        def failing_sync(fd: int) -> None:
            timeline.steps.append(("sync failed", fd))
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(store, "datasync", failing_sync)
        with pytest.raises(LedgerError):
            writer._commit(channel, ledger, [(1, body("a")), (2, body("b"))])
        assert channel.acks == []
        assert [step for step, _ in timeline.steps] == ["sync failed"]
        with pytest.raises(LedgerError):
            ledger.append([make_event(EventKind.ROUTED, "c")])

    def test_batch_of_known_events_is_acked_without_new_writes(
        self, setup: tuple[AuditWriter, Ledger, FakeChannel], timeline: Timeline
    ) -> None:
        """A redelivered batch whose events are all recorded (and were synced then) is acked
        without writing or syncing again."""
        writer, ledger, _ = setup
        channel = RecordingChannel(timeline)
        writer._commit(channel, ledger, [(1, body("a", "b"))])
        writer._commit(channel, ledger, [(2, body("a", "b"))])
        assert timeline.steps == [("sync", 2), ("ack", 1), ("ack", 2)]
        assert ledger.size == 2
