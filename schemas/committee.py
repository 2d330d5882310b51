"""The Comité de coordination pour l'installation d'institutions et d'organismes européens.

The General Secretariat chairs it and keeps its secretariat (meetings, agendas,
minutes, decisions) and its accounts: budget lines opened per year, expenses
committed against a line and then paid. Amounts are exact decimals written as JSON
strings (``"1250.00"``) with an ISO 4217 currency; a JSON number is refused, since a
binary float cannot hold a cent exactly.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import BeforeValidator, Field, StringConstraints, WithJsonSchema

from schemas.types import Line, Note, ParticipantCode, Payload, Reference, Text, TypeName

MAX_AGENDA = 60
MAX_AMOUNT = Decimal("1000000000000")


def _exact(value: Any) -> Any:
    # bool is an int: refuse it with the numbers, before pydantic coerces anything.
    if isinstance(value, float | int | bool):
        # A ValueError (not TypeError): pydantic reports it as the field's schema violation.
        raise ValueError('an amount is a decimal string such as "1250.00", never a JSON number')  # noqa: TRY004
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal amount") from None
        if not parsed.is_finite():
            raise ValueError("an amount must be finite")
        return parsed
    return value


#: A non-negative amount with at most 2 decimal places, from a decimal string.
Amount = Annotated[
    Decimal,
    BeforeValidator(_exact),
    Field(ge=0, le=MAX_AMOUNT, max_digits=15, decimal_places=2),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]{1,13}(\.[0-9]{1,2})?$", "maxLength": 16}),
]
#: A signed amount (what a line has left may be negative after an overspend).
SignedAmount = Annotated[
    Decimal,
    BeforeValidator(_exact),
    Field(ge=-2 * MAX_AMOUNT, le=MAX_AMOUNT, max_digits=16, decimal_places=2),
    WithJsonSchema(
        {"type": "string", "pattern": r"^-?[0-9]{1,13}(\.[0-9]{1,2})?$", "maxLength": 17}
    ),
]
#: ISO 4217 alphabetic currency code.
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
#: A budget line's code, e.g. ``6.1.2``.
BudgetLine = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9./-]*$")
]
Year = Annotated[int, Field(ge=2000, le=2100)]


class MeetingConvened(Payload):
    """A meeting of the committee is convened for a date, with its agenda."""

    message_type: ClassVar[str] = "committee.meeting_convened"
    version: ClassVar[int] = 1

    meeting_reference: Reference
    meeting_on: date
    place: Line | None = None
    agenda_items: tuple[Line, ...] = Field(min_length=1, max_length=MAX_AGENDA)


class MinutesAdopted(Payload):
    """The minutes of a meeting were adopted (at a later meeting)."""

    message_type: ClassVar[str] = "committee.minutes_adopted"
    version: ClassVar[int] = 1

    meeting_reference: Reference
    adopted_on: date
    summary: Text


class DecisionRecorded(Payload):
    """A decision the committee took at a meeting."""

    message_type: ClassVar[str] = "committee.decision_recorded"
    version: ClassVar[int] = 1

    meeting_reference: Reference
    decision_reference: Reference
    text: Text


class BudgetLineOpened(Payload):
    """A budget line is opened for a year with its amount."""

    message_type: ClassVar[str] = "committee.budget_line_opened"
    version: ClassVar[int] = 1

    line: BudgetLine
    year: Year
    label: Line
    amount: Amount
    currency: Currency


class ExpenseCommitted(Payload):
    """An expense is committed against a budget line of a year."""

    message_type: ClassVar[str] = "committee.expense_committed"
    version: ClassVar[int] = 1

    commitment_reference: Reference
    line: BudgetLine
    year: Year
    amount: Amount
    currency: Currency
    supporting_reference: Reference
    description: Note = ""


class ExpensePaid(Payload):
    """A committed expense is paid (in full or in part)."""

    message_type: ClassVar[str] = "committee.expense_paid"
    version: ClassVar[int] = 1

    commitment_reference: Reference
    line: BudgetLine
    year: Year
    amount: Amount
    currency: Currency
    supporting_reference: Reference
    paid_on: date


class OverspendEscalated(Payload):
    """Sent by the procedures service: an expense went over what its line (or commitment) had."""

    message_type: ClassVar[str] = "committee.overspend_escalated"
    version: ClassVar[int] = 1

    subject_message_id: UUID
    subject_sender: ParticipantCode
    subject_type: TypeName
    line: BudgetLine
    year: Year
    currency: Currency
    amount: Amount
    available: SignedAmount
    text: Line


MODELS: tuple[type[Payload], ...] = (
    MeetingConvened,
    MinutesAdopted,
    DecisionRecorded,
    BudgetLineOpened,
    ExpenseCommitted,
    ExpensePaid,
    OverspendEscalated,
)

__all__ = [
    "MODELS",
    "Amount",
    "BudgetLineOpened",
    "DecisionRecorded",
    "ExpenseCommitted",
    "ExpensePaid",
    "MeetingConvened",
    "MinutesAdopted",
    "OverspendEscalated",
]
