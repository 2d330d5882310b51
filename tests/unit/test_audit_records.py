"""The record format as documented, proofs for one message, and queries over the ledger."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.core.events import EventKind, make_event
from liaison.ledger import bundle, proof, query, records
from liaison.ledger.store import Ledger
from schemas.envelope import canonical_json

BASE = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def audit_dir(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    """Three messages' lives (received → routed → delivered), one refusal, a checkpoint."""
    directory = tmp_path / "audit"
    events = []
    for n, sender in enumerate(("MAEE", "CHAMBRE", "MAEE")):
        mid = f"00000000-0000-4000-8000-00000000000{n}"
        envelope = {"message_id": mid, "sender": sender, "payload": {"texte": "Séance n°1 ✓"}}
        common: dict[str, Any] = {
            "type": "chamber.question" if sender == "CHAMBRE" else "correspondence.letter",
            "sender": sender,
            "recipients": ("PALAIS", "GOUV") if n == 2 else ("PALAIS",),
        }
        at = BASE + timedelta(hours=n)
        events += [
            make_event(EventKind.RECEIVED, mid, at=at, envelope=envelope, **common),
            make_event(EventKind.ROUTED, mid, at=at + timedelta(seconds=1), **common),
            make_event(EventKind.DELIVERED, mid, at=at + timedelta(seconds=2), **common),
        ]
    events.append(
        make_event(
            EventKind.REJECTED, "sha256:" + "ab" * 32, at=BASE, reason="not_json", detail="garbage"
        )
    )
    with Ledger.open(directory, key=key) as ledger:
        ledger.append(events)
        ledger.checkpoint()
    return directory


def _first_line(directory: Path) -> bytes:
    return (directory / "segment-000001.jsonl").read_bytes().split(b"\n")[0]


