"""Expected reports' deadline rows, inside the store's transactions (see ``reports.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, and_, select, update

from liaison.procedures import core, reports
from liaison.procedures import tables as t
from schemas.envelope import Envelope
from schemas.types import Payload

ToOutbox = Callable[[Connection, core.Outgoing, str], None]


def concerns(policy: core.Policy, type_: str) -> bool:
    """Whether a copy of ``type_`` may settle an expected report."""
    return any(expected.type == type_ for expected in policy.reports)


def consume(db: Connection, policy: core.Policy, envelope: Envelope[Payload]) -> None:
    """A report came: its month's deadline is settled (cancelled, or created cancelled)."""
    for expected in policy.reports:
        due = reports.received(expected, envelope)
        if due is None:
            continue
        exists = db.execute(
            select(t.deadline.c.id).where(t.deadline.c.id == due.id)
        ).scalar_one_or_none()
        if exists is None:
            _insert(db, due, cancelled=True)
        else:
            db.execute(
                update(t.deadline)
                .where(and_(t.deadline.c.id == due.id, t.deadline.c.fired_at.is_(None)))
                .values(cancelled=True)
            )


def expect(db: Connection, policy: core.Policy, now: datetime) -> None:
    """Make sure the current month's report has its deadline row (idempotent)."""
    for expected in policy.reports:
        due = reports.current(expected, now)
        exists = db.execute(
            select(t.deadline.c.id).where(t.deadline.c.id == due.id)
        ).scalar_one_or_none()
        if exists is None:
            _insert(db, due, cancelled=False)


def fire(
    db: Connection,
    policy: core.Policy,
    deadline: core.Deadline,
    *,
    stamp: datetime,
    to_outbox: ToOutbox,
) -> bool:
    """The claimed deadline of a report fell due: one escalation."""
    name = deadline.id.split(":")[1]
    expected = next((e for e in policy.reports if e.name == name), None)
    if expected is None:
        return False
    effects = reports.escalate(policy, expected, deadline, stamp=stamp)
    for deadline_id, _at, message_id in effects.fired:
        db.execute(
            update(t.deadline).where(t.deadline.c.id == deadline_id).values(message_id=message_id)
        )
    for message in effects.messages:
        to_outbox(db, message, deadline.id)
    return True


def _insert(db: Connection, due: core.Deadline, *, cancelled: bool) -> None:
    db.execute(
        t.deadline.insert().values(
            id=due.id,
            procedure=due.procedure,
            subject_key=due.subject_key,
            due_at=t.naive(due.due_at),
            cancelled=cancelled,
        )
    )


__all__ = ["concerns", "consume", "expect", "fire"]
