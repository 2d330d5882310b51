"""The writer's start-up reads only what follows the last checkpoint; dedupe keys live on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.ledger.index import INDEX_FILE, KeyIndex
from liaison.ledger.store import Ledger, LedgerError
from liaison.ledger.verify import Kind
from tests.unit.test_audit_ledger import check, lines, make_events, rehash, write_lines


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def audit_dir(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    """30 records with checkpoints at 10, 20 and 30, then 5 more not yet signed."""
    directory = tmp_path / "audit"
    with Ledger.open(directory, key=key) as ledger:
        for batch in range(3):
            ledger.append(make_events(10, start=10 * batch))
            ledger.checkpoint()
        ledger.append(make_events(5, start=30))
    return directory


class TestResume:
    def test_reads_only_after_the_last_checkpoint(
        self, audit_dir: Path, key: Ed25519PrivateKey
    ) -> None:
        """Reopening resumes at record 30 and reads the 5 after it, then appends in chain."""
        with Ledger.open(audit_dir, key=key) as ledger:
            assert ledger.recovery.resumed_from == 30
            assert ledger.recovery.records_read == 5
            assert ledger.size == 35
            ledger.append(make_events(3, start=100))
            ledger.checkpoint()
        assert check(audit_dir, key).ok

    def test_every_key_still_known(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """Events recorded before and after the checkpoint are not recorded again."""
        with Ledger.open(audit_dir, key=key) as ledger:
            assert ledger.append([*make_events(10), *make_events(5, start=30)]) == []
            assert ledger.size == 35
            assert ledger.seen(make_events(1, start=3)[0].dedupe_key)
            assert not ledger.seen(make_events(1, start=99)[0].dedupe_key)

    def test_no_index_reads_everything(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """Without its index (an older ledger) the writer reads it all and rebuilds the index."""
        (audit_dir / INDEX_FILE).unlink()
        with Ledger.open(audit_dir, key=key) as ledger:
            assert ledger.recovery.resumed_from is None
            assert ledger.recovery.records_read == 35
            assert ledger.append(make_events(10, start=10)) == []
        with Ledger.open(audit_dir, key=key) as ledger:
            assert ledger.recovery.resumed_from == 30

    def test_unreadable_index_is_moved_aside_and_rebuilt(
        self, audit_dir: Path, key: Ed25519PrivateKey
    ) -> None:
        """A damaged index file is no reason to stop: set aside, rebuilt from the ledger."""
        for suffix in ("-wal", "-shm"):
            (audit_dir / f"{INDEX_FILE}{suffix}").unlink(missing_ok=True)
        (audit_dir / INDEX_FILE).write_bytes(b"not a database at all" * 100)
        with Ledger.open(audit_dir, key=key) as ledger:
            assert ledger.recovery.resumed_from is None
            assert ledger.recovery.records_read == 35
            assert any("unreadable" in note for note in ledger.recovery.notes)
            assert ledger.append(make_events(10)) == []
        assert (audit_dir / f"{INDEX_FILE}.unreadable").exists()

    def test_removed_line_before_the_checkpoint_is_found(
        self, audit_dir: Path, key: Ed25519PrivateKey
    ) -> None:
        """A deleted record moves the resume point's offset: read in full, refused at seq 4."""
        whole = lines(audit_dir)
        del whole[4]
        write_lines(audit_dir, whole)
        with pytest.raises(LedgerError, match="seq 4"):
            Ledger.open(audit_dir, key=key)

    def test_same_length_edit_is_left_to_verify(
        self, audit_dir: Path, key: Ed25519PrivateKey
    ) -> None:
        """An old record rewritten to the same length is not re-hashed at start: verify names it."""
        whole = lines(audit_dir)
        forged = rehash(whole[2], actor="rooter")
        assert len(forged) == len(whole[2])
        whole[2] = forged
        write_lines(audit_dir, whole)
        with Ledger.open(audit_dir, key=key) as ledger:
            assert ledger.recovery.resumed_from == 30
        result = check(audit_dir, key)
        assert not result.ok and result.failure is not None
        assert (result.failure.kind, result.failure.seq) == (Kind.BAD_CHAIN, 3)

    def test_index_of_a_longer_ledger_is_rebuilt(
        self, audit_dir: Path, key: Ed25519PrivateKey, tmp_path: Path
    ) -> None:
        """A ledger restored from an older copy: its index claims too much, so it is rebuilt."""
        older = tmp_path / "older"
        with Ledger.open(older, key=key) as ledger:
            ledger.append(make_events(10))
            ledger.checkpoint()
        (older / INDEX_FILE).unlink()
        for name in (INDEX_FILE, f"{INDEX_FILE}-wal", f"{INDEX_FILE}-shm"):
            if (audit_dir / name).exists():
                (older / name).write_bytes((audit_dir / name).read_bytes())
        with Ledger.open(older, key=key) as ledger:
            assert ledger.size == 10
            assert ledger.recovery.records_read == 10
            assert len(ledger.append(make_events(5, start=30))) == 5  # not known to this ledger


class TestDurability:
    def test_keys_reach_the_index_only_when_durable(
        self, tmp_path: Path, key: Ed25519PrivateKey
    ) -> None:
        """Appended without a sync, a key is not in the index until the records are flushed."""
        directory = tmp_path / "audit"
        event = make_events(1)[0]
        with Ledger.open(directory, key=key) as ledger:
            ledger.append([event], sync=False)
            assert ledger.seen(event.dedupe_key)  # the writer itself knows it
            other = KeyIndex(directory)
            try:
                assert other.known([event.dedupe_key]) == set()
                ledger.flush()
                assert other.known([event.dedupe_key]) == {event.dedupe_key}
            finally:
                other.close()


def test_resume_across_segments(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    """With many small segments the resume point names the right one and its offset."""
    directory = tmp_path / "audit"
    with Ledger.open(directory, key=key, segment_bytes=4096) as ledger:
        for batch in range(6):
            ledger.append(make_events(10, start=10 * batch))
            if batch % 2:
                ledger.checkpoint()
        ledger.append(make_events(4, start=200))
    with Ledger.open(directory, key=key, segment_bytes=4096) as ledger:
        assert ledger.recovery.segments > 3
        assert ledger.recovery.resumed_from == 60
        assert ledger.recovery.records_read == 4
        ledger.append(make_events(7, start=300))
        ledger.checkpoint()
    assert check(directory, key, strict=True).ok


def test_startup_bench_reads_only_the_tail(tmp_path: Path) -> None:
    """`bench audit --startup`: whatever the ledger's size, a start reads the last 1,000."""
    from liaison.devtools.bench.audit import run_startup_bench

    figures = run_startup_bench(tmp_path, [3_000, 6_000], repeat=1)
    for size in (3_000, 6_000):
        row = figures[str(size)]
        assert (row["records"], row["records_read"]) == (size, 1_000)
        assert row["resumed_from"] == size - 1_000
        assert row["open_s"] > 0 and row["rss_mb"] > 0
