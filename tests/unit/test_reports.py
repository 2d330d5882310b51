"""ONA's monthly report: due by a configurable day of the following month (pure parts)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from liaison.directory import load_directory
from liaison.procedures import core, reports
from liaison.procedures.config import AckRules, ExpectedReport
from schemas.envelope import new_envelope
from schemas.examples import example_payload
from schemas.procedures import ProcedureEscalation

DIRECTORY = load_directory()
ONA = ExpectedReport(due_day=10)
POLICY = core.Policy(
    "gs-procedures", "MAEE", DIRECTORY, AckRules.load(None, DIRECTORY), reports=(ONA,)
)


def report(start: date, sender: str = "ona"):  # type: ignore[no-untyped-def]
    payload = example_payload("ona.report", 1).model_copy(
        update={"period_start": start, "period_end": start.replace(day=28)}
    )
    return new_envelope(payload, sender=sender, recipients=("gs",))


def test_due_at_the_end_of_the_configured_day_of_the_following_month() -> None:
    # 10 December 2026 ends at 00:00 on the 11th in Luxembourg (CET, UTC+1).
    assert reports.due_at(ONA, "2026-11") == datetime(2026, 12, 10, 23, 0, tzinfo=UTC)
    assert reports.due_at(ONA, "2026-12") == datetime(2027, 1, 10, 23, 0, tzinfo=UTC)
    # Summer time: 10 July ends at 22:00 UTC.
    assert reports.due_at(ExpectedReport(due_day=10), "2026-06") == datetime(
        2026, 7, 10, 22, 0, tzinfo=UTC
    )
    assert reports.due_at(ExpectedReport(due_day=5), "2026-11") == datetime(
        2026, 12, 5, 23, 0, tzinfo=UTC
    )


def test_the_current_month_is_the_luxembourg_one() -> None:
    # 23:30 UTC on 30 November is already 1 December in Luxembourg.
    due = reports.current(ONA, datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    assert due.id == "report:ona-monthly:2026-12"


def test_a_report_settles_its_period_month_only_from_its_sender() -> None:
    settled = reports.received(ONA, report(date(2026, 11, 1)))
    assert settled is not None and settled.id == "report:ona-monthly:2026-11"
    assert reports.received(ONA, report(date(2026, 11, 1), sender="gs")) is None


def test_escalation_names_ona_and_rebuild_finds_its_deadline() -> None:
    due = reports.deadline(ONA, "2026-11")
    stamp = datetime(2026, 12, 11, 8, 0, tzinfo=UTC)
    effects = reports.escalate(POLICY, ONA, due, stamp=stamp)
    [message] = effects.messages
    escalation = message.envelope.payload
    assert isinstance(escalation, ProcedureEscalation)
    assert escalation.waiting_on == ("ona",) and escalation.procedure == "report"
    assert set(message.envelope.recipients) == {"ona", "gs", "duty-officer"}
    assert "2026-11" in escalation.text
    assert reports.subject_of(ONA, escalation) == due.id
    again = reports.escalate(POLICY, ONA, due, stamp=stamp)
    assert again.messages[0].envelope.message_id == message.envelope.message_id


def test_a_report_for_a_month_not_begun_settles_nothing() -> None:
    """ONA cannot switch off next spring's escalations with short reports dated ahead."""
    ahead = report(date(2027, 3, 1)).model_copy(
        update={"created_at": datetime(2026, 11, 30, 9, 0, tzinfo=UTC)}
    )
    assert reports.received(ONA, ahead) is None
    on_time = report(date(2026, 11, 1)).model_copy(
        update={"created_at": datetime(2026, 12, 2, 9, 0, tzinfo=UTC)}
    )
    assert reports.received(ONA, on_time) is not None
