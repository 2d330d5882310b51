"""``liaison audit``: verify, export, prove, check-proof, show and search, as a user runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from liaison.cli import main
from liaison.core.events import EventKind, make_event
from liaison.ledger.keys import load_or_create
from liaison.ledger.store import Ledger

MID = "00000000-0000-4000-8000-000000000007"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Settings for the CLI: a ledger of 20 records, checkpointed, under tmp_path."""
    audit_dir, key_path = tmp_path / "audit", tmp_path / "hub.key"
    key = load_or_create(key_path)
    at = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
    events = [
        make_event(
            kind,
            f"00000000-0000-4000-8000-{i:012d}",
            at=at + timedelta(minutes=i),
            type="mission.cable",
            sender="AMB-PARIS" if i % 2 else "MAEE",
            recipients=("MAEE",),
            envelope={"message_id": f"m{i}"} if kind is EventKind.RECEIVED else None,
        )
        for i in range(10)
        for kind in (EventKind.RECEIVED, EventKind.DELIVERED)
    ]
    with Ledger.open(audit_dir, key=key) as ledger:
        ledger.append(events)
        ledger.checkpoint()
    return {
        "LIAISON_AUDIT_DIR": str(audit_dir),
        "LIAISON_HUB_KEY_PATH": str(key_path),
        "LIAISON_LOG_JSON": "true",
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["audit", *args], env=env, catch_exceptions=False)


class TestVerify:
    def test_ok(self, env: dict[str, str]) -> None:
        """An intact ledger: the OK line with counts, exit 0."""
        result = run(env, "verify")
        assert result.exit_code == 0, result.output
        assert result.stdout == "OK: 20 records, 1 checkpoints verified\n"

    def test_failed(self, env: dict[str, str]) -> None:
        """A changed record: FAILED at its seq with the kind, exit 1."""
        segment = Path(env["LIAISON_AUDIT_DIR"]) / "segment-000001.jsonl"
        lines = segment.read_bytes().splitlines(keepends=True)
        lines[11] = lines[11].replace(b"AMB-PARIS", b"AMB-PARIX")
        segment.write_bytes(b"".join(lines))
        result = run(env, "verify", env["LIAISON_AUDIT_DIR"])
        assert result.exit_code == 1
        assert result.stdout.startswith("FAILED at seq 11: changed: ")

    def test_no_public_key(self, env: dict[str, str], tmp_path: Path) -> None:
        """Without hub.pub or --public-key, verify says what is missing."""
        (Path(env["LIAISON_AUDIT_DIR"]) / "hub.pub").unlink()
        result = run(env, "verify")
        assert result.exit_code == 1
        assert "--public-key" in result.output


class TestExport:
    def test_bundle_verifies(self, env: dict[str, str], tmp_path: Path) -> None:
        """An exported bundle holds the ledger, the key and the guide, and verifies on its own."""
        out = tmp_path / "bundle"
        result = run(env, "export", str(out))
        assert result.exit_code == 0, result.output
        names = sorted(p.name for p in out.iterdir())
        assert names == [
            "README-AUDITOR.md",
            "checkpoints.jsonl",
            "hub.pub",
            "segment-000001.jsonl",
        ]
        assert "liaison audit verify" in (out / "README-AUDITOR.md").read_text()
        result = CliRunner().invoke(main, ["audit", "verify", str(out)], env={})
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("OK: 20 records")

    def test_refuses_non_empty_target(self, env: dict[str, str], tmp_path: Path) -> None:
        """Export never mixes with what is already in the target folder."""
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("x")
        assert run(env, "export", str(tmp_path / "full")).exit_code == 1


class TestProofs:
    def test_prove_then_check(self, env: dict[str, str], tmp_path: Path) -> None:
        """prove writes a proof that check-proof accepts against the hub's public key."""
        out = tmp_path / "proof.json"
        result = run(env, "prove", MID, "--out", str(out))
        assert result.exit_code == 0, result.output
        pub = str(Path(env["LIAISON_AUDIT_DIR"]) / "hub.pub")
        result = run(env, "check-proof", str(out), "--public-key", pub)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"OK: 2 record(s) of {MID}")

    def test_check_tampered_proof(self, env: dict[str, str], tmp_path: Path) -> None:
        """An edited proof fails with exit 1."""
        out = tmp_path / "proof.json"
        run(env, "prove", MID, "--out", str(out))
        doc = json.loads(out.read_text())
        doc["entries"][0]["record"]["sender"] = "MAEE"
        out.write_text(json.dumps(doc))
        result = run(env, "check-proof", str(out))
        assert result.exit_code == 1
        assert "FAILED" in result.stdout
        assert "key inside the proof" in result.output

    def test_prove_unknown_message(self, env: dict[str, str]) -> None:
        """No record of the message: an error, exit 1."""
        assert run(env, "prove", "no-such-message").exit_code == 1


class TestShowSearch:
    def test_show(self, env: dict[str, str]) -> None:
        """The timeline table lists the message's events in order."""
        result = run(env, "show", MID)
        assert result.exit_code == 0, result.output
        rows = result.stdout.splitlines()
        assert rows[0].split()[:3] == ["SEQ", "TIME", "(UTC)"]
        assert [row.split()[2] for row in rows[1:]] == ["received", "delivered"]

    def test_search_json(self, env: dict[str, str]) -> None:
        """--json prints one record per line; filters combine."""
        result = run(
            env, "search", "--json", "--sender", "AMB-PARIS", "--event", "received",
            "--since", "2025-05-01T08:03", "--until", "2025-05-01T08:08",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        found = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["seq"] for r in found] == [6, 10, 14]

    def test_search_table_and_limit(self, env: dict[str, str]) -> None:
        """The table has a header and stops at --limit."""
        result = run(env, "search", "--type", "mission.cable", "--limit", "3")
        assert len(result.stdout.splitlines()) == 4

    def test_bad_time(self, env: dict[str, str]) -> None:
        """A time that is not ISO 8601 is a usage error."""
        assert run(env, "search", "--since", "yesterday").exit_code == 2
