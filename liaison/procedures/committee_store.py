"""The committee's rows, read and written inside the store's transactions.

The budget line's row is locked (``FOR UPDATE`` on PostgreSQL) while a commitment
or payment is folded, so two services never both book the line's last euro as
available; a new commitment also takes a transaction lock on its reference
(PostgreSQL's advisory lock; SQLite has one writer), so two services never both
book one reference on two lines. Amounts are stored as exact decimal text and
summed in Python. A decision's reference is its row's primary key: it is never
replaced (the fold refuses a reuse; a race between two services fails the
second's insert, refused as any copy the service cannot apply).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select

from liaison.procedures import committee as c
from liaison.procedures import core
from liaison.procedures import tables as t
from schemas.envelope import Envelope
from schemas.types import Payload

ToOutbox = Callable[[Connection, core.Outgoing, str], None]


def consume(
    db: Connection,
    policy: core.Policy,
    envelope: Envelope[Payload],
    *,
    stamp: datetime,
    to_outbox: ToOutbox,
    source: str,
) -> c.CommitteeEffects:
    """Fold one committee copy and apply its effects in ``db``'s transaction."""
    effects = c.fold(policy, view(db, c.needs(envelope)), envelope, stamp=stamp)
    apply(db, effects, to_outbox=to_outbox, source=source)
    return effects


def view(db: Connection, needs: c.Needs) -> c.View:
    """The line (locked) with its entries, and the meeting, that a message concerns."""
    line: c.Line | None = None
    entries: tuple[c.Entry, ...] = ()
    meeting: c.Meeting | None = None
    commitment: c.Entry | None = None
    decision: c.Decision | None = None
    if needs.line is not None:
        code, year = needs.line
        row = db.execute(
            select(t.committee_line)
            .where(and_(t.committee_line.c.line == code, t.committee_line.c.year == year))
            .with_for_update()
        ).one_or_none()
        if row is not None:
            line = _line(row._mapping)
            entries = tuple(
                _entry(r._mapping)
                for r in db.execute(
                    select(t.committee_entry).where(
                        and_(t.committee_entry.c.line == code, t.committee_entry.c.year == year)
                    )
                ).all()
            )
    if needs.meeting is not None:
        row = db.execute(
            select(t.committee_meeting).where(t.committee_meeting.c.reference == needs.meeting)
        ).one_or_none()
        meeting = None if row is None else _meeting(row._mapping)
    if needs.commitment is not None:
        commitment = _commitment(db, needs.commitment)
    if needs.decision is not None:
        row = db.execute(
            select(t.committee_decision).where(t.committee_decision.c.reference == needs.decision)
        ).one_or_none()
        decision = None if row is None else _decision(row._mapping)
    return c.View(
        line=line, meeting=meeting, entries=entries, commitment=commitment, decision=decision
    )


def _commitment(db: Connection, reference: str) -> c.Entry | None:
    """The commitment booked under ``reference`` on any line, under a lock on the reference."""
    if db.dialect.name == "postgresql":
        # Held to the end of the transaction: a second service committing the same
        # reference (on another line, whose row it locked) waits here, then sees this one.
        db.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"commitment:{reference}"))))
    row = db.execute(
        select(t.committee_entry)
        .where(
            and_(t.committee_entry.c.kind == c.COMMIT, t.committee_entry.c.reference == reference)
        )
        .order_by(t.committee_entry.c.at, t.committee_entry.c.key)
        .limit(1)
    ).one_or_none()
    return None if row is None else _entry(row._mapping)


