"""Read-only views of the procedures database: the register and the acknowledgements awaited.

Used by the CLI (``registry``, ``acks``), ``liaison status``, the dashboard and the
metrics. Registry search uses PostgreSQL's full-text search on the subject when
the database is PostgreSQL, and a case-insensitive substring match on SQLite.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select

from liaison.procedures import tables as t
from liaison.procedures.core import ACK_PROCEDURE


@dataclass(frozen=True)
class RegisterLine:
    """One registered letter or note, as the register shows it."""

    number: str
    registered_on: date
    registered_at: datetime
    type: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    classification: str
    sender_reference: str
    message_id: str
    in_reply_to: str | None
    thread_reference: str | None
    answers_number: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, dates as ISO strings."""
        data = asdict(self)
        data["registered_on"] = self.registered_on.isoformat()
        data["registered_at"] = self.registered_at.isoformat().replace("+00:00", "Z")
        data["recipients"] = list(self.recipients)
        return data


def _line(row: Any) -> RegisterLine:
    return RegisterLine(
        number=row.number,
        registered_on=row.registered_on,
        registered_at=t.aware(row.registered_at),
        type=row.type,
        sender=row.sender,
        recipients=tuple(row.recipients.split()),
        subject=row.subject,
        classification=row.classification,
        sender_reference=row.sender_reference,
        message_id=row.message_id,
        in_reply_to=row.in_reply_to,
        thread_reference=row.thread_reference,
        answers_number=row.answers_number,
    )


def entry(db: Connection, number: str) -> RegisterLine | None:
    """The register line of ``number``."""
    row = db.execute(select(t.registry).where(t.registry.c.number == number)).one_or_none()
    return None if row is None else _line(row)


def thread(db: Connection, number: str) -> list[RegisterLine]:
    """Every letter of ``number``'s thread (what it answers, what answers it), in order.

    A thread links letters by the number a reply answers (recorded only when its
    sender was a party to that letter; an id alone is not unique) and by a shared
    thread reference.
    """
    start = entry(db, number)
    if start is None:
        return []
    found = {start.number: start}
    frontier = [start]
    while frontier:
        current = frontier.pop()
        conditions = [t.registry.c.answers_number == current.number]
        if current.answers_number:
            conditions.append(t.registry.c.number == current.answers_number)
        for reference in {current.thread_reference, current.number} - {None}:
            conditions.append(t.registry.c.thread_reference == reference)
            conditions.append(t.registry.c.number == reference)
        for row in db.execute(select(t.registry).where(or_(*conditions))).all():
            line = _line(row)
            if line.number not in found:
                found[line.number] = line
                frontier.append(line)
    return sorted(found.values(), key=lambda line: (line.registered_at, line.number))


def search(
    db: Connection,
    *,
    since: date | None = None,
    sender: str | None = None,
    recipient: str | None = None,
    text: str | None = None,
    limit: int = 1_000,
) -> list[RegisterLine]:
    """Register lines matching every given criterion, oldest first."""
    query = select(t.registry)
    if since is not None:
        query = query.where(t.registry.c.registered_on >= since)
    if sender is not None:
        query = query.where(t.registry.c.sender == sender)
    if recipient is not None:
        # Codes are space-separated; pad both sides so "gs" does not match "gs-legal".
        padded = func.concat(" ", t.registry.c.recipients, " ")
        query = query.where(padded.contains(f" {recipient} "))
    if text:
        if db.dialect.name == "postgresql":
            query = query.where(
                func.to_tsvector("simple", t.registry.c.subject).bool_op("@@")(
                    func.plainto_tsquery("simple", text)
                )
            )
        else:
            query = query.where(func.lower(t.registry.c.subject).contains(text.lower()))
    query = query.order_by(t.registry.c.year, t.registry.c.sequence).limit(limit)
    return [_line(row) for row in db.execute(query).all()]


def year(db: Connection, year: int) -> list[RegisterLine]:
    """The whole register of ``year``, by sequence."""
    query = select(t.registry).where(t.registry.c.year == year).order_by(t.registry.c.sequence)
    return [_line(row) for row in db.execute(query).all()]


@dataclass(frozen=True)
class Awaited:
    """A message waiting for acknowledgements."""

    message_id: str
    type: str
    sender: str
    rule: str
    receipt: str
    opened_at: datetime
    due_at: datetime
    waiting_on: tuple[str, ...]
    overdue: bool
    escalated_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, times as ISO strings."""
        data = asdict(self)
        for name in ("opened_at", "due_at", "escalated_at"):
            value = data[name]
            data[name] = value.isoformat().replace("+00:00", "Z") if value else None
        data["waiting_on"] = list(self.waiting_on)
        return data


def pending(db: Connection, now: datetime, *, overdue_only: bool = False) -> list[Awaited]:
    """Messages with at least one acknowledgement still missing, earliest deadline first."""
    missing = (
        select(t.ack_expected.c.watch_key, t.ack_expected.c.recipient, t.ack_expected.c.position)
        .where(t.ack_expected.c.acknowledged_at.is_(None))
        .subquery()
    )
    query = (
        select(t.ack_watch, missing.c.recipient, t.deadline.c.fired_at)
        .join(missing, missing.c.watch_key == t.ack_watch.c.key)
        .join(
            t.deadline,
            (t.deadline.c.subject_key == t.ack_watch.c.key)
            & (t.deadline.c.procedure == ACK_PROCEDURE),
            isouter=True,
        )
        .order_by(t.ack_watch.c.due_at, t.ack_watch.c.key, missing.c.position)
    )
    if overdue_only:
        query = query.where(t.ack_watch.c.due_at <= t.naive(now))
    grouped: dict[str, tuple[Any, list[str]]] = {}
    for row in db.execute(query).all():
        grouped.setdefault(row.key, (row, []))[1].append(row.recipient)
    result = []
    for row, codes in grouped.values():
        due = t.aware(row.due_at)
        result.append(
            Awaited(
                message_id=row.message_id,
                type=row.type,
                sender=row.sender,
                rule=row.rule,
                receipt=row.receipt,
                opened_at=t.aware(row.opened_at),
                due_at=due,
                waiting_on=tuple(codes),
                overdue=due <= now,
                escalated_at=t.aware(row.fired_at) if row.fired_at else None,
            )
        )
    return result


def ack_counts(db: Connection, now: datetime) -> tuple[int, int]:
    """(messages awaiting acknowledgement, of which overdue)."""
    awaited = pending(db, now)
    return len(awaited), sum(1 for item in awaited if item.overdue)


__all__ = ["Awaited", "RegisterLine", "ack_counts", "entry", "pending", "search", "thread", "year"]
