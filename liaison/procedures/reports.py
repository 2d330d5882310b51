"""Expected periodic reports: ONA's monthly report, due by a day of the following month.

Pure: which month a report covers, when that month's report falls due, the
deadline's id, and the escalation when it did not come. The shell
(``report_store``) keeps one deadline row per (report, month):

- the sweeper makes sure the current month's row exists, due at the end of
  ``due_day`` of the following month (00:00 Luxembourg time the day after);
- a report for a month (its ``period_start``'s month) cancels that month's row, or
  creates it cancelled, so a rebuild from the ledger reaches the same rows;
- the row falling due fires one ``procedure.escalation`` (procedure ``report``) to
  the General Secretariat and the duty officer, naming the sender still awaited.

The expected sender is the envelope's validated sender: a report "from" ONA sent by
anyone else is refused by the router (``ona.report`` is ONA's alone to send).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import uuid5

from liaison.procedures.calendar import LUXEMBOURG, local_date
from liaison.procedures.config import ExpectedReport
from liaison.procedures.core import NAMESPACE, Deadline, Effects, Outgoing, Policy
from schemas.envelope import Envelope, new_envelope
from schemas.ona import OnaReport
from schemas.procedures import ProcedureEscalation
from schemas.types import Payload

REPORT_PROCEDURE = "report"


def month_of(day: date) -> str:
    """``YYYY-MM``."""
    return f"{day.year:04d}-{day.month:02d}"


def due_at(expected: ExpectedReport, month: str) -> datetime:
    """The end of ``due_day`` of the month after ``month``, Luxembourg time, in UTC."""
    year, number = (int(part) for part in month.split("-"))
    year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    last = date(year, number, expected.due_day) + timedelta(days=1)
    return datetime.combine(last, time(0, 0), LUXEMBOURG).astimezone(UTC)


def deadline_id(expected: ExpectedReport, month: str) -> str:
    """The deadline row of ``month``'s report."""
    return f"report:{expected.name}:{month}"


def deadline(expected: ExpectedReport, month: str) -> Deadline:
    """The deadline of ``month``'s report."""
    key = f"{expected.name}/{month}"
    return Deadline(deadline_id(expected, month), REPORT_PROCEDURE, key, due_at(expected, month))


def current(expected: ExpectedReport, now: datetime) -> Deadline:
    """The deadline of the report for the month ``now`` is in (Luxembourg time)."""
    return deadline(expected, month_of(local_date(now)))


def received(expected: ExpectedReport, envelope: Envelope[Payload]) -> Deadline | None:
    """The deadline a delivered report settles, if it is the expected kind from its sender."""
    payload = envelope.payload
    if envelope.type != expected.type or envelope.sender != expected.sender:
        return None
    if not isinstance(payload, OnaReport):
        return None
    month = month_of(payload.period_start)
    if month > month_of(local_date(envelope.created_at)):
        # A report for a month not begun yet settles nothing: otherwise a few short
        # "reports" dated ahead would switch off every later escalation.
        return None
    return deadline(expected, month)


def escalate(
    policy: Policy, expected: ExpectedReport, due: Deadline, *, stamp: datetime
) -> Effects:
    """The report of the deadline's month did not come: one escalation."""
    month = due.subject_key.rsplit("/", 1)[-1]
    subject = uuid5(NAMESPACE, f"expected:{due.id}")
    recipients = tuple(
        code
        for code in dict.fromkeys((expected.sender, *expected.escalate_to))
        if code != policy.code and code in policy.directory
    )
    message_id = uuid5(policy.id_namespace, f"escalation:{due.id}")
    envelope: Envelope[Any] = new_envelope(
        ProcedureEscalation(
            procedure=REPORT_PROCEDURE,
            subject_message_id=subject,
            subject_type=expected.type,
            subject_sender=expected.sender,
            due_at=due.due_at,
            waiting_on=(expected.sender,),
            awaited=expected.type,
            text=(
                f"{expected.type} for {month} from {expected.sender} not received by "
                f"{due.due_at.isoformat()} ({expected.name})"
            ),
        ),
        sender=policy.code,
        recipients=recipients,
        correlation_id=subject,
        causation_id=subject,
        message_id=message_id,
        created_at=stamp,
    )
    return Effects(fired=((due.id, stamp, str(message_id)),), messages=(Outgoing(envelope),))


def subject_of(expected: ExpectedReport, escalation: ProcedureEscalation) -> str | None:
    """Rebuild: the deadline id an escalation in the ledger fired, if it is this report's."""
    if escalation.procedure != REPORT_PROCEDURE or escalation.subject_sender != expected.sender:
        return None
    prefix = f"report:{expected.name}:"
    for back in range(0, 14):
        month = _month_back(escalation.due_at, back)
        if uuid5(NAMESPACE, f"expected:{prefix}{month}") == escalation.subject_message_id:
            return f"{prefix}{month}"
    return None


def _month_back(moment: datetime, back: int) -> str:
    day = local_date(moment)
    index = day.year * 12 + day.month - 1 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


__all__ = [
    "REPORT_PROCEDURE",
    "ExpectedReport",
    "current",
    "deadline",
    "deadline_id",
    "due_at",
    "escalate",
    "month_of",
    "received",
    "subject_of",
]