def apply(db: Connection, effects: c.CommitteeEffects, *, to_outbox: ToOutbox, source: str) -> None:
    """Write what the fold decided."""
    if effects.meeting is not None:
        m = effects.meeting
        db.execute(
            delete(t.committee_meeting).where(t.committee_meeting.c.reference == m.reference)
        )
        db.execute(
            t.committee_meeting.insert(),
            {
                "reference": m.reference,
                "meeting_on": m.meeting_on,
                "place": m.place,
                "agenda": json.dumps(list(m.agenda), ensure_ascii=False),
                "convened_key": m.convened_key,
                "minutes_adopted_on": m.minutes_adopted_on,
                "minutes_summary": m.minutes_summary,
            },
        )
    if effects.decision is not None:
        d = effects.decision
        # Never replaced: the fold refused a known reference; a race fails on the key.
        db.execute(
            t.committee_decision.insert(),
            {
                "reference": d.reference,
                "meeting_reference": d.meeting_reference,
                "text": d.text,
                "recorded_at": t.naive(d.recorded_at),
                "message_key": d.message_key,
            },
        )
    if effects.line is not None:
        line = effects.line
        db.execute(
            t.committee_line.insert(),
            {
                "line": line.line,
                "year": line.year,
                "label": line.label,
                "currency": line.currency,
                "budgeted": str(line.budgeted),
            },
        )
    if effects.entry is not None:
        e = effects.entry
        db.execute(
            t.committee_entry.insert(),
            {
                "key": e.key,
                "kind": e.kind,
                "line": e.line,
                "year": e.year,
                "reference": e.reference,
                "amount": str(e.amount),
                "currency": e.currency,
                "supporting_reference": e.supporting_reference,
                "at": t.naive(e.at),
                "overspend": e.overspend,
            },
        )
    for message in effects.messages:
        to_outbox(db, message, source)


def lines(db: Connection, year: int) -> list[c.Line]:
    """The budget lines of ``year``."""
    rows = db.execute(select(t.committee_line).where(t.committee_line.c.year == year)).all()
    return [_line(r._mapping) for r in rows]


def entries(db: Connection, year: int) -> list[c.Entry]:
    """The commitments and payments booked on ``year``'s lines, oldest first."""
    rows = db.execute(
        select(t.committee_entry)
        .where(t.committee_entry.c.year == year)
        .order_by(t.committee_entry.c.at, t.committee_entry.c.key)
    ).all()
    return [_entry(r._mapping) for r in rows]


def meetings(db: Connection, year: int | None = None) -> list[tuple[c.Meeting, list[c.Decision]]]:
    """The meetings (of ``year``, or all) by date, each with its decisions."""
    query = select(t.committee_meeting).order_by(
        t.committee_meeting.c.meeting_on, t.committee_meeting.c.reference
    )
    if year is not None:
        query = query.where(
            and_(
                t.committee_meeting.c.meeting_on >= date(year, 1, 1),
                t.committee_meeting.c.meeting_on <= date(year, 12, 31),
            )
        )
    result = []
    for row in db.execute(query).all():
        meeting = _meeting(row._mapping)
        decided = db.execute(
            select(t.committee_decision)
            .where(t.committee_decision.c.meeting_reference == meeting.reference)
            .order_by(t.committee_decision.c.recorded_at, t.committee_decision.c.reference)
        ).all()
        result.append(
            (
                meeting,
                [_decision(d._mapping) for d in decided],
            )
        )
    return result


def _line(row: Any) -> c.Line:
    return c.Line(row["line"], row["year"], row["label"], row["currency"], Decimal(row["budgeted"]))


def _entry(row: Any) -> c.Entry:
    return c.Entry(
        key=row["key"],
        kind=row["kind"],
        line=row["line"],
        year=row["year"],
        reference=row["reference"],
        amount=Decimal(row["amount"]),
        currency=row["currency"],
        supporting_reference=row["supporting_reference"],
        at=t.aware(row["at"]),
        overspend=bool(row["overspend"]),
    )


def _decision(row: Any) -> c.Decision:
    return c.Decision(
        row["reference"],
        row["meeting_reference"],
        row["text"],
        t.aware(row["recorded_at"]),
        row["message_key"],
    )


def _meeting(row: Any) -> c.Meeting:
    return c.Meeting(
        reference=row["reference"],
        meeting_on=row["meeting_on"],
        place=row["place"],
        agenda=tuple(json.loads(row["agenda"])),
        convened_key=row["convened_key"],
        minutes_adopted_on=row["minutes_adopted_on"],
        minutes_summary=row["minutes_summary"],
    )


__all__ = ["apply", "consume", "entries", "lines", "meetings", "view"]
