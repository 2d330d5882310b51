"""Offline verification of an audit directory or an export bundle.

What is checked, in log order, stopping at the first failure:

- every line: ``hash`` is the SHA-256 of the line without its ``hash`` member
  (``changed``; ``malformed`` when the line is not a record at all);
- ``seq`` runs 0, 1, 2, … (``missing``, ``reordered``, ``duplicated``);
- ``prev`` is the previous record's ``hash`` (``bad_chain``);
- each checkpoint, when the log reaches its ``tree_size``: its Ed25519 signature
  under the given public key (``bad_signature``), then its root against the
  Merkle root of the first ``tree_size`` records (``bad_root``);
- a checkpoint claiming more records than the log holds (``truncated``).

Records after the last checkpoint are chained but not signed: they are counted
in ``unsigned``. A graceful writer stop always checkpoints, so a closed log has
none; ``strict=True`` makes any a failure (``unsigned``). Removing the last
checkpoint cannot be told from a log that was never checkpointed: it shows up
as a larger unsigned tail.

The hot loop uses only ``bytes`` operations and ``hashlib`` on the exact bytes
on disk (see ``records.py`` for why the line minus its ``hash`` member is the
canonical form); JSON is parsed only to explain a failure.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from liaison.errors import ConfigError
from liaison.ledger import checkpoints as cp
from liaison.ledger.keys import PUBLIC_KEY_FILE, key_id, read_public_key
from liaison.ledger.merkle import EMPTY_ROOT, Accumulator
from liaison.ledger.records import ZERO_HASH, Record, RecordError
from liaison.ledger.segments import LineReader, list_segments

_HASH_MARK = b',"hash":"'
_PREV_MARK = b',"prev":"'
_SEQ_MARK = b',"seq":'


class Kind(StrEnum):
    """Why verification failed."""

    CHANGED = "changed"
    MISSING = "missing"
    REORDERED = "reordered"
    DUPLICATED = "duplicated"
    TRUNCATED = "truncated"
    BAD_SIGNATURE = "bad_signature"
    BAD_ROOT = "bad_root"
    BAD_CHAIN = "bad_chain"
    MALFORMED = "malformed"
    UNSIGNED = "unsigned"


@dataclass(frozen=True, slots=True)
class Failure:
    """The first problem found: where, what kind, and an explanation."""

    kind: Kind
    seq: int | None
    detail: str


@dataclass
class VerifyResult:
    """The outcome of :func:`verify_directory`."""

    records: int = 0
    checkpoints: int = 0
    #: Records after the last verified checkpoint (chained, not yet signed).
    unsigned: int = 0
    key_id: str = ""
    failure: Failure | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return self.failure is None

    @property
    def rate(self) -> float:
        """Records verified per second."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


class _Stop(Exception):  # noqa: N818 - control flow inside this module, never escapes
    def __init__(self, failure: Failure) -> None:
        self.failure = failure


def resolve_public_key(path: Path, public_key: Path | None) -> tuple[Ed25519PublicKey, Path]:
    """The key to verify with: the given file, else ``hub.pub`` inside ``path``."""
    source = public_key or path / PUBLIC_KEY_FILE
    if not source.exists():
        raise ConfigError(f"no public key: {source} does not exist (pass --public-key FILE)")
    return read_public_key(source), source


