"""The Comité de coordination's register and accounts as a pure fold, and its accounts report.

The register: meetings (date, agenda), their minutes once adopted, decisions.
The accounts: per budget line and year, what was budgeted, committed and paid.
``remaining`` is budgeted - committed (a commitment reserves the money). A
commitment above what its line has left, or a payment above what its commitment
has unpaid, is RECORDED (the accounts show the overspend: nothing is hidden) and
ESCALATED (``committee.overspend_escalated`` to the sender and the General
Secretariat). What cannot be booked at all (an unknown line, another currency,
a payment of an unknown commitment, a line opened twice, a commitment reference
already used on any line or year, a decision reference already recorded) is
refused with a ``procedure.refusal`` and stays out of the accounts and the
register: nothing booked or recorded is ever replaced.

Amounts are ``Decimal`` throughout and stored as their exact text; totals are
sums of the recorded entries, so they add up by construction, which the tests
check against the messages themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import uuid5

from liaison.procedures.core import Outgoing, Policy, message_key, refusal_notice
from schemas.committee import (
    BudgetLineOpened,
    DecisionRecorded,
    ExpenseCommitted,
    ExpensePaid,
    MeetingConvened,
    MinutesAdopted,
    OverspendEscalated,
)
from schemas.envelope import Envelope, new_envelope
from schemas.types import Classification, Payload

COMMITTEE_PROCEDURE = "committee"
#: Who hears of an overspend besides the sender: the General Secretariat keeps the accounts.
ESCALATE_TO = ("gs",)
_MODELS = (
    MeetingConvened,
    MinutesAdopted,
    DecisionRecorded,
    BudgetLineOpened,
    ExpenseCommitted,
    ExpensePaid,
)
TYPES = frozenset(model.message_type for model in _MODELS)
COMMIT, PAY = "commitment", "payment"
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Meeting:
    """One meeting of the committee."""

    reference: str
    meeting_on: date
    place: str | None
    agenda: tuple[str, ...]
    convened_key: str
    minutes_adopted_on: date | None = None
    minutes_summary: str | None = None


@dataclass(frozen=True)
class Decision:
    """One decision, at a meeting."""

    reference: str
    meeting_reference: str
    text: str
    recorded_at: datetime
    message_key: str


@dataclass(frozen=True)
class Line:
    """A budget line of a year, with what was opened."""

    line: str
    year: int
    label: str
    currency: str
    budgeted: Decimal


@dataclass(frozen=True)
class Entry:
    """One commitment or payment, as booked."""

    key: str
    kind: str
    line: str
    year: int
    reference: str  # the commitment's reference
    amount: Decimal
    currency: str
    supporting_reference: str
    at: datetime
    overspend: bool


@dataclass(frozen=True)
class View:
    """What the fold reads: the line, the meeting, and the entries of the line."""

    line: Line | None = None
    meeting: Meeting | None = None
    entries: tuple[Entry, ...] = ()
    #: A commitment booked under the message's commitment reference, on any line or year.
    commitment: Entry | None = None
    #: The decision already recorded under the message's decision reference.
    decision: Decision | None = None


@dataclass(frozen=True)
class Needs:
    """Which line (line, year) and meeting a message concerns."""

    line: tuple[str, int] | None = None
    meeting: str | None = None
    commitment: str | None = None  # a new commitment's reference: unique across lines
    decision: str | None = None  # a decision's reference: unique


@dataclass(frozen=True)
class CommitteeEffects:
    """What one committee message changes."""

    meeting: Meeting | None = None
    decision: Decision | None = None
    line: Line | None = None
    entry: Entry | None = None
    messages: tuple[Outgoing, ...] = ()
    refused: str | None = None


def concerns(type_: str) -> bool:
    """Whether a delivered copy of ``type_`` belongs to this fold."""
    return type_ in TYPES


def needs(envelope: Envelope[Payload]) -> Needs:
    """The line and meeting to read before folding ``envelope``."""
    payload = envelope.payload
    if isinstance(payload, ExpenseCommitted):
        return Needs(line=(payload.line, payload.year), commitment=payload.commitment_reference)
    if isinstance(payload, BudgetLineOpened | ExpensePaid):
        return Needs(line=(payload.line, payload.year))
    if isinstance(payload, DecisionRecorded):
        return Needs(meeting=payload.meeting_reference, decision=payload.decision_reference)
    if isinstance(payload, MeetingConvened | MinutesAdopted):
        return Needs(meeting=payload.meeting_reference)
    return Needs()


def fold(
    policy: Policy, view: View, envelope: Envelope[Payload], *, stamp: datetime
) -> CommitteeEffects:
    """The effects of one committee message; ``stamp`` dates what is sent."""
    payload = envelope.payload
    if isinstance(payload, MeetingConvened | MinutesAdopted | DecisionRecorded):
        return _register(policy, view, envelope, payload, stamp)
    if isinstance(payload, BudgetLineOpened):
        if view.line is not None:
            return _refuse(
                policy, envelope, f"line {payload.line} is already open for {payload.year}", stamp
            )
        line = Line(payload.line, payload.year, payload.label, payload.currency, payload.amount)
        return CommitteeEffects(line=line)
    if isinstance(payload, ExpenseCommitted | ExpensePaid):
        return _book(policy, view, envelope, payload, stamp)
    return CommitteeEffects()


def _register(
    policy: Policy,
    view: View,
    envelope: Envelope[Payload],
    payload: MeetingConvened | MinutesAdopted | DecisionRecorded,
    stamp: datetime,
) -> CommitteeEffects:
    key = message_key(envelope.sender, envelope.message_id)
    if isinstance(payload, MeetingConvened):
        # Convening again (new date or agenda) replaces the notice; adopted minutes stay.
        old = view.meeting
        return CommitteeEffects(
            meeting=Meeting(
                reference=payload.meeting_reference,
                meeting_on=payload.meeting_on,
                place=payload.place,
                agenda=payload.agenda_items,
                convened_key=key,
                minutes_adopted_on=old.minutes_adopted_on if old else None,
                minutes_summary=old.minutes_summary if old else None,
            )
        )
    if isinstance(payload, MinutesAdopted):
        if view.meeting is None:
            return _refuse(policy, envelope, f"no meeting {payload.meeting_reference}", stamp)
        meeting = view.meeting
        return CommitteeEffects(
            meeting=Meeting(
                meeting.reference,
                meeting.meeting_on,
                meeting.place,
                meeting.agenda,
                meeting.convened_key,
                payload.adopted_on,
                payload.summary,
            )
        )
    if view.meeting is None:
        return _refuse(policy, envelope, f"no meeting {payload.meeting_reference}", stamp)
    if view.decision is not None:
        reason = (
            f"decision {payload.decision_reference} is already recorded (meeting "
            f"{view.decision.meeting_reference}): a decision reference names one decision"
        )
        return _refuse(policy, envelope, reason, stamp)
    decision = Decision(
        payload.decision_reference,
        payload.meeting_reference,
        payload.text,
        envelope.created_at,
        key,
    )
    return CommitteeEffects(decision=decision)


def _book(
    policy: Policy,
    view: View,
    envelope: Envelope[Payload],
    payload: ExpenseCommitted | ExpensePaid,
    stamp: datetime,
) -> CommitteeEffects:
    line = view.line
    if line is None:
        return _refuse(
            policy, envelope, f"line {payload.line} is not open for {payload.year}", stamp
        )
    if payload.currency != line.currency:
        reason = (
            f"line {line.line} ({line.year}) is kept in {line.currency}, not {payload.currency}"
        )
        return _refuse(policy, envelope, reason, stamp)
    reference = payload.commitment_reference
    commitments = [e for e in view.entries if e.kind == COMMIT and e.reference == reference]
    if isinstance(payload, ExpenseCommitted):
        reused = _reused(reference, commitments, view.commitment)
        if reused is not None:
            return _refuse(policy, envelope, reused, stamp)
        kind, available = COMMIT, line.budgeted - _sum(view.entries, COMMIT)
    else:
        if not commitments:
            reason = f"no commitment {reference} on line {line.line} ({line.year})"
            return _refuse(policy, envelope, reason, stamp)
        paid = _sum((e for e in view.entries if e.reference == reference), PAY)
        kind, available = PAY, commitments[0].amount - paid
    entry = Entry(
        key=message_key(envelope.sender, envelope.message_id),
        kind=kind,
        line=line.line,
        year=line.year,
        reference=reference,
        amount=payload.amount,
        currency=payload.currency,
        supporting_reference=payload.supporting_reference,
        at=envelope.created_at,
        overspend=payload.amount > available,
    )
    if not entry.overspend:
        return CommitteeEffects(entry=entry)
    what = "line" if kind == COMMIT else f"commitment {reference}"
    alert = new_envelope(
        OverspendEscalated(
            subject_message_id=envelope.message_id,
            subject_sender=envelope.sender,
            subject_type=envelope.type,
            line=line.line,
            year=line.year,
            currency=line.currency,
            amount=payload.amount,
            available=available,
            text=(
                f"{kind} {reference} of {payload.amount} {line.currency} exceeds what its "
                f"{what} has left ({available} {line.currency}) on line {line.line} ({line.year})"
            ),
        ),
        sender=policy.code,
        recipients=_present(policy, (envelope.sender, *ESCALATE_TO)),
        correlation_id=envelope.correlation_id or envelope.message_id,
        causation_id=envelope.message_id,
        message_id=uuid5(policy.id_namespace, f"overspend:{entry.key}"),
        created_at=stamp,
        classification=Classification.RESTRICTED,
    )
    return CommitteeEffects(entry=entry, messages=(Outgoing(alert),))


def _reused(reference: str, on_line: list[Entry], anywhere: Entry | None) -> str | None:
    """Why a new commitment cannot take ``reference`` (None when it is free)."""
    if on_line:
        return f"commitment {reference} already exists"
    if anywhere is not None:
        return (
            f"commitment {reference} already exists on line {anywhere.line} ({anywhere.year}): "
            "a commitment reference names one commitment"
        )
    return None


def _present(policy: Policy, codes: Iterable[str]) -> tuple[str, ...]:
    return tuple(c for c in dict.fromkeys(codes) if c != policy.code and c in policy.directory)


def _sum(entries: Iterable[Entry], kind: str) -> Decimal:
    return sum((e.amount for e in entries if e.kind == kind), ZERO)


def _refuse(
    policy: Policy, envelope: Envelope[Payload], reason: str, stamp: datetime
) -> CommitteeEffects:
    notice = refusal_notice(policy, envelope, COMMITTEE_PROCEDURE, reason, stamp)
    return CommitteeEffects(messages=(notice,), refused=reason)


# -- the accounts report ----------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    """One line of the accounts: budgeted, committed, paid, remaining (= budgeted - committed)."""

    line: str
    label: str
    currency: str
    budgeted: Decimal
    committed: Decimal
    paid: Decimal
    overspends: int

    @property
    def remaining(self) -> Decimal:
        """What is left to commit; negative after an overspend."""
        return self.budgeted - self.committed


def accounts(lines: Iterable[Line], entries: Iterable[Entry]) -> list[AccountRow]:
    """One row per line, in line order (entries of lines not given are ignored)."""
    booked: dict[tuple[str, int], list[Entry]] = {}
    for entry in entries:
        booked.setdefault((entry.line, entry.year), []).append(entry)
    rows = []
    for line in sorted(lines, key=lambda x: (x.year, x.line)):
        mine = booked.get((line.line, line.year), [])
        rows.append(
            AccountRow(
                line=line.line,
                label=line.label,
                currency=line.currency,
                budgeted=line.budgeted,
                committed=_sum(mine, COMMIT),
                paid=_sum(mine, PAY),
                overspends=sum(1 for e in mine if e.overspend),
            )
        )
    return rows


def totals(rows: Iterable[AccountRow]) -> dict[str, dict[str, Decimal]]:
    """Per currency: the sums of budgeted, committed, paid and remaining over the rows."""
    result: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        total = result.setdefault(
            row.currency, {"budgeted": ZERO, "committed": ZERO, "paid": ZERO, "remaining": ZERO}
        )
        total["budgeted"] += row.budgeted
        total["committed"] += row.committed
        total["paid"] += row.paid
        total["remaining"] += row.remaining
    return result


__all__ = [
    "COMMIT",
    "COMMITTEE_PROCEDURE",
    "PAY",
    "TYPES",
    "AccountRow",
    "CommitteeEffects",
    "Decision",
    "Entry",
    "Line",
    "Meeting",
    "Needs",
    "View",
    "accounts",
    "concerns",
    "fold",
    "needs",
    "totals",
]
