"""Idempotency stores: which messages a consumer has already processed, by key.

Delivery is at least once, so a consumer sees some messages twice (a crash
between the handler and the ack, an operator retry, a replay). The consumer asks
``seen(key)`` before calling a handler and calls ``record(key)`` only after the
handler returned, then acks: a crash in between replays the handler once more
rather than losing the message, and the store is the place that makes the
effect happen once. The key is ``<sender>/<message id>``, as in the router's
duplicate window, so one sender cannot shadow another's message by reusing its id.

- :class:`InMemoryStore`: the default; bounded, forgets on restart.
- :class:`SqliteStore`: a file; survives restarts; each record is one transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable


@runtime_checkable
class IdempotencyStore(Protocol):
    """What a consumer needs to process each message once."""

    def seen(self, key: str) -> bool:
        """Whether ``key`` was recorded as processed."""
        ...

    def record(self, key: str) -> None:
        """Remember ``key`` as processed (after its handler succeeded); idempotent."""
        ...


class InMemoryStore:
    """The last ``max_entries`` processed keys, in memory: duplicates within a run, bounded."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, key: str) -> bool:
        """Whether ``key`` is among the remembered keys."""
        with self._lock:
            return key in self._keys

    def record(self, key: str) -> None:
        """Remember ``key``, forgetting the oldest key beyond ``max_entries``."""
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self._max:
                self._keys.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)


class SqliteStore:
    """Processed keys in a SQLite file, kept across restarts.

    Safe to share between threads of one process (one connection behind a lock);
    WAL journal, so a reader never waits for the writer. ``prune`` bounds the
    file: keys older than any plausible redelivery can go.
    """

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        # check_same_thread=False: the lock serialises use across threads.
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a recorded key survives power loss
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS processed ("
                " key TEXT PRIMARY KEY,"
                " recorded_at REAL NOT NULL)"
            )

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def seen(self, key: str) -> bool:
        """Whether ``key`` is in the file."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM processed WHERE key = ?", (key,)).fetchone()
        return row is not None

    def record(self, key: str) -> None:
        """Insert ``key`` in its own transaction, committed before this returns."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR IGNORE INTO processed (key, recorded_at) VALUES (?, ?)",
                    (key, time.time()),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def prune(self, older_than_s: float) -> int:
        """Forget keys recorded more than ``older_than_s`` seconds ago; how many went."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM processed WHERE recorded_at < ?", (time.time() - older_than_s,)
            )
        return cursor.rowcount

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM processed").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["IdempotencyStore", "InMemoryStore", "SqliteStore"]
