"""Parliamentary questions as a pure fold: a case from the question to its answer.

The Ministry's words: a deputy's question reaches the General Secretariat from
the Chamber with the date by which the minister must answer; a directorate
prepares the answer; it is reminded as the date nears, the General Secretariat
hears when the date has passed, and the minister's answer closes the case, late
or not.

The hub's words: ``chamber.question`` (from the Chamber only) opens a case keyed
by its number; the directorate is the first :class:`AssignRule` whose pattern
matches the subject (the default otherwise) until a ``chamber.question_assigned``
from the General Secretariat names another. Reminders fall at the start of the
working day N working days before the deadline (Luxembourg calendar); the
escalation falls when the deadline day ends, once. ``chamber.answer`` closes the
case and records by how many days it was late. A question asked twice, an answer
to no open question, an assignment by someone else: not applied, told to the
General Secretariat (``procedure.anomaly``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from fnmatch import fnmatchcase
from uuid import UUID, uuid5

from liaison.procedures.calendar import LUXEMBOURG, is_working_day, local_date
from liaison.procedures.core import NAMESPACE, Deadline, Outgoing
from schemas.chamber import ParliamentaryAnswer, ParliamentaryQuestion, QuestionAssigned
from schemas.envelope import Envelope, new_envelope
from schemas.procedures import ProcedureAnomaly, ProcedureEscalation, ProcedureReminder
from schemas.types import Payload

QUESTION_PROCEDURE = "question"
#: Reminders and the working day start at this hour, Luxembourg time.
WORKDAY_STARTS = time(9, 0)


@dataclass(frozen=True)
class AssignRule:
    """Questions whose subject matches ``subject`` (a glob, case-insensitive) go to ``to``."""

    name: str
    subject: str
    to: str

    def matches(self, subject: str) -> bool:
        """Whether this rule assigns a question with ``subject``."""
        return fnmatchcase(subject.casefold(), self.subject.casefold())


@dataclass(frozen=True)
class QuestionPolicy:
    """What the question fold reads besides the case."""

    code: str
    #: Namespace of the ids derived for what it sends (``core.Policy.id_namespace``).
    id_namespace: UUID = NAMESPACE
    chamber: str = "chamber"
    #: Who assigns questions and sends the minister's answers.
    secretariat: str = "gs"
    rules: tuple[AssignRule, ...] = ()
    default_assignee: str = "gs"
    #: Working days before the deadline at which the directorate is reminded.
    reminders: tuple[int, ...] = (7, 2)
    escalate_to: tuple[str, ...] = ("gs",)
    #: The directory's codes a question may be assigned to (empty: not checked). An
    #: assignee the router does not know would have the whole reminder or escalation
    #: refused as ``unknown_recipient``, the Secretariat's copy with it.
    assignable: frozenset[str] = frozenset()

    def assignee(self, subject: str) -> tuple[str, str]:
        """(directorate, the rule that chose it) for a question on ``subject``."""
        for rule in self.rules:
            if rule.matches(subject):
                return rule.to, f"rule {rule.name}"
        return self.default_assignee, "default"


@dataclass(frozen=True)
class QuestionCase:
    """One parliamentary question, from its arrival to its answer."""

    number: str
    deputy: str
    subject: str
    asked_on: date
    deadline: date
    due_at: datetime  # the end of the deadline day, Luxembourg time
    assigned_to: str
    assigned_by: str
    opened_at: datetime
    message_id: str
    answered_at: datetime | None = None
    answered_on: date | None = None
    answer_id: str | None = None
    days_late: int | None = None

    @property
    def open(self) -> bool:
        """Not answered yet."""
        return self.answered_at is None

    def overdue(self, now: datetime) -> bool:
        """Open and past its deadline at ``now``."""
        return self.open and now >= self.due_at


@dataclass(frozen=True)
class QuestionEffects:
    """What one message or deadline does to a case; applied in one transaction."""

    case: QuestionCase | None = None
    deadlines: tuple[Deadline, ...] = ()
    cancel: tuple[str, ...] = ()
    messages: tuple[Outgoing, ...] = ()


def number_of(payload: Payload) -> str | None:
    """The question a message concerns, or None."""
    if isinstance(payload, ParliamentaryQuestion | ParliamentaryAnswer | QuestionAssigned):
        return payload.question_number
    return None


def end_of_day(day: date) -> datetime:
    """The moment ``day`` ends in Luxembourg (DST-safe), as an aware datetime."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), LUXEMBOURG).astimezone(UTC)


def working_days_before(day: date, count: int) -> date:
    """The ``count``-th working day before ``day`` (``day`` itself never counts)."""
    remaining = count
    while remaining > 0:
        day -= timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def reminder_id(number: str, days: int) -> str:
    """The deadline id of the reminder ``days`` working days before question ``number``'s."""
    return f"question:{number}:reminder:{days}"


def overdue_id(number: str) -> str:
    """The deadline id of question ``number``'s escalation."""
    return f"question:{number}:overdue"


