"""The audit log after a round trip through the hub: history, replay, verification."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from liaison.ledger.query import Filter, search
from liaison.settings import Settings
from schemas import wire
from schemas.examples import example_envelope
from tests.integration.harness import (
    env_for,
    publish_as,
    running,
    settle_depths,
    take,
    wait_for,
)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liaison", *args],
        env=env_for(settings, LIAISON_LOG_LEVEL="warning"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def events_of(audit_dir: Path, message_id: str) -> list[tuple[str, str]]:
    return [(r.event, r.actor) for r in search(audit_dir, Filter(message_id=message_id))]


def test_show_replay_and_verify(hub_settings: Settings, tmp_path: Path) -> None:
    """`show` gives the full history; `replay` delivers to an inbox and is itself audited; `verify` passes."""
    s = hub_settings
    letter = example_envelope("correspondence.letter", 1, sender="gs", recipients=("gs-archives",))
    with (
        running(s, "serve", log_path=str(tmp_path / "router.log")),
        running(s, "audit", "run", wait_queue=wire.AUDIT_QUEUE, log_path=str(tmp_path / "w.log")),
    ):
        publish_as(s, "gs", letter)
        take(s, wire.inbox_queue("gs-archives"), 1)
        mid = str(letter.message_id)
        wait_for(lambda: ("delivered", "router") in events_of(s.audit_dir, mid), what="audit")

        shown = cli(s, "audit", "show", mid)
        assert shown.returncode == 0, shown.stderr
        for event in ("received", "routed", "delivered"):
            assert event in shown.stdout

        dry = cli(s, "audit", "replay", "--message-id", mid, "--to", "gs-legal", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert mid in dry.stdout
        # A dry run publishes nothing: gs-legal's inbox stays empty through a quiet window.
        assert settle_depths(s, [wire.inbox_queue("gs-legal")]) == {wire.inbox_queue("gs-legal"): 0}

        done = cli(
            s,
            "audit",
            "replay",
            "--message-id",
            mid,
            "--to",
            "gs-legal",
            "--operator",
            "alice",
            "--yes",
        )
        assert done.returncode == 0, done.stderr
        ((props, body),) = take(s, wire.inbox_queue("gs-legal"), 1)
        assert body == letter.encode()  # the original, untouched
        assert props.headers[wire.H_REPLAY_OF] == mid
        # Not to the original recipient: its inbox stays empty once everything is at rest.
        archives = wire.inbox_queue("gs-archives")
        assert settle_depths(s, [wire.INGRESS_QUEUE, archives])[archives] == 0
        wait_for(lambda: ("replayed", "alice") in events_of(s.audit_dir, mid), what="replay audit")

    verified = cli(s, "audit", "verify", str(s.audit_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK")
    records = list(search(s.audit_dir, Filter(message_id=mid)))
    delivered = [r for r in records if r.event == "delivered"]
    # gs-procedures: the bundled rules copy every letter to the registry.
    assert [r.recipients for r in delivered] == [("gs-archives", "gs-procedures"), ("gs-legal",)]
    assert json.loads(json.dumps(records[0].envelope))["sender"] == "gs"
