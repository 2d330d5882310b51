"""Idempotency stores: one contract, run against every store; then what each adds."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers import IdempotencyStore, InMemoryStore, SqliteStore


class StoreContract:
    """What the consumer relies on, whichever store it is given (subclasses give ``store``)."""

    def test_is_an_idempotency_store(self, store: IdempotencyStore) -> None:
        """It satisfies the protocol the consumer takes."""
        assert isinstance(store, IdempotencyStore)

    def test_unknown_key_is_not_seen(self, store: IdempotencyStore) -> None:
        """A fresh store has seen nothing."""
        assert not store.seen("gs/0b6f2c1e-3c1a-4a51-9d1e-5f3f0c2a7b10")

    def test_recorded_key_is_seen(self, store: IdempotencyStore) -> None:
        """After record, seen answers True for that key and no other."""
        store.record("gs/a")
        assert store.seen("gs/a")
        assert not store.seen("gs-legal/a")

    def test_record_is_idempotent(self, store: IdempotencyStore) -> None:
        """Recording twice (a redelivery racing its own ack) is harmless."""
        store.record("gs/a")
        store.record("gs/a")
        assert store.seen("gs/a")

    def test_concurrent_records(self, store: IdempotencyStore) -> None:
        """Threads recording at once lose nothing (a consumer and a requester share one)."""

        def work(prefix: str) -> None:
            for n in range(50):
                store.record(f"{prefix}/{n}")

        threads = [threading.Thread(target=work, args=(f"p{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(store.seen(f"p{i}/{n}") for i in range(4) for n in range(50))


class TestInMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> IdempotencyStore:
        return InMemoryStore()

    def test_is_bounded(self) -> None:
        """Beyond max_entries the oldest keys are forgotten: memory stays bounded."""
        store = InMemoryStore(max_entries=3)
        for key in "abcd":
            store.record(key)
        assert len(store) == 3
        assert not store.seen("a")
        assert store.seen("d")

    def test_needs_room(self) -> None:
        """A store that can hold nothing is a configuration error."""
        with pytest.raises(ValueError, match="at least 1"):
            InMemoryStore(max_entries=0)


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[IdempotencyStore]:
        with SqliteStore(tmp_path / "seen.db") as store:
            yield store

    def test_survives_a_restart(self, tmp_path: Path) -> None:
        """A key recorded before a restart is still seen after it."""
        path = tmp_path / "seen.db"
        with SqliteStore(path) as first:
            first.record("gs/a")
        with SqliteStore(path) as second:
            assert second.seen("gs/a")
            assert len(second) == 1

    def test_prune_forgets_old_keys_only(self, tmp_path: Path) -> None:
        """prune(age) bounds the file without touching recent keys."""
        with SqliteStore(tmp_path / "seen.db") as store:
            store.record("gs/a")
            assert store.prune(older_than_s=3600) == 0
            assert store.prune(older_than_s=-1) == 1
            assert not store.seen("gs/a")

    def test_a_failed_record_leaves_nothing_half_done(self, tmp_path: Path) -> None:
        """The insert is one transaction: after a failure the store still works."""
        with SqliteStore(tmp_path / "seen.db") as store:
            with pytest.raises(sqlite3.ProgrammingError):
                store.record(object())  # type: ignore[arg-type]
            store.record("gs/b")
            assert store.seen("gs/b")
