"""The committee in the procedures database (SQLite and PostgreSQL) and its two commands."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner, Result

from liaison.cli import main
from liaison.procedures import committee_store
from liaison.procedures.store import Store
from schemas.committee import DecisionRecorded, MeetingConvened, MinutesAdopted
from tests.unit.test_committee import POLICY, T0, commit, msg, opened, pay


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, check=False)
    s.migrate()
    yield s
    s.close()


def run(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        main, list(args), env={"LIAISON_PROCEDURES_DATABASE_URL": database_url}
    )


def test_accounts_csv_adds_up_to_the_messages_and_overspend_is_escalated(
    database_url: str, store: Store
) -> None:
    """Two lines; 3 commitments (one over its line), 2 payments; CSV totals = the messages' sums."""
    messages: list[Any] = [
        opened("1000.00", "6.1.1"),
        opened("250.50", "6.1.2"),
        commit("E1", "600.10", "6.1.1"),
        commit("E2", "399.90", "6.1.1"),
        commit("E3", "300.00", "6.1.2"),  # over the 250.50 of its line
        pay("E1", "600.10", "6.1.1"),
        pay("E3", "100.00", "6.1.2"),
        commit("E4", "1.00", "6.1.2", currency="USD"),  # refused: the line is in EUR
    ]
    for n, payload in enumerate(messages):
        store.consume(POLICY, msg(payload, n), stamp=T0)
    sent = [row.routing_key for row in store.unsent()]
    assert sent == ["committee.overspend_escalated", "procedure.refusal"]

    done = run(database_url, "committee", "accounts", "--year", "2026", "--csv")
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(io.StringIO(done.output)))
    by_line = {row["line"]: row for row in rows}
    assert by_line["6.1.1"]["committed"] == "1000.00"
    assert by_line["6.1.1"]["remaining"] == "0.00"
    assert (by_line["6.1.2"]["committed"], by_line["6.1.2"]["remaining"]) == ("300.00", "-49.50")
    assert by_line["6.1.2"]["overspends"] == "1"
    total = by_line["TOTAL"]
    booked = messages[2:7]
    assert Decimal(total["budgeted"]) == Decimal("1250.50")
    assert Decimal(total["committed"]) == sum(
        m.amount for m in booked if m.message_type.endswith("committed")
    )
    assert Decimal(total["paid"]) == sum(
        m.amount for m in booked if m.message_type.endswith("paid")
    )
    assert Decimal(total["remaining"]) == Decimal(total["budgeted"]) - Decimal(total["committed"])
    assert Decimal(total["committed"]) == sum(Decimal(r["committed"]) for r in rows[:-1])
    # Another message reusing commitment E1 is refused: E1 is not booked twice.
    assert store.consume(POLICY, msg(messages[2], 2), stamp=T0) is True  # applied: as a refusal
    again = run(database_url, "committee", "accounts", "--year", "2026", "--json")
    assert [r["committed"] for r in json.loads(again.output) if r["line"] == "6.1.1"] == ["1000.00"]


def test_meetings_by_year_with_minutes_and_decisions(database_url: str, store: Store) -> None:
    for n, payload in enumerate(
        [
            MeetingConvened(
                meeting_reference="M-2026-1",
                meeting_on=date(2026, 3, 18),
                agenda_items=("Procès-verbal", "Locaux du Parquet européen"),
            ),
            MeetingConvened(
                meeting_reference="M-2025-4", meeting_on=date(2025, 12, 1), agenda_items=("Budget",)
            ),
            DecisionRecorded(meeting_reference="M-2026-1", decision_reference="D-7", text="Oui"),
            MinutesAdopted(
                meeting_reference="M-2026-1", adopted_on=date(2026, 4, 2), summary="Adopté"
            ),
        ]
    ):
        store.consume(POLICY, msg(payload, n), stamp=T0)
    done = run(database_url, "committee", "meetings", "--year", "2026", "--json")
    assert done.exit_code == 0, done.output
    [meeting] = json.loads(done.output)
    assert meeting["reference"] == "M-2026-1"
    assert meeting["agenda"] == ["Procès-verbal", "Locaux du Parquet européen"]
    assert meeting["minutes_adopted_on"] == "2026-04-02"
    assert meeting["decisions"] == [{"reference": "D-7", "text": "Oui"}]
    everything = run(database_url, "committee", "meetings")
    assert "M-2025-4" in everything.output and "decision D-7: Oui" in everything.output


def test_references_are_never_reused_nor_replaced(database_url: str, store: Store) -> None:
    """A commitment reference on another line or year, a decision reference again: refused."""
    payloads: list[Any] = [
        opened("1000.00", "6.1.1"),
        opened("1000.00", "6.1.2"),
        commit("E1", "100.00", "6.1.1"),
        commit("E1", "200.00", "6.1.2"),  # refused: E1 is on 6.1.1
        MeetingConvened(meeting_reference="M-1", meeting_on=date(2026, 3, 18), agenda_items=("a",)),
        MeetingConvened(meeting_reference="M-2", meeting_on=date(2026, 5, 18), agenda_items=("b",)),
        DecisionRecorded(meeting_reference="M-1", decision_reference="D-1", text="Oui"),
        DecisionRecorded(meeting_reference="M-2", decision_reference="D-1", text="Non"),
    ]
    for n, payload in enumerate(payloads):
        store.consume(POLICY, msg(payload, n), stamp=T0)
    refusals = [json.loads(row.body) for row in store.unsent()]
    assert [r["payload"]["reason"] for r in refusals] == [
        "commitment E1 already exists on line 6.1.1 (2026): "
        "a commitment reference names one commitment",
        "decision D-1 is already recorded (meeting M-1): a decision reference names one decision",
    ]
    with store.reading() as db:
        booked = committee_store.entries(db, 2026)
        meetings = {
            m.reference: [d.text for d in ds] for m, ds in committee_store.meetings(db, 2026)
        }
    assert [(e.line, e.reference, e.amount) for e in booked] == [("6.1.1", "E1", Decimal("100.00"))]
    assert meetings == {"M-1": ["Oui"], "M-2": []}
