"""The quick start's first command, run for real on a scratch vhost."""

from __future__ import annotations

import subprocess
import sys

from liaison.settings import Settings
from tests.integration.harness import env_for


def test_demo_routes_the_scenario_and_verifies_the_audit_log(settings: Settings) -> None:
    """`liaison demo --exit -v` shows every message's recipients, the invalid one's reason, and a verified audit log."""
    result = subprocess.run(
        [sys.executable, "-m", "liaison", "demo", "--exit", "-v", "--ack-deadline", "4 seconds"],
        env=env_for(settings, LIAISON_LOG_LEVEL="warning"),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "treaty file opened" in out
    assert "gs-treaties → chamber, council, gs-legal" in out  # the rule's copy to legal
    assert "duty-officer" in out  # the FLASH cable's copy
    assert "dead letter: schema_violation" in out
    assert "answer_deadline" in out
    audit_line = next(line for line in out.splitlines() if line.startswith("audit log:"))
    assert "OK" in audit_line
    assert "checkpoints verified" in audit_line
    assert " 0 checkpoints" not in audit_line
    # The procedures service: a letter registered, a FLASH cable chased to its deadline.
    assert "letter gs → palace registered as MAEE/" in out
    assert "receipt.registered back at gs" in out
    assert "escalation to duty-officer and emb-paris: no receipt.received from dir-european" in out
    # Treaty files and parliamentary questions.
    assert (
        "palace's early palace.promulgation not applied, gs-treaties told: promulgated skips" in out
    )
    assert "moved TR-2026-031 to entered_into_force" in out
    assert "DEMO-1 (economic relations) assigned to dir-economic, answered on time" in out
    assert "DEMO-2 (consular assistance) was due" in out
    # The Secretariat: a release on the feed after its embargo, an overspend, a FLASH incident.
    assert "(0 entries before the embargo, 1 after)" in out
    assert "booked and escalated to gs" in out
    assert "duty-officer and gs receive it as FLASH" in out
