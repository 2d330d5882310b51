"""The ledger on disk: appends, recovery, and every kind of tampering that verify must name."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.core.events import AuditEvent, EventKind, make_event
from liaison.ledger import checkpoints as cp
from liaison.ledger.records import RecordError
from liaison.ledger.segments import list_segments
from liaison.ledger.store import Ledger, LedgerError, LedgerLockedError
from liaison.ledger.verify import Kind, VerifyResult, verify_directory

SEGMENT = "segment-000001.jsonl"
KINDS = (EventKind.RECEIVED, EventKind.ROUTED, EventKind.DELIVERED)


def make_events(n: int, *, start: int = 0) -> list[AuditEvent]:
    """``n`` events about distinct messages, some carrying envelopes with non-ASCII text."""
    base = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    out = []
    for i in range(start, start + n):
        message_id = f"00000000-0000-4000-8000-{i:012d}"
        envelope = {
            "message_id": message_id,
            "type": "correspondence.letter",
            "sender": "MAEE",
            "recipients": ["CHAMBRE"],
            "payload": {"subject": f"Lettre n°{i} — « réponse »", "hash": "x"},
        }
        out.append(
            make_event(
                KINDS[i % 3],
                message_id,
                at=base + timedelta(seconds=i),
                type="correspondence.letter",
                sender="MAEE",
                recipients=("CHAMBRE",),
                envelope=envelope if i % 3 == 0 else None,
                detail="déjà vu" if i % 5 == 0 else None,
            )
        )
    return out


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def audit_dir(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    """A ledger of 30 records with checkpoints at 10, 20 and 30."""
    directory = tmp_path / "audit"
    with Ledger.open(directory, key=key) as ledger:
        for batch in range(3):
            ledger.append(make_events(10, start=10 * batch))
            ledger.checkpoint()
    return directory


def check(directory: Path, key: Ed25519PrivateKey, *, strict: bool = False) -> VerifyResult:
    return verify_directory(directory, key.public_key(), strict=strict)


def lines(directory: Path) -> list[bytes]:
    return (directory / SEGMENT).read_bytes().splitlines(keepends=True)


def write_lines(directory: Path, new: list[bytes]) -> None:
    (directory / SEGMENT).write_bytes(b"".join(new))


def rehash(line: bytes, **changes: object) -> bytes:
    """What a forger without the key can do: edit a record and recompute its hash."""
    record = json.loads(line)
    record.pop("hash")
    record.update(changes)
    body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    record["hash"] = hashlib.sha256(body.encode()).hexdigest()
    return (
        json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n"
    )


def assert_failed(result: VerifyResult, kind: Kind, seq: int | None) -> None:
    assert result.failure is not None, "verification passed but should have failed"
    assert (result.failure.kind, result.failure.seq) == (kind, seq), result.failure


class TestAppend:
    def test_verify_ok(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """An untouched ledger verifies, every record and checkpoint counted."""
        result = check(audit_dir, key)
        assert result.ok, result.failure
        assert (result.records, result.checkpoints, result.unsigned) == (30, 3, 0)

    def test_records_are_numbered_and_chained(self, tmp_path: Path, key: Ed25519PrivateKey) -> None:
        """Records get seq 0.. and each prev is the previous hash (zeros first)."""
        with Ledger.open(tmp_path / "a", key=key) as ledger:
            records = ledger.append(make_events(3))
        assert [r.seq for r in records] == [0, 1, 2]
        assert records[0].prev == "0" * 64
        assert [r.prev for r in records[1:]] == [r.hash for r in records[:-1]]

    def test_duplicate_dedupe_key_recorded_once(
        self, tmp_path: Path, key: Ed25519PrivateKey
    ) -> None:
        """An event seen before (same batch, later batch, or before a restart) is skipped."""
        directory = tmp_path / "a"
        events = make_events(5)
        with Ledger.open(directory, key=key) as ledger:
            assert len(ledger.append(events + events[:2])) == 5
            assert ledger.append(events[3:]) == []
            assert len(ledger.append(make_events(2, start=5) + events[:1])) == 2
        with Ledger.open(directory, key=key) as ledger:
            assert ledger.append(events) == []
            assert ledger.size == 7
        keys = [json.loads(line)["dedupe_key"] for line in lines(directory)]
        assert len(keys) == len(set(keys)) == 7

    def test_checkpoint_only_when_new_records(self, tmp_path: Path, key: Ed25519PrivateKey) -> None:
        """A checkpoint needs records it has not signed yet."""
        with Ledger.open(tmp_path / "a", key=key) as ledger:
            assert ledger.checkpoint() is None
            ledger.append(make_events(2))
            first = ledger.checkpoint()
            assert first is not None and first.tree_size == 2
            assert ledger.checkpoint() is None

    def test_unserialisable_event_writes_nothing(
        self, tmp_path: Path, key: Ed25519PrivateKey
    ) -> None:
        """An event that has no canonical JSON (NaN) is refused before any byte is written."""
        bad = make_event(EventKind.RECEIVED, "m-nan", envelope={"payload": {"x": math.nan}})
        with Ledger.open(tmp_path / "a", key=key) as ledger:
            with pytest.raises(RecordError) as caught:
                ledger.append([*make_events(2), bad])
            assert caught.value.dedupe_key == bad.dedupe_key
            assert ledger.size == 0
            assert len(ledger.append(make_events(2))) == 2
        assert check(tmp_path / "a", key).ok

    def test_second_writer_is_locked_out(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """Two ledgers on one directory at once: the second is refused, not interleaved."""
        with Ledger.open(audit_dir, key=key), pytest.raises(LedgerLockedError, match="pid"):
            Ledger.open(audit_dir, key=key)
        Ledger.open(audit_dir, key=key).close()  # released on close

    def test_other_key_refused(self, audit_dir: Path) -> None:
        """A ledger signed with one key is not continued with another."""
        with pytest.raises(LedgerError, match="different key"):
            Ledger.open(audit_dir, key=Ed25519PrivateKey.generate())

    def test_rotation_across_segments(self, tmp_path: Path, key: Ed25519PrivateKey) -> None:
        """Segments rotate past segment_bytes; the whole still verifies and resumes in place."""
        directory = tmp_path / "a"
        with Ledger.open(directory, key=key, segment_bytes=4096) as ledger:
            for start in range(0, 60, 7):
                ledger.append(make_events(7, start=start))
                ledger.checkpoint()
        segments = list_segments(directory)
        assert len(segments) > 3
        assert all(p.stat().st_size <= 4096 for p in segments)
        with Ledger.open(directory, key=key, segment_bytes=4096) as ledger:
            assert ledger.size == 63
            ledger.append(make_events(5, start=63))
            ledger.checkpoint()
        result = check(directory, key)
        assert result.ok, result.failure
        assert result.records == 68

    def test_torn_last_line_recovered(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A crash mid-write leaves half a line: reopening cuts it, says so, and carries on."""
        whole = lines(audit_dir)
        with (audit_dir / SEGMENT).open("ab") as handle:
            handle.write(whole[5][:40])
        assert check(audit_dir, key).ok  # an incomplete line was never acknowledged
        with Ledger.open(audit_dir, key=key) as ledger:
            assert ledger.recovery.torn_record_bytes == 40
            assert ledger.recovery.notes
            assert ledger.size == 30
            ledger.append(make_events(3, start=30))
            ledger.checkpoint()
        result = check(audit_dir, key)
        assert result.ok, result.failure
        assert result.records == 33

    def test_torn_checkpoint_line_recovered(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """Half a checkpoint line is cut on open as well."""
        with (audit_dir / cp.CHECKPOINTS_FILE).open("ab") as handle:
            handle.write(b'{"key_id":"ab')
        with Ledger.open(audit_dir, key=key) as ledger:
            assert ledger.recovery.torn_checkpoint_bytes == 13
        assert check(audit_dir, key).ok

    def test_refuses_to_append_to_a_tampered_log(
        self, audit_dir: Path, key: Ed25519PrivateKey
    ) -> None:
        """Opening a log that fails its checks is refused rather than extended."""
        whole = lines(audit_dir)
        del whole[4]
        write_lines(audit_dir, whole)
        with pytest.raises(LedgerError, match="seq 4"):
            Ledger.open(audit_dir, key=key)


class TestTampering:
    @pytest.mark.parametrize(
        ("seq", "target"),
        [
            (0, b'"actor":"'),
            (3, b"Lettre "),  # inside the envelope
            (7, b'"seq":'),
            (12, b'"ts":"2025-'),
            (17, b'"prev":"'),
            (21, b'"hash":"'),
            (29, b'"event":"'),
        ],
    )
    def test_single_byte_change(
        self, audit_dir: Path, key: Ed25519PrivateKey, seq: int, target: bytes
    ) -> None:
        """Changing one byte of a value anywhere in a record names that record: changed."""
        whole = lines(audit_dir)
        line = whole[seq]
        at = line.index(target) + len(target)  # the byte just after ``target``
        original = line[at : at + 1]
        replacement = b"1" if original != b"1" else b"2"
        whole[seq] = line[:at] + replacement + line[at + 1 :]
        write_lines(audit_dir, whole)
        assert_failed(check(audit_dir, key), Kind.CHANGED, seq)

    def test_broken_json_is_malformed(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A byte that breaks the JSON itself makes that record malformed."""
        whole = lines(audit_dir)
        whole[9] = whole[9].replace(b'"actor":', b'"actor"=', 1)
        write_lines(audit_dir, whole)
        assert_failed(check(audit_dir, key), Kind.MALFORMED, 9)

    def test_deleted_record(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A record taken out of the middle: missing, at its seq."""
        whole = lines(audit_dir)
        del whole[13]
        write_lines(audit_dir, whole)
        assert_failed(check(audit_dir, key), Kind.MISSING, 13)

    def test_reordered_records(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """Two records swapped: reordered, at the first one out of place."""
        whole = lines(audit_dir)
        whole[15], whole[16] = whole[16], whole[15]
        write_lines(audit_dir, whole)
        assert_failed(check(audit_dir, key), Kind.REORDERED, 15)

    def test_duplicated_record(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A record copied twice: duplicated, where the next seq was expected."""
        whole = lines(audit_dir)
        whole.insert(8, whole[7])
        write_lines(audit_dir, whole)
        assert_failed(check(audit_dir, key), Kind.DUPLICATED, 8)

    def test_truncated_after_checkpoint(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """The last records dropped although a checkpoint covers them: truncated."""
        write_lines(audit_dir, lines(audit_dir)[:26])
        assert_failed(check(audit_dir, key), Kind.TRUNCATED, 26)

    def test_forged_checkpoint_signature(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A checkpoint signed by someone else's key: bad_signature."""
        path = audit_dir / cp.CHECKPOINTS_FILE
        rows = path.read_bytes().splitlines(keepends=True)
        genuine = cp.Checkpoint.from_json(json.loads(rows[1]))
        forged = cp.sign(
            Ed25519PrivateKey.generate(), tree_size=20, root=bytes.fromhex(genuine.root)
        )
        forged = cp.Checkpoint(
            tree_size=forged.tree_size,
            root=forged.root,
            ts=forged.ts,
            signature=forged.signature,
            key_id=genuine.key_id,  # claims to be the hub's
        )
        rows[1] = forged.line()
        path.write_bytes(b"".join(rows))
        assert_failed(check(audit_dir, key), Kind.BAD_SIGNATURE, 19)

    def test_rewritten_history_is_bad_root(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """Records rewritten with recomputed hashes and chain pass those checks, not the root."""
        whole = lines(audit_dir)
        whole[14] = rehash(whole[14], detail="nothing happened")
        for seq in range(15, 30):
            whole[seq] = rehash(whole[seq], prev=json.loads(whole[seq - 1])["hash"])
        write_lines(audit_dir, whole)
        # Records 10..19 no longer match what was signed at 20.
        assert_failed(check(audit_dir, key), Kind.BAD_ROOT, 10)

    def test_checkpoint_with_wrong_root(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A validly signed checkpoint whose root is not the log's: bad_root."""
        with (audit_dir / cp.CHECKPOINTS_FILE).open("ab") as handle:
            handle.write(cp.sign(key, tree_size=25, root=b"\x01" * 32).line())
        assert_failed(check(audit_dir, key), Kind.BAD_ROOT, 20)

    def test_broken_chain(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A record whose prev points elsewhere (its own hash recomputed): bad_chain."""
        whole = lines(audit_dir)
        whole[22] = rehash(whole[22], prev="ab" * 32)
        write_lines(audit_dir, whole)
        assert_failed(check(audit_dir, key), Kind.BAD_CHAIN, 22)

    def test_removed_last_checkpoint(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """Without its last checkpoint the log still verifies, its tail reported unsigned.

        A removed checkpoint cannot be told from one never written, so plain verify
        passes and counts the unsigned tail; ``strict`` turns that tail into a failure.
        """
        path = audit_dir / cp.CHECKPOINTS_FILE
        path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
        result = check(audit_dir, key)
        assert result.ok, result.failure
        assert (result.checkpoints, result.unsigned) == (2, 10)
        assert_failed(check(audit_dir, key, strict=True), Kind.UNSIGNED, 20)

    def test_malformed_checkpoint_line(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A checkpoints file line that is not a checkpoint is reported, with no seq."""
        with (audit_dir / cp.CHECKPOINTS_FILE).open("ab") as handle:
            handle.write(b'{"tree_size": "many"}\n')
        assert_failed(check(audit_dir, key), Kind.MALFORMED, None)

    def test_wrong_public_key(self, audit_dir: Path) -> None:
        """Verifying with another key fails on the first checkpoint."""
        result = verify_directory(audit_dir, Ed25519PrivateKey.generate().public_key())
        assert_failed(result, Kind.BAD_SIGNATURE, 9)

    def test_deleted_segment(self, tmp_path: Path, key: Ed25519PrivateKey) -> None:
        """A whole segment file removed: its records are missing."""
        directory = tmp_path / "a"
        with Ledger.open(directory, key=key, segment_bytes=4096) as ledger:
            ledger.append(make_events(30))
            ledger.checkpoint()
        segments = list_segments(directory)
        first_lost = len(segments[0].read_bytes().splitlines())
        segments[1].unlink()
        assert_failed(check(directory, key), Kind.MISSING, first_lost)


class TestBench:
    def test_bench_reports_rates(self, tmp_path: Path) -> None:
        """The benchmark runs end to end on a small ledger and reports positive rates."""
        from liaison.devtools.bench.ledger_speed import bench_audit

        figures = bench_audit(tmp_path, 1_500, batch=100)
        assert figures["records"] == 1_500
        assert min(figures["append_per_s"], figures["verify_per_s"]) > 0
