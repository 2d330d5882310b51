"""The committee's register and accounts as a pure fold; accounts checked against the messages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.directory import load_directory
from liaison.procedures import committee as c
from liaison.procedures import core
from liaison.procedures.config import AckRules
from schemas.catalog import default_registry
from schemas.committee import (
    BudgetLineOpened,
    DecisionRecorded,
    ExpenseCommitted,
    ExpensePaid,
    MeetingConvened,
    MinutesAdopted,
)
from schemas.envelope import Envelope, new_envelope
from schemas.errors import ContractError
from schemas.types import Payload

DIRECTORY = load_directory()
POLICY = core.Policy("gs-procedures", "MAEE", DIRECTORY, AckRules.load(None, DIRECTORY))
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def msg(payload: Payload, n: int = 0) -> Envelope[Any]:
    return new_envelope(
        payload, sender="cciioe", recipients=("gs",), created_at=T0 + timedelta(minutes=n)
    )


def opened(amount: str = "1000.00", line: str = "6.1.2") -> BudgetLineOpened:
    return BudgetLineOpened(
        line=line, year=2026, label="Locaux", amount=Decimal(amount), currency="EUR"
    )


def commit(ref: str, amount: str, line: str = "6.1.2", currency: str = "EUR") -> ExpenseCommitted:
    return ExpenseCommitted(
        commitment_reference=ref,
        line=line,
        year=2026,
        amount=Decimal(amount),
        currency=currency,
        supporting_reference=f"BC-{ref}",
    )


def pay(ref: str, amount: str, line: str = "6.1.2") -> ExpensePaid:
    return ExpensePaid(
        commitment_reference=ref,
        line=line,
        year=2026,
        amount=Decimal(amount),
        currency="EUR",
        supporting_reference=f"FAC-{ref}",
        paid_on=date(2026, 4, 1),
    )


class Books:
    """An in-memory store for the fold: lines, entries, meetings, what was sent."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, int], c.Line] = {}
        self.entries: list[c.Entry] = []
        self.meetings: dict[str, c.Meeting] = {}
        self.decisions: list[c.Decision] = []
        self.sent: list[Envelope[Any]] = []

    def deliver(self, envelope: Envelope[Any]) -> c.CommitteeEffects:
        needs = c.needs(envelope)
        line = self.lines.get(needs.line) if needs.line else None
        view = c.View(
            line=line,
            meeting=self.meetings.get(needs.meeting) if needs.meeting else None,
            entries=tuple(e for e in self.entries if needs.line == (e.line, e.year)),
            commitment=next(
                (e for e in self.entries if e.kind == c.COMMIT and e.reference == needs.commitment),
                None,
            ),
            decision=next((d for d in self.decisions if d.reference == needs.decision), None),
        )
        effects = c.fold(POLICY, view, envelope, stamp=envelope.created_at)
        if effects.line:
            self.lines[(effects.line.line, effects.line.year)] = effects.line
        if effects.entry:
            self.entries.append(effects.entry)
        if effects.meeting:
            self.meetings[effects.meeting.reference] = effects.meeting
        if effects.decision:
            self.decisions.append(effects.decision)
        self.sent.extend(m.envelope for m in effects.messages)
        return effects

    def accounts(self) -> list[c.AccountRow]:
        return c.accounts(self.lines.values(), self.entries)


def test_a_commitment_over_the_line_is_recorded_and_escalated() -> None:
    books = Books()
    books.deliver(msg(opened("1000.00")))
    assert books.deliver(msg(commit("E1", "600.00"), 1)).messages == ()
    effects = books.deliver(msg(commit("E2", "400.01"), 2))
    assert effects.entry is not None and effects.entry.overspend
    [alert] = books.sent
    assert alert.type == "committee.overspend_escalated"
    assert set(alert.recipients) == {"cciioe", "gs"}
    assert alert.payload.available == Decimal("400.00")
    [row] = books.accounts()
    assert (row.budgeted, row.committed, row.paid, row.remaining) == (
        Decimal("1000.00"),
        Decimal("1000.01"),
        Decimal("0"),
        Decimal("-0.01"),
    )
    assert row.overspends == 1


def test_a_payment_over_its_commitment_is_escalated() -> None:
    books = Books()
    books.deliver(msg(opened()))
    books.deliver(msg(commit("E1", "100.00"), 1))
    assert books.deliver(msg(pay("E1", "60.00"), 2)).messages == ()
    effects = books.deliver(msg(pay("E1", "40.01"), 3))
    assert effects.entry is not None and effects.entry.overspend
    assert [e.type for e in books.sent] == ["committee.overspend_escalated"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (commit("E1", "1.00", line="9.9"), "line 9.9 is not open for 2026"),
        (commit("E1", "1.00", currency="USD"), "line 6.1.2 (2026) is kept in EUR, not USD"),
        (pay("E9", "1.00"), "no commitment E9 on line 6.1.2 (2026)"),
        (opened(), "line 6.1.2 is already open for 2026"),
    ],
)
def test_what_cannot_be_booked_is_refused_with_a_reason(payload: Payload, reason: str) -> None:
    books = Books()
    books.deliver(msg(opened()))
    effects = books.deliver(msg(payload, 1))
    assert effects.refused == reason
    assert [e.type for e in books.sent] == ["procedure.refusal"]
    [row] = books.accounts()
    assert (row.committed, row.paid) == (0, 0)


def test_a_float_amount_is_refused_at_the_contract() -> None:
    envelope = msg(commit("E1", "12.50"))
    raw = envelope.encode().replace(b'"amount":"12.50"', b'"amount":12.5')
    assert b'"amount":12.5' in raw
    with pytest.raises(ContractError, match="never a JSON number"):
        default_registry().decode(raw)


