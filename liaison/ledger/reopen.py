"""Reading a ledger's records back when the writer opens it, checking them as it goes.

Kept apart from ``store.py`` (which appends): the same checks whether the writer
reads the whole ledger or resumes from the last checkpoint (``index.py``) —
each record matches its hash, follows its predecessor in sequence and chain,
and the tree's root equals the last checkpoint's when it reaches its size.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from liaison.ledger.index import ResumePoint
from liaison.ledger.merkle import Accumulator
from liaison.ledger.records import split_line
from liaison.ledger.segments import LineReader, segment_number

#: Keys handed to the index at once while reading (a rebuild holds no more in memory).
KEY_SLICE = 100_000


@dataclass
class Recovery:
    """What opening the ledger found and repaired."""

    records: int = 0
    segments: int = 0
    checkpoints: int = 0
    #: Bytes of a torn final record line that were cut off (0: none).
    torn_record_bytes: int = 0
    #: Bytes of a torn final checkpoint line that were cut off.
    torn_checkpoint_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    #: Records read and checked at opening (all of them unless it resumed).
    records_read: int = 0
    #: The checkpoint's tree size it resumed from (``None``: it read everything).
    resumed_from: int | None = None


class CorruptLedger(Exception):  # noqa: N818 - turned into LedgerError by the store
    """A record fails its checks at ``seq``."""

    def __init__(self, seq: int, what: str) -> None:
        super().__init__(what)
        self.seq, self.what = seq, what


def _fields(body: bytes) -> tuple[object, bytes, str]:
    """``seq``, ``prev`` (as bytes) and ``dedupe_key`` of a record's canonical bytes."""
    try:
        data = json.loads(body)
        return data["seq"], str(data["prev"]).encode("ascii"), str(data["dedupe_key"])
    except (ValueError, TypeError, KeyError):
        return None, b"", ""


@dataclass
class Reading:
    """Records read from one position on: the tree, the last hash, the keys to index."""

    acc: Accumulator
    prev: bytes
    #: The root (hex) the tree must have at each size listed (the last checkpoint's).
    wanted: dict[int, str]
    #: Records from this sequence number on have their keys handed to ``add_keys``.
    index_from: int
    add_keys: Callable[[list[str], int], None]
    recovery: Recovery
    #: Where the records reach the last checkpoint's size, when this reading passed it.
    at_checkpoint: ResumePoint | None = None

    def segment(self, path: Path, start: int) -> bytes:
        """Read ``path`` from byte ``start``; the torn tail, if any (not consumed)."""
        sha256, acc, keys = hashlib.sha256, self.acc, []
        reader = LineReader(path, start=start)
        offset = start
        for line in reader:
            offset += len(line) + 1
            seq = acc.size
            parts = split_line(line)
            if parts is None or sha256(parts[0]).hexdigest().encode("ascii") != parts[1]:
                raise CorruptLedger(seq, "a record does not match its hash")
            seq_found, prev_found, dedupe_key = _fields(parts[0])
            if seq_found != seq or prev_found != self.prev:
                raise CorruptLedger(seq, "records out of sequence or chain broken")
            acc.append(sha256(b"\x00" + parts[0]).digest())
            self.recovery.records_read += 1
            self.prev = parts[1]
            if seq >= self.index_from:
                keys.append(dedupe_key)
                if len(keys) >= KEY_SLICE:
                    self.add_keys(keys, acc.size)
                    keys = []
            if acc.size in self.wanted:
                if acc.root().hex() != self.wanted[acc.size]:
                    raise CorruptLedger(seq, "the Merkle root differs from the last checkpoint")
                point = (acc.size, segment_number(path), offset, self.prev.decode(), acc.edge)
                self.at_checkpoint = ResumePoint(*point)
        self.add_keys(keys, acc.size)
        return reader.torn
