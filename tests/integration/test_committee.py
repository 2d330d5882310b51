"""The committee and the expected ONA report on the real hub; rebuild reproduces them."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

from liaison.settings import Settings
from schemas.committee import MeetingConvened
from schemas.envelope import new_envelope
from tests.integration.console import cli
from tests.integration.harness import publish_as, wait_for
from tests.integration.procedures_support import take_json
from tests.integration.test_procedures import _extra, _hub, proc  # noqa: F401 - fixture
from tests.integration.test_reports_store import report
from tests.unit.test_committee import commit, opened


def test_overspend_is_escalated_accounts_add_up_and_rebuild_agrees(
    proc: Settings,  # noqa: F811
    tmp_path: Path,
) -> None:
    """cciioe commits more than its line has: gs and cciioe hear of it; CSV totals; no diff."""
    sent = [
        opened("100.00"),
        commit("E1", "80.00"),
        commit("E2", "30.00"),  # 20.00 left: over
        MeetingConvened(
            meeting_reference="M-1", meeting_on=date(2026, 12, 3), agenda_items=("Budget",)
        ),
    ]
    with _hub(proc, tmp_path):
        for payload in sent:
            publish_as(proc, "cciioe", new_envelope(payload, sender="cciioe", recipients=("gs",)))
        publish_as(proc, "ona", report(date(2026, 11, 1)))
        got = [data["type"] for _, data in take_json(proc, "gs", len(sent) + 2)]
        assert got.count("committee.overspend_escalated") == 1
        [(_, alert)] = take_json(proc, "cciioe", 1)
        assert alert["type"] == "committee.overspend_escalated"
        assert alert["payload"]["available"] == "20.00"
        assert alert["payload"]["amount"] == "30.00"

        done = cli(proc, "committee", "accounts", "--year", "2026", "--csv", **_extra(proc))
        assert done.code == 0, done.err
        rows = {row["line"]: row for row in csv.DictReader(io.StringIO(done.out))}
        assert rows["6.1.2"]["committed"] == "110.00"
        assert Decimal(rows["TOTAL"]["remaining"]) == Decimal("-10.00")

        def rebuilt() -> bool:
            return cli(proc, "procedures", "rebuild", **_extra(proc)).code == 0

        wait_for(rebuilt, timeout=30, what="a rebuild from the ledger with no difference")