def test_register_of_meetings_minutes_and_decisions() -> None:
    books = Books()
    books.deliver(
        msg(
            MeetingConvened(
                meeting_reference="M-1", meeting_on=date(2026, 3, 18), agenda_items=("a", "b")
            )
        )
    )
    books.deliver(
        msg(DecisionRecorded(meeting_reference="M-1", decision_reference="D-1", text="Oui"), 1)
    )
    books.deliver(
        msg(MinutesAdopted(meeting_reference="M-1", adopted_on=date(2026, 4, 1), summary="ok"), 2)
    )
    meeting = books.meetings["M-1"]
    assert meeting.agenda == ("a", "b") and meeting.minutes_adopted_on == date(2026, 4, 1)
    assert [d.reference for d in books.decisions] == ["D-1"]
    refused = books.deliver(
        msg(MinutesAdopted(meeting_reference="M-9", adopted_on=date(2026, 4, 1), summary="?"), 3)
    )
    assert refused.refused == "no meeting M-9"


def test_a_commitment_reference_names_one_commitment_across_lines_and_years() -> None:
    books = Books()
    books.deliver(msg(opened(line="6.1.1")))
    books.deliver(msg(opened(line="6.1.2")))
    books.deliver(
        msg(
            BudgetLineOpened(
                line="6.1.2", year=2027, label="Locaux", amount=Decimal("9.00"), currency="EUR"
            )
        )
    )
    assert books.deliver(msg(commit("E1", "100.00", line="6.1.1"), 1)).entry is not None
    other_line = books.deliver(msg(commit("E1", "5.00", line="6.1.2"), 2))
    assert other_line.refused == (
        "commitment E1 already exists on line 6.1.1 (2026): "
        "a commitment reference names one commitment"
    )
    next_year = commit("E1", "5.00").model_copy(update={"year": 2027})
    assert books.deliver(msg(next_year, 3)).refused == other_line.refused
    assert [e.type for e in books.sent] == ["procedure.refusal", "procedure.refusal"]
    assert [(e.line, e.year) for e in books.entries] == [("6.1.1", 2026)]
    # A payment of E1 on another line names no commitment there: refused, as before.
    assert books.deliver(msg(pay("E1", "1.00", line="6.1.2"), 4)).refused is not None


def test_a_decision_reference_reused_is_refused_and_the_decision_stands() -> None:
    books = Books()
    for n, reference in enumerate(("M-1", "M-2")):
        convened = MeetingConvened(
            meeting_reference=reference, meeting_on=date(2026, 3, 18), agenda_items=("a",)
        )
        books.deliver(msg(convened, n))
    first = DecisionRecorded(meeting_reference="M-1", decision_reference="D-1", text="Oui")
    assert books.deliver(msg(first, 2)).decision is not None
    for n, meeting in enumerate(("M-1", "M-2"), 3):
        again = DecisionRecorded(meeting_reference=meeting, decision_reference="D-1", text="Non")
        effects = books.deliver(msg(again, n))
        assert effects.decision is None
        assert effects.refused == (
            "decision D-1 is already recorded (meeting M-1): "
            "a decision reference names one decision"
        )
    assert [(d.meeting_reference, d.text) for d in books.decisions] == [("M-1", "Oui")]
    assert [e.type for e in books.sent] == ["procedure.refusal", "procedure.refusal"]


_amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)
_ops = st.lists(
    st.tuples(
        st.sampled_from(["commit", "pay"]),
        st.sampled_from(["6.1.1", "6.1.2", "9.9.9"]),  # 9.9.9 is never opened
        st.integers(0, 5),  # commitment reference
        _amounts,
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(budgets=st.tuples(_amounts, _amounts), ops=_ops)
def test_accounts_add_up_to_the_messages(budgets: tuple[Decimal, Decimal], ops: list[Any]) -> None:
    """Totals equal the sums of the individual booked messages; every overspend is escalated."""
    books = Books()
    books.deliver(msg(opened(str(budgets[0]), "6.1.1")))
    books.deliver(msg(opened(str(budgets[1]), "6.1.2")))
    booked: list[tuple[str, str, Decimal]] = []
    for n, (kind, line, ref, amount) in enumerate(ops, 1):
        payload = (
            commit(f"E{ref}", str(amount), line)
            if kind == "commit"
            else pay(f"E{ref}", str(amount), line)
        )
        effects = books.deliver(msg(payload, n))
        if effects.entry is not None:
            booked.append((kind, line, amount))
        else:
            assert effects.refused
    rows = {row.line: row for row in books.accounts()}
    for line in ("6.1.1", "6.1.2"):
        row = rows[line]
        assert row.committed == sum((a for k, x, a in booked if k == "commit" and x == line), 0)
        assert row.paid == sum((a for k, x, a in booked if k == "pay" and x == line), 0)
        assert row.remaining == row.budgeted - row.committed
    [total] = c.totals(rows.values()).values()
    assert total["budgeted"] == budgets[0] + budgets[1]
    assert total["committed"] == sum((a for k, _, a in booked if k == "commit"), 0)
    assert total["paid"] == sum((a for k, _, a in booked if k == "pay"), 0)
    assert total["remaining"] == total["budgeted"] - total["committed"]
    overspends = sum(r.overspends for r in rows.values())
    escalations = [e for e in books.sent if e.type == "committee.overspend_escalated"]
    assert overspends == len(escalations)
    # Without an overspend, no line is ever committed beyond its budget.
    for row in rows.values():
        if row.overspends == 0:
            assert row.remaining >= 0