class TestFormat:
    def test_line_is_canonical_json_with_hash(self, audit_dir: Path) -> None:
        """The stored line is exactly the canonical JSON of the whole record."""
        line = _first_line(audit_dir)
        record = records.Record.from_line(line)
        assert line + b"\n" == record.line() == canonical_json(record.to_json()) + b"\n"
        assert sorted(json.loads(line)) == sorted(records.FIELDS)

    def test_split_line_gives_canonical_bytes(self, audit_dir: Path) -> None:
        """Removing the hash member from the line gives the canonical bytes and the hash."""
        line = _first_line(audit_dir)
        record = records.Record.from_line(line)
        assert records.split_line(line) == (record.canonical_bytes(), record.hash.encode())

    def test_hash_and_chain_by_hand(self, audit_dir: Path) -> None:
        """With only hashlib and json, as documented: hash, prev chain, seq, leaf data."""
        prev = "0" * 64
        raw = (audit_dir / "segment-000001.jsonl").read_bytes()
        for seq, line in enumerate(raw.split(b"\n")[:-1]):
            record = json.loads(line)
            claimed = record.pop("hash")
            canonical = json.dumps(
                record, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
            assert hashlib.sha256(canonical).hexdigest() == claimed
            assert record["prev"] == prev
            assert record["seq"] == seq
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record["ts"])
            # The line is the canonical bytes with the hash member put back in its place.
            cut = canonical.rfind(b',"message_id":')
            assert (
                line == canonical[:cut] + b',"hash":"' + claimed.encode() + b'"' + canonical[cut:]
            )
            prev = claimed

    def test_non_ascii_kept_as_utf8(self, audit_dir: Path) -> None:
        """ensure_ascii=False: text is stored as UTF-8, not \\u escapes."""
        raw = (audit_dir / "segment-000001.jsonl").read_bytes()
        assert "Séance n°1 ✓".encode() in raw
        assert b"\\u" not in raw

    def test_auditor_script_in_readme_passes(self, audit_dir: Path, tmp_path: Path) -> None:
        """The by-hand script the bundle README gives verifies a real ledger, and catches a change."""
        script = tmp_path / "by_hand.py"
        script.write_text(bundle.AUDITOR_SCRIPT, encoding="utf-8")
        assert bundle.AUDITOR_SCRIPT.strip() in bundle.README
        done = subprocess.run(
            [sys.executable, str(script), str(audit_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "10 records, 1 checkpoint roots: OK" in done.stdout
        segment = audit_dir / "segment-000001.jsonl"
        segment.write_bytes(segment.read_bytes().replace(b"garbage", b"harmless"))
        done = subprocess.run(
            [sys.executable, str(script), str(audit_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode != 0
        assert "changed" in done.stderr

    def test_checkpoint_signature_by_hand(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """The checkpoint signature covers the canonical JSON of root, tree_size and ts."""
        checkpoint = json.loads((audit_dir / "checkpoints.jsonl").read_bytes().splitlines()[0])
        signed = json.dumps(
            {k: checkpoint[k] for k in ("root", "tree_size", "ts")},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        key.public_key().verify(base64.b64decode(checkpoint["signature"]), signed)


class TestProof:
    MID = "00000000-0000-4000-8000-000000000001"

    def test_proof_round_trip(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A proof built from the ledger checks out offline, one entry per record."""
        doc = proof.build_proof(audit_dir, self.MID, key.public_key())
        assert [e["leaf_index"] for e in doc["entries"]] == [3, 4, 5]
        result = proof.check_proof(json.loads(json.dumps(doc)), key.public_key())
        assert result.ok, result.problems
        assert result.checked == 3

    def test_tampered_proof_fails(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A proof whose record was edited (even with its hash recomputed) fails."""
        doc = proof.build_proof(audit_dir, self.MID, key.public_key())
        record = doc["entries"][1]["record"]
        record["recipients"] = ["AUTRE"]
        body = {k: v for k, v in record.items() if k != "hash"}
        record["hash"] = hashlib.sha256(canonical_json(body)).hexdigest()
        result = proof.check_proof(doc, key.public_key())
        assert not result.ok
        assert "not in the signed tree" in result.problems[0]

    def test_other_key_fails(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """A proof is only as good as the key it is checked with."""
        doc = proof.build_proof(audit_dir, self.MID, key.public_key())
        result = proof.check_proof(doc, Ed25519PrivateKey.generate().public_key())
        assert not result.ok

    def test_newer_records_are_not_proven(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """Records after the latest checkpoint are listed as unproven."""
        with Ledger.open(audit_dir, key=key) as ledger:
            ledger.append([make_event(EventKind.RECEIPT, self.MID, at=BASE)])
        doc = proof.build_proof(audit_dir, self.MID, key.public_key())
        assert doc["unproven"] == [10]

    def test_unknown_message(self, audit_dir: Path, key: Ed25519PrivateKey) -> None:
        """No record, no proof."""
        with pytest.raises(proof.ProofUnavailableError):
            proof.build_proof(audit_dir, "nope", key.public_key())


class TestQuery:
    def test_history_is_the_timeline(self, audit_dir: Path) -> None:
        """One message's records, in order."""
        timeline = query.history(audit_dir, "00000000-0000-4000-8000-000000000002")
        assert [r.event for r in timeline] == ["received", "routed", "delivered"]

    def test_history_follows_event_time_not_arrival(
        self, tmp_path: Path, key: Ed25519PrivateKey
    ) -> None:
        """A consumer's give-up recorded before the router's batch: shown after it."""
        decided, gave_up = BASE, BASE + timedelta(milliseconds=30)
        with Ledger.open(tmp_path / "race", key=key) as ledger:
            ledger.append([make_event(EventKind.PARKED, "m", discriminator="c", at=gave_up)])
            ledger.append(
                [
                    make_event(kind, "m", discriminator="r", at=decided)
                    for kind in (EventKind.RECEIVED, EventKind.ROUTED, EventKind.DELIVERED)
                ]
            )
        timeline = query.history(tmp_path / "race", "m")
        assert [r.event for r in timeline] == ["received", "routed", "delivered", "parked"]
        assert [r.seq for r in timeline] == [1, 2, 3, 0]  # the log keeps arrival order

    @pytest.mark.parametrize(
        ("criteria", "expected"),
        [
            ({"sender": "CHAMBRE"}, [3, 4, 5]),
            ({"recipient": "GOUV"}, [6, 7, 8]),
            ({"type": "chamber.question", "event": "routed"}, [4]),
            ({"event": "rejected"}, [9]),
            ({"since": BASE + timedelta(hours=1), "until": BASE + timedelta(hours=2)}, [3, 4, 5]),
            ({"with_envelope": True}, [0, 3, 6]),
        ],
    )
    def test_filters(self, audit_dir: Path, criteria: dict[str, Any], expected: list[int]) -> None:
        """Each filter keeps exactly the records it names."""
        found = query.search(audit_dir, query.Filter(**criteria))
        assert [r.seq for r in found] == expected

    def test_sender_in_envelope_only_does_not_match(self, audit_dir: Path) -> None:
        """The byte prefilter may hit the envelope; the record's own field decides."""
        assert list(query.search(audit_dir, query.Filter(sender="PALAIS"))) == []

    def test_replay_selection_skips_refused_envelopes(self, tmp_path: Path) -> None:
        """A refused body (a forged sender, say) is in the ledger but never chosen for a replay."""
        directory = tmp_path / "audit"
        mid = "00000000-0000-4000-8000-0000000000aa"
        forged = {"message_id": mid, "sender": "MAEE", "payload": {}}
        kept = {"message_id": mid, "sender": "MAEE", "payload": {"texte": "vrai"}}
        facts: dict[str, Any] = {"type": "correspondence.letter", "sender": "MAEE"}
        with Ledger.open(directory, key=Ed25519PrivateKey.generate()) as ledger:
            ledger.append(
                [
                    make_event(
                        EventKind.RECEIVED,
                        mid,
                        discriminator="MAEE:f0",
                        at=BASE,
                        envelope=forged,
                        **facts,
                    ),
                    make_event(
                        EventKind.REJECTED,
                        mid,
                        discriminator="MAEE:f0:sender_mismatch",
                        at=BASE,
                        reason="sender_mismatch",
                        **facts,
                    ),
                    make_event(
                        EventKind.RECEIVED,
                        mid,
                        discriminator="MAEE:aa",
                        at=BASE,
                        envelope=kept,
                        **facts,
                    ),
                    make_event(
                        EventKind.ROUTED,
                        mid,
                        discriminator="MAEE:aa",
                        at=BASE,
                        recipients=("PALAIS",),
                        **facts,
                    ),
                ]
            )
        picked = list(query.replay_selection(directory, query.Filter(sender="MAEE")))
        assert [r.envelope for r in picked] == [kept]

    def test_replay_selection_one_envelope_per_message(self, audit_dir: Path) -> None:
        """For replays: each matching message once, with its envelope."""
        picked = list(query.replay_selection(audit_dir, query.Filter(sender="MAEE")))
        assert [r.seq for r in picked] == [0, 6]
        assert all(r.envelope is not None for r in picked)
