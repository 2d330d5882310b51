"""The writer's on-disk index: every dedupe key recorded, and where to resume reading.

Why on disk: kept in memory, the keys grew with the ledger's age (about 150 bytes
each), and rebuilding them meant re-reading the whole ledger at every start. In
an SQLite file (``dedupe.sqlite`` in the audit directory) the writer's memory is
SQLite's page cache whatever the ledger's size, and a start reads only what was
written after the last checkpoint.

No key is ever forgotten, so "one record per event" holds for any redelivery,
however late: the horizon is the whole ledger, on disk; only the lookups'
working set is in memory.

What it holds, and why it can be trusted:

- ``keys``: the dedupe key of every record up to ``keys_size``. Keys are
  committed only after the records carrying them are durable (fsynced), so the
  index never claims an event the ledger could lose in a crash. It may lag
  behind the ledger (a crash between the two); start-up adds what is missing.
- the resume point, saved with each checkpoint: the tree size, the byte
  position after that record (segment and offset), its hash and the Merkle
  tree's right edge. Start-up uses it only when it agrees with the ledger: the
  edge gives the *signed* checkpoint's root, and the line ending at the offset is
  the record of that sequence number with that hash. Otherwise (no index, an
  index of another ledger, a lost commit) the ledger is read whole and the index
  rebuilt, as before.

Reading from the resume point does not re-hash the records before it: a
same-length edit of an old record is found by ``liaison audit verify`` (the
signed roots), not by the writer's start-up. Deleted or inserted lines move the
offset and are still found at start-up.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from liaison.ledger.merkle import Accumulator
from liaison.ledger.records import split_line
from liaison.ledger.segments import segment_name

INDEX_FILE = "dedupe.sqlite"
_CHUNK = 500  # keys per lookup statement (well under SQLite's parameter limit)


@dataclass(frozen=True)
class ResumePoint:
    """The ledger's state right after record ``size - 1``, as of a checkpoint."""

    size: int
    segment: int
    offset: int
    last_hash: str
    edge: tuple[bytes, ...]


class KeyIndex:
    """Dedupe keys and the resume point of one audit directory (one writer: the lock)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / INDEX_FILE
        self._db = sqlite3.connect(self.path, isolation_level=None)
        # WAL: a crash of the process never loses a commit; a crash of the machine may
        # lose the last ones, which start-up finds (keys_size) and makes good.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @property
    def keys_size(self) -> int:
        """How many of the ledger's first records have their keys in the index."""
        row = self._db.execute("SELECT value FROM meta WHERE name = 'keys_size'").fetchone()
        return int(row[0]) if row else 0

    def known(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are recorded."""
        wanted = sorted(keys)  # in key order: see add
        found: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key FROM keys WHERE key IN ({marks})", chunk)  # noqa: S608 - only placeholders
            found.update(row[0] for row in rows)
        return found

    def add(self, keys: Iterable[str], *, keys_size: int) -> None:
        """Record ``keys`` (of durable records) and that the first ``keys_size`` are in."""
        # In key order: the B-tree's pages are then visited one after another instead
        # of at random (about a sixth less time for a batch's lookups and inserts).
        ordered = sorted(keys)
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO keys VALUES (?)", ((k,) for k in ordered))
            self._set("keys_size", str(keys_size))

    def reset(self) -> None:
        """Forget everything (before a rebuild from the ledger)."""
        with self._transaction():
            self._db.execute("DELETE FROM keys")
            self._db.execute("DELETE FROM meta")

    def resume_point(self) -> ResumePoint | None:
        """The saved resume point, or ``None`` when there is none or it is unreadable."""
        row = self._db.execute("SELECT value FROM meta WHERE name = 'resume'").fetchone()
        if row is None:
            return None
        try:
            data = json.loads(row[0])
            return ResumePoint(
                size=int(data["size"]),
                segment=int(data["segment"]),
                offset=int(data["offset"]),
                last_hash=str(data["last_hash"]),
                edge=tuple(bytes.fromhex(h) for h in data["edge"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def usable_resume_point(self, directory: Path, roots: dict[int, str]) -> ResumePoint | None:
        """The resume point if the index holds every key before it and it agrees with the ledger.

        ``roots`` maps the tree sizes of the ledger's checkpoints to their roots (hex).
        """
        point = self.resume_point()
        if point is None or self.keys_size < point.size:
            return None
        return point if agrees(point, directory, roots) else None

    def save_resume_point(self, point: ResumePoint) -> None:
        """Remember ``point`` (called once its checkpoint is durable)."""
        data = {
            "size": point.size,
            "segment": point.segment,
            "offset": point.offset,
            "last_hash": point.last_hash,
            "edge": [h.hex() for h in point.edge],
        }
        with self._transaction():
            self._set("resume", json.dumps(data))

    def _set(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def open_index(directory: Path) -> tuple[KeyIndex, str]:
    """The index of ``directory``, and a note when an unreadable one had to be set aside.

    The index can always be rebuilt from the ledger, so a damaged file is moved to
    ``dedupe.sqlite.unreadable`` (kept for a look) and a new one started.
    """
    try:
        index = KeyIndex(directory)
        _ = index.keys_size  # reads the file: a damaged one fails here
    except sqlite3.DatabaseError as exc:
        aside = f"{INDEX_FILE}.unreadable"
        for suffix in ("", "-wal", "-shm"):
            path = directory / f"{INDEX_FILE}{suffix}"
            if path.exists():
                path.replace(directory / f"{aside}{suffix}")
        note = f"{INDEX_FILE} was unreadable ({exc}): moved to {aside}, rebuilt from the log"
        return KeyIndex(directory), note
    return index, ""


#: The longest line looked at behind a resume point (a record holds at most one
#: envelope of ``max_message_bytes``, 256 KiB by default, JSON-escaped at worst 6x).
_MAX_LINE = 8 * 1024 * 1024


def agrees(point: ResumePoint, directory: Path, roots: dict[int, str]) -> bool:
    """Whether ``point`` matches the ledger: its checkpoint's signed root, its last record.

    ``roots`` maps the tree sizes of the ledger's checkpoints to their roots (hex).
    """
    try:
        root = Accumulator.restore(point.size, point.edge).root().hex()
    except ValueError:
        return False
    return roots.get(point.size) == root and _last_record_is(point, directory)


def _last_record_is(point: ResumePoint, directory: Path) -> bool:
    """Whether the line ending at the point's offset is record ``size - 1`` with its hash."""
    line = _line_before(directory / segment_name(point.segment), point.offset)
    parts = split_line(line) if line is not None else None
    if parts is None or parts[1] != point.last_hash.encode("ascii"):
        return False
    if hashlib.sha256(parts[0]).hexdigest() != point.last_hash:
        return False
    try:
        return bool(json.loads(parts[0])["seq"] == point.size - 1)
    except (ValueError, KeyError, TypeError):
        return False


def _line_before(path: Path, offset: int) -> bytes | None:
    """The complete line that ends (with its newline) at byte ``offset`` of ``path``."""
    window = 64 * 1024  # most records; a longer one (a large envelope) widens the look
    try:
        with path.open("rb") as handle:
            if offset <= 0 or handle.seek(0, 2) < offset:
                return None
            while True:
                start = max(0, offset - window)
                handle.seek(start)
                tail = handle.read(offset - start)
                cut = tail.rfind(b"\n", 0, len(tail) - 1)
                if cut >= 0 or start == 0 or window >= _MAX_LINE:
                    break
                window *= 8
    except OSError:
        return None
    if not tail.endswith(b"\n") or (cut < 0 and start > 0):
        return None
    return tail[cut + 1 : -1]