def fold_question(
    policy: QuestionPolicy,
    case: QuestionCase | None,
    envelope: Envelope[Payload],
    *,
    stamp: datetime,
) -> QuestionEffects:
    """The effects of one message on the case it names (``case`` as it stands, or None)."""
    payload, sender, now = envelope.payload, envelope.sender, envelope.created_at
    number = number_of(payload)
    if number is None:
        return QuestionEffects()
    reason: str
    if isinstance(payload, ParliamentaryQuestion):
        if sender != policy.chamber:
            reason = f"questions come from {policy.chamber}, not {sender}"
        elif case is not None:
            reason = "this question number is already open"
        else:
            return _open(policy, envelope, payload)
    elif sender != policy.secretariat:
        reason = f"{envelope.type} comes from {policy.secretariat}, not {sender}"
    elif case is None:
        reason = "no question with this number"
    elif not case.open:
        reason = "the question is already answered"
    elif (
        isinstance(payload, QuestionAssigned)
        and policy.assignable
        and payload.assigned_to not in policy.assignable
    ):
        reason = (
            f"{payload.assigned_to!r} is not in the directory: its reminders and the "
            f"escalation could not be delivered; the question stays with {case.assigned_to}"
        )
    elif isinstance(payload, QuestionAssigned):
        changed = replace(
            case, assigned_to=payload.assigned_to, assigned_by=f"{sender}/{envelope.message_id}"
        )
        return QuestionEffects(case=changed)
    else:
        assert isinstance(payload, ParliamentaryAnswer)
        # The answer's own date is the sender's word; it cannot be earlier than the day
        # the answer was sent, so a backdated answered_on hides no lateness.
        answered = max(payload.answered_on, local_date(now))
        late = (answered - case.deadline).days
        closed = replace(
            case,
            answered_at=now,
            answered_on=payload.answered_on,
            answer_id=str(envelope.message_id),
            days_late=max(late, 0),
        )
        cancel = (*(reminder_id(number, d) for d in policy.reminders), overdue_id(number))
        return QuestionEffects(case=closed, cancel=cancel)
    return QuestionEffects(messages=(_anomaly(policy, number, envelope, reason, stamp),))


def _open(
    policy: QuestionPolicy, envelope: Envelope[Payload], payload: ParliamentaryQuestion
) -> QuestionEffects:
    now = envelope.created_at
    number = payload.question_number
    assigned_to, assigned_by = policy.assignee(payload.subject)
    due = end_of_day(payload.answer_deadline)
    case = QuestionCase(
        number=number,
        deputy=payload.deputy,
        subject=payload.subject,
        asked_on=payload.asked_on,
        deadline=payload.answer_deadline,
        due_at=due,
        assigned_to=assigned_to,
        assigned_by=assigned_by,
        opened_at=now,
        message_id=str(envelope.message_id),
    )
    deadlines = [Deadline(overdue_id(number), QUESTION_PROCEDURE, number, due)]
    for days in policy.reminders:
        day = working_days_before(payload.answer_deadline, days)
        at = datetime.combine(day, WORKDAY_STARTS, LUXEMBOURG).astimezone(UTC)
        if at > now:  # a reminder already past when the question arrived is not sent late
            deadlines.append(Deadline(reminder_id(number, days), QUESTION_PROCEDURE, number, at))
    return QuestionEffects(case=case, deadlines=tuple(deadlines))


def _anomaly(
    policy: QuestionPolicy,
    number: str,
    envelope: Envelope[Payload],
    reason: str,
    stamp: datetime,
) -> Outgoing:
    notice = new_envelope(
        ProcedureAnomaly(
            procedure=QUESTION_PROCEDURE,
            file_reference=number,
            subject_message_id=envelope.message_id,
            subject_type=envelope.type,
            subject_sender=envelope.sender,
            reason=reason,
        ),
        sender=policy.code,
        recipients=(policy.secretariat,),
        correlation_id=envelope.correlation_id or envelope.message_id,
        causation_id=envelope.message_id,
        message_id=uuid5(policy.id_namespace, f"anomaly:{envelope.sender}/{envelope.message_id}"),
        created_at=stamp,
    )
    return Outgoing(notice)


def chase_question(
    policy: QuestionPolicy, case: QuestionCase, deadline: Deadline, *, stamp: datetime
) -> QuestionEffects:
    """A question's deadline fell due: a reminder to the directorate, or the one escalation."""
    if not case.open:
        return QuestionEffects(cancel=(deadline.id,))
    overdue = deadline.id == overdue_id(case.number)
    kind = ProcedureEscalation if overdue else ProcedureReminder
    recipients = (case.assigned_to, *policy.escalate_to) if overdue else (case.assigned_to,)
    when = "passed" if overdue else "falls"
    notice = new_envelope(
        kind(
            procedure=QUESTION_PROCEDURE,
            subject_message_id=UUID(case.message_id),
            subject_type="chamber.question",
            subject_sender=policy.chamber,
            due_at=case.due_at,
            waiting_on=(case.assigned_to,),
            awaited="chamber.answer",
            text=(
                f"question {case.number} ({case.subject[:120]}): the answer deadline "
                f"{case.deadline.isoformat()} {when}"
            ),
        ),
        sender=policy.code,
        recipients=tuple(r for r in dict.fromkeys(recipients) if r != policy.code),
        correlation_id=UUID(case.message_id),
        message_id=uuid5(
            policy.id_namespace, f"{'escalation' if overdue else 'reminder'}:{deadline.id}"
        ),
        created_at=stamp,
    )
    return QuestionEffects(messages=(Outgoing(notice),))


__all__ = [
    "QUESTION_PROCEDURE",
    "AssignRule",
    "QuestionCase",
    "QuestionEffects",
    "QuestionPolicy",
    "chase_question",
    "end_of_day",
    "fold_question",
    "number_of",
    "overdue_id",
    "reminder_id",
    "working_days_before",
]
