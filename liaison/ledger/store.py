"""The ledger on disk: JSONL segment files, the checkpoints file, and the writer's lock.

Layout of an audit directory::

    segment-000001.jsonl    records 0.., one canonical line each (see records.py)
    segment-000002.jsonl    the next records, once the previous file passed segment_bytes
    checkpoints.jsonl       signed Merkle roots (see checkpoints.py)
    hub.pub                 the hub's public key (PEM), for auditors
    writer.lock             held (flock) by the one process that appends
    dedupe.sqlite           the writer's index: every dedupe key, where to resume (index.py)

Durability: a batch of records is written with one ``write`` and made durable
with one ``fdatasync``; creating a file (first segment, rotation, checkpoints)
also syncs the directory. Callers acknowledge work only after :meth:`Ledger.append`
(or :meth:`Ledger.flush`) returned. A crash can leave a torn final line: opening
the ledger truncates it (it was never acknowledged) and says so in ``recovery``.

Opening reads the records after the last checkpoint only, when the index's
resume point agrees with the ledger, and the whole ledger otherwise (see
``index.py`` for what that checks and what it leaves to ``liaison audit verify``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.core.events import AuditEvent
from liaison.ledger import checkpoints as cp
from liaison.ledger.index import KeyIndex, ResumePoint, open_index
from liaison.ledger.keys import PUBLIC_KEY_FILE, key_id, public_pem, write_public_key
from liaison.ledger.merkle import Accumulator
from liaison.ledger.records import ZERO_HASH, Record, build_many
from liaison.ledger.reopen import CorruptLedger, Reading, Recovery
from liaison.ledger.segments import (
    datasync,
    fsync_dir,
    list_segments,
    segment_name,
    segment_number,
    write_all,
)
from schemas.errors import LiaisonError

LOCK_FILE = "writer.lock"


class LedgerError(LiaisonError):
    """The ledger cannot be opened or written (I/O error, or a log that fails its checks)."""


class LedgerLockedError(LedgerError):
    """Another process holds the writer lock of this audit directory."""


class Ledger:
    """The append-only ledger of one audit directory; one writer at a time (flock)."""

    def __init__(
        self,
        directory: Path,
        *,
        key: Ed25519PrivateKey,
        segment_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        """Use :meth:`open`; this only sets fields."""
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.recovery = Recovery()
        self._key = key
        self._acc = Accumulator()
        self._index: KeyIndex | None = None
        #: Keys of records appended but not yet durable (``sync=False``): they reach the
        #: index only once fsynced, so the index never holds a key the ledger could lose.
        self._pending: set[str] = set()
        self._last_hash = ZERO_HASH
        self._last_checkpoint: cp.Checkpoint | None = None
        self._segment_no = 0
        self._segment_size = 0
        self._fd = -1
        self._lock_fd = -1
        self._dirty = False
        self._broken: str | None = None

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        key: Ed25519PrivateKey,
        segment_bytes: int = 64 * 1024 * 1024,
    ) -> Ledger:
        """Lock ``directory`` (:class:`LedgerLockedError` if taken) and recover its state."""
        directory.mkdir(parents=True, exist_ok=True)
        ledger = cls(directory, key=key, segment_bytes=segment_bytes)
        ledger._lock()
        try:
            ledger._index, note = open_index(directory)
            if note:
                ledger.recovery.notes.append(note)
            ledger._recover()
            ledger._publish_key()
        except BaseException:
            ledger.close()
            raise
        return ledger

    # -- state ------------------------------------------------------------------

    @property
    def size(self) -> int:
        """How many records the ledger holds."""
        return self._acc.size

    @property
    def last_hash(self) -> str:
        """The hash of the last record (64 zeros when empty)."""
        return self._last_hash

    @property
    def last_checkpoint(self) -> cp.Checkpoint | None:
        """The most recent checkpoint, if any."""
        return self._last_checkpoint

    @property
    def unsigned(self) -> int:
        """Records appended since the last checkpoint."""
        signed = self._last_checkpoint.tree_size if self._last_checkpoint else 0
        return self.size - signed

    def root(self) -> bytes:
        """The Merkle root of every record so far."""
        return self._acc.root()

    def seen(self, dedupe_key: str) -> bool:
        """Whether an event with ``dedupe_key`` is already recorded."""
        return bool(self._known({dedupe_key}))

    def _known(self, keys: set[str]) -> set[str]:
        assert self._index is not None
        try:
            return (keys & self._pending) | self._index.known(keys - self._pending)
        except sqlite3.Error as exc:
            self._broken = f"index read failed: {exc}"
            raise LedgerError(f"cannot read the dedupe index in {self.directory}: {exc}") from exc

    # -- writing ----------------------------------------------------------------

    def append(self, events: Iterable[AuditEvent], *, sync: bool = True) -> list[Record]:
        """Record the events not recorded before; durable on return unless ``sync=False``.

        Raises :class:`~liaison.ledger.records.RecordError` (naming the event's
        dedupe key) before writing anything when an event cannot be serialised,
        and :class:`LedgerError` when the disk fails.
        """
        self._check_usable()
        events = list(events)
        known = self._known({event.dedupe_key for event in events})
        fresh: list[AuditEvent] = []
        batch_keys: set[str] = set()
        for event in events:
            key = event.dedupe_key
            if key not in known and key not in batch_keys:
                batch_keys.add(key)
                fresh.append(event)
        if not fresh:
            return []
        built = build_many(self.size, self._last_hash, fresh)
        try:
            self._write([line for _, line, _ in built])
            if sync:
                datasync(self._fd)
        except OSError as exc:
            self._broken = f"write failed: {exc}"
            raise LedgerError(f"cannot write to {self.directory}: {exc}") from exc
        self._dirty = not sync
        for _, _, leaf in built:
            self._acc.append(leaf)
        self._pending.update(batch_keys)
        self._last_hash = built[-1][0].hash
        if sync:
            self._index_durable()
        return [record for record, _, _ in built]

    def _index_durable(self) -> None:
        """Hand the keys of the records now durable to the index."""
        if self._pending and self._index is not None:
            try:
                self._index.add(self._pending, keys_size=self.size)
            except sqlite3.Error as exc:
                self._broken = f"index write failed: {exc}"
                raise LedgerError(
                    f"cannot write the dedupe index in {self.directory}: {exc}"
                ) from exc
            self._pending = set()

    def flush(self) -> None:
        """Make every appended record durable (after ``append(..., sync=False)``)."""
        self._check_usable()
        if self._dirty and self._fd >= 0:
            try:
                datasync(self._fd)
            except OSError as exc:
                self._broken = f"fsync failed: {exc}"
                raise LedgerError(f"cannot sync {self.directory}: {exc}") from exc
        self._dirty = False
        self._index_durable()

    def checkpoint(self) -> cp.Checkpoint | None:
        """Sign the current root, unless nothing was appended since the last checkpoint."""
        if self.size == 0 or self.unsigned == 0:
            return None
        self.flush()
        checkpoint = cp.sign(self._key, tree_size=self.size, root=self._acc.root())
        path = self.directory / cp.CHECKPOINTS_FILE
        created = not path.exists()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                write_all(fd, checkpoint.line())
                datasync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.directory)
        except OSError as exc:
            raise LedgerError(f"cannot write checkpoint in {self.directory}: {exc}") from exc
        self._last_checkpoint = checkpoint
        if self._index is not None:
            point = ResumePoint(
                self.size, self._segment_no, self._segment_size, self._last_hash, self._acc.edge
            )
            with contextlib.suppress(sqlite3.Error):  # without it, the next start reads it all
                self._index.save_resume_point(point)
        return checkpoint

    def close(self) -> None:
        """Sync and close the files and release the lock (no checkpoint: call it first)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                if self._dirty and self._broken is None:
                    datasync(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            if self._index is not None:
                self._index.close()
                self._index = None
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = -1
        self._broken = self._broken or "closed"

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise LedgerError(f"ledger in {self.directory} is unusable ({self._broken}); reopen it")

    def _write(self, lines: list[bytes]) -> None:
        pending: list[bytes] = []
        for line in lines:
            if self._segment_size and self._segment_size + len(line) > self.segment_bytes:
                write_all(self._fd, b"".join(pending))
                pending.clear()
                self._rotate()
            pending.append(line)
            self._segment_size += len(line)
        write_all(self._fd, b"".join(pending))

    def _rotate(self) -> None:
        if self._fd >= 0:
            datasync(self._fd)
            os.close(self._fd)
            self._fd = -1
        self._open_segment(self._segment_no + 1, create=True)

    def _open_segment(self, number: int, *, create: bool) -> None:
        path = self.directory / segment_name(number)
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
        self._fd = os.open(path, flags, 0o644)
        if create:
            fsync_dir(self.directory)
        self._segment_no = number
        self._segment_size = os.fstat(self._fd).st_size

    # -- opening ----------------------------------------------------------------

    def _lock(self) -> None:
        path = self.directory / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise LedgerLockedError(
                f"{self.directory} is locked by another writer (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._lock_fd = fd

    def _recover(self) -> None:
        segments = list_segments(self.directory)
        checkpoints = self._read_checkpoints()
        index, rec = self._index, self.recovery
        assert index is not None
        point = index.usable_resume_point(
            self.directory, {c.tree_size: c.root for c in checkpoints}
        )
        first, start, prev = 0, 0, ZERO_HASH.encode("ascii")
        if point is None:
            index.reset()
        else:
            self._acc = Accumulator.restore(point.size, point.edge)
            prev = point.last_hash.encode("ascii")
            first = next(i for i, p in enumerate(segments) if segment_number(p) == point.segment)
            start = point.offset
            rec.resumed_from = point.size
        reading = Reading(
            self._acc,
            prev,
            {c.tree_size: c.root for c in checkpoints[-1:]},
            index.keys_size,
            lambda keys, size: index.add(keys, keys_size=size),
            rec,
        )
        for number, path in enumerate(segments[first:], start=first):
            try:
                torn = reading.segment(path, start if number == first else 0)
            except CorruptLedger as exc:
                raise self._corrupt(exc.seq, exc.what) from None
            if torn:
                if number != len(segments) - 1:
                    raise self._corrupt(self.size, f"{path.name} ends with an incomplete line")
                rec.torn_record_bytes = len(torn)
                self._truncate(path, path.stat().st_size - len(torn))
                rec.notes.append(
                    f"cut a torn final line of {len(torn)} bytes from {path.name} "
                    f"(a crash while writing; that record was never acknowledged)"
                )
        self._last_hash = reading.prev.decode("ascii")
        if reading.at_checkpoint is not None:  # the next start can resume there
            index.save_resume_point(reading.at_checkpoint)
        rec.records, rec.segments, rec.checkpoints = self.size, len(segments), len(checkpoints)
        if index.keys_size > self.size:
            # The index knows records this ledger does not hold (a ledger restored from
            # an older copy): it cannot be trusted, so read everything again.
            index.reset()
            self._acc, self.recovery = Accumulator(), Recovery()
            self._recover()
            return
        if checkpoints and checkpoints[-1].tree_size > self.size:
            raise self._corrupt(
                self.size,
                f"the last checkpoint covers {checkpoints[-1].tree_size} records "
                f"but only {self.size} exist (truncated)",
            )
        self._last_checkpoint = checkpoints[-1] if checkpoints else None
        if segments:
            self._open_segment(segment_number(segments[-1]), create=False)
        else:
            self._open_segment(1, create=True)

    def _read_checkpoints(self) -> list[cp.Checkpoint]:
        path = self.directory / cp.CHECKPOINTS_FILE
        found: list[cp.Checkpoint] = []
        for number, item in cp.iter_checkpoints(path):
            if isinstance(item, cp.CheckpointError):
                raise LedgerError(f"{path} line {number}: {item}; run `liaison audit verify`")
            found.append(item)
        torn = cp.torn_tail(path)
        if torn:
            self.recovery.torn_checkpoint_bytes = torn
            self._truncate(path, path.stat().st_size - torn)
            self.recovery.notes.append(f"cut a torn final line of {torn} bytes from {path.name}")
        found.sort(key=lambda c: c.tree_size)
        return found

    def _truncate(self, path: Path, size: int) -> None:
        with path.open("r+b") as handle:
            handle.truncate(size)
            handle.flush()
            os.fsync(handle.fileno())

    def _corrupt(self, seq: int, what: str) -> LedgerError:
        return LedgerError(
            f"audit log in {self.directory} fails its checks at seq {seq}: {what}; "
            f"refusing to append (run `liaison audit verify {self.directory}`)"
        )

    def _publish_key(self) -> None:
        path = self.directory / PUBLIC_KEY_FILE
        public = self._key.public_key()
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = b""
        if not current:
            write_public_key(public, path)
        elif current != public_pem(public):
            # Checkpoints already signed must stay verifiable with the published key.
            raise LedgerError(
                f"{path} holds another public key than the hub key (key id {key_id(public)}): "
                "this ledger was signed with a different key; restore that key or use "
                "a new audit directory"
            )