def verify_directory(
    path: Path,
    public_key: Ed25519PublicKey,
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Verify every record and checkpoint in ``path``; the first failure is reported."""
    started = time.perf_counter()
    result = VerifyResult(key_id=key_id(public_key))
    verifier = _Verifier(path, public_key, result, progress)
    try:
        verifier.run(strict=strict)
    except _Stop as stop:
        result.failure = stop.failure
    result.seconds = time.perf_counter() - started
    return result


def total_bytes(path: Path) -> int:
    """The size of the segment files in ``path`` (for a progress bar)."""
    return sum(p.stat().st_size for p in list_segments(path))


class _Verifier:
    def __init__(
        self,
        path: Path,
        public_key: Ed25519PublicKey,
        result: VerifyResult,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.path = path
        self.public_key = public_key
        self.result = result
        self.progress = progress
        self.acc = Accumulator()
        self.signed = 0  # tree size of the last verified checkpoint
        self.pending: dict[int, list[tuple[int, cp.Checkpoint]]] = {}
        self.prev = ZERO_HASH.encode("ascii")  # hash of the last record read

    def run(self, *, strict: bool) -> None:
        self._load_checkpoints()
        self._check_checkpoints_at(0)
        segments = list_segments(self.path)
        if not segments:
            self.result.notes.append(f"no segment files in {self.path}")
        for index, segment in enumerate(segments):
            self._segment(segment, last=index == len(segments) - 1, segments=segments)
        count = self.acc.size
        self.result.records = count
        beyond = sorted(size for size in self.pending if size > count)
        if beyond:
            number, checkpoint = self.pending[beyond[0]][0]
            raise _Stop(
                Failure(
                    Kind.TRUNCATED,
                    count,
                    f"checkpoint #{number} ({checkpoint.ts}) covers {checkpoint.tree_size} "
                    f"records but the log holds only {count}: records {count}.."
                    f"{checkpoint.tree_size - 1} are gone",
                )
            )
        self.result.unsigned = count - self.signed
        if strict and self.result.unsigned:
            raise _Stop(
                Failure(
                    Kind.UNSIGNED,
                    self.signed,
                    f"records {self.signed}..{count - 1} are not covered by a signed checkpoint",
                )
            )

    def _load_checkpoints(self) -> None:
        path = self.path / cp.CHECKPOINTS_FILE
        for number, item in cp.iter_checkpoints(path):
            if isinstance(item, cp.CheckpointError):
                raise _Stop(Failure(Kind.MALFORMED, None, f"{path.name} line {number}: {item}"))
            self.pending.setdefault(item.tree_size, []).append((number, item))
        if cp.torn_tail(path):
            self.result.notes.append(f"{path.name} ends with an incomplete line (ignored)")
        if not self.pending:
            self.result.notes.append("no checkpoints: nothing in this log is signed")

    def _check_checkpoints_at(self, size: int) -> None:
        root = self.acc.root() if size else EMPTY_ROOT
        for number, checkpoint in self.pending.pop(size, []):
            if checkpoint.key_id != self.result.key_id or not checkpoint.signature_valid(
                self.public_key
            ):
                raise _Stop(
                    Failure(
                        Kind.BAD_SIGNATURE,
                        max(size - 1, 0),
                        f"checkpoint #{number} (tree size {size}, {checkpoint.ts}, key id "
                        f"{checkpoint.key_id}) is not signed by key {self.result.key_id}",
                    )
                )
            if checkpoint.root != root.hex():
                raise _Stop(
                    Failure(
                        Kind.BAD_ROOT,
                        self.signed,
                        f"checkpoint #{number} signed root {checkpoint.root[:16]}… for "
                        f"{size} records, but records {self.signed}..{size - 1} give "
                        f"{root.hex()[:16]}…: one of them was altered",
                    )
                )
            self.result.checkpoints += 1
            self.signed = size

    def _segment(self, segment: Path, *, last: bool, segments: list[Path]) -> None:
        sha256 = hashlib.sha256
        leaf_prefix = sha256(b"\x00")
        acc_append = self.acc.append
        pending = self.pending
        acc = self.acc
        prev = self.prev
        reader = LineReader(segment, on_chunk=self.progress)
        for lineno, line in enumerate(reader, start=1):
            seq = acc.size
            i = line.rfind(_HASH_MARK)
            if i < 0 or line[i + 73 : i + 74] != b'"':
                raise _Stop(_explain(seq, line, f"{segment.name} line {lineno}", segments))
            digest = line[i + 9 : i + 73]
            body = line[:i] + line[i + 74 :]
            if sha256(body).hexdigest().encode("ascii") != digest:
                raise _Stop(_explain(seq, line, f"{segment.name} line {lineno}", segments))
            j = body.rfind(_SEQ_MARK) + 7
            if body[j : body.find(b",", j)] != b"%d" % seq:
                where = f"{segment.name} line {lineno}"
                raise _Stop(_explain(seq, line, where, segments, hash_ok=True))
            p = body.rfind(_PREV_MARK) + 9
            if body[p : p + 64] != prev:
                raise _Stop(
                    Failure(
                        Kind.BAD_CHAIN,
                        seq,
                        f"prev of record {seq} ({segment.name} line {lineno}) is not the "
                        f"hash of record {seq - 1}",
                    )
                )
            leaf = leaf_prefix.copy()
            leaf.update(body)
            acc_append(leaf.digest())
            prev = digest
            if seq + 1 in pending:
                self._check_checkpoints_at(seq + 1)
        self.prev = prev
        if reader.torn:
            seq = acc.size
            if not last:
                raise _Stop(
                    Failure(Kind.MALFORMED, seq, f"{segment.name} ends with an incomplete line")
                )
            self.result.notes.append(
                f"ignored an incomplete final line of {len(reader.torn)} bytes in "
                f"{segment.name} (a crash or a write in progress)"
            )


def _explain(
    seq: int, line: bytes, where: str, segments: list[Path], *, hash_ok: bool = False
) -> Failure:
    """Why ``line``, where record ``seq`` was expected, failed the fast checks."""
    try:
        record = Record.from_json(json.loads(line))
    except (ValueError, RecordError) as exc:
        return Failure(Kind.MALFORMED, seq, f"{where} is not a ledger record: {exc}")
    found = record.seq
    if not hash_ok:
        return Failure(Kind.CHANGED, seq, f"record {seq} ({where}) does not match its hash")
    if found == seq:
        return Failure(Kind.MALFORMED, seq, f"{where} is not in canonical form")
    if found < seq:
        return Failure(
            Kind.DUPLICATED, seq, f"{where} repeats record {found} where {seq} was expected"
        )
    if _seq_later(segments, seq):
        return Failure(
            Kind.REORDERED,
            seq,
            f"record {seq} is out of place: {where} holds record {found}, "
            f"and record {seq} comes later",
        )
    gap = f"{seq}" if found == seq + 1 else f"{seq}..{found - 1}"
    return Failure(Kind.MISSING, seq, f"record(s) {gap} are missing before {where}")


def _seq_later(segments: list[Path], seq: int) -> bool:
    """Whether some line of the log holds record ``seq`` (a slow search, for diagnosis)."""
    marker = b',"seq":%d,"ts":"' % seq
    return any(marker in path.read_bytes() for path in segments)
