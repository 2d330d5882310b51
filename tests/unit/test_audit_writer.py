"""The writer's batch step without a broker: what is acked, what is dead-lettered, what is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.audit.events import EventKind, encode_batch, make_event
from liaison.audit.store import Ledger
from liaison.audit.writer import AuditWriter
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

    def test_only_malformed(self, setup: tuple[AuditWriter, Ledger, FakeChannel]) -> None:
        """A batch of nothing but garbage acks nothing and writes nothing."""
        writer, ledger, channel = setup
        writer._commit(channel, ledger, [(1, b"\xff")])
        assert (channel.acks, channel.nacks, ledger.size) == ([], [(1, False)], 0)
