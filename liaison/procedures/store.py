"""The procedures database: one code path for SQLite and PostgreSQL (SQLAlchemy Core).

Every delivered copy is applied in ONE transaction: the consumed-id row (unique,
so a redelivery applies nothing twice), the fold's changes, and the messages to
send written to the outbox with their final ids. Publishing happens after the
commit, from the outbox, so a crash between commit and ack re-sends the same
ids and nothing new.

Concurrency: on PostgreSQL the registry counter row is locked
(``SELECT … FOR UPDATE``) in that same transaction, so two services never hand
out one number twice nor leave a gap; a deadline fires through a conditional
``UPDATE … WHERE fired_at IS NULL``, so only one process wins it. SQLite has one
writer at a time (every transaction is ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import Connection, Engine, and_, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from liaison.errors import LiaisonError
from liaison.procedures import (
    case_store,
    committee,
    committee_store,
    core,
    release_store,
    releases,
    report_store,
    reports,
)
from liaison.procedures import tables as t
from liaison.procedures.database import (
    current_revision,
    first_line,
    head_revision,
    make_engine,
    safe_url,
    upgrade,
)
from schemas.envelope import Envelope
from schemas.types import Payload

log = structlog.get_logger("liaison.procedures.store")


class StoreError(LiaisonError):
    """The procedures database cannot be used (unreachable, unmigrated, refused)."""


@dataclass(frozen=True)
class OutboxRow:
    """One message waiting to be published (or already confirmed)."""

    message_id: str
    routing_key: str
    body: bytes
    headers: dict[str, str]


class Store:
    """The procedures' state, read and changed in transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pg = engine.dialect.name == "postgresql"
        # Statements built once, executed with parameter dicts: building a statement with
        # .values() for every copy cost more than running it.
        self._ignore: dict[str, Any] = {}
        self._consumed = self._insert_ignore(t.consumed).returning(t.consumed.c.key)
        self._counter = (
            select(t.registry_counter.c.last)
            .where(t.registry_counter.c.year == bindparam("y"))
            .with_for_update()
        )
        self._set_counter = (
            update(t.registry_counter)
            .where(t.registry_counter.c.year == bindparam("y"))
            .values(last=bindparam("n"))
        )

    @classmethod
    def open(cls, url: str, *, check: bool = True) -> Store:
        """Open ``url``; with ``check``, refuse a database not at the latest migration."""
        try:
            store = cls(make_engine(url))
            if check:
                store.check_migrated()
        except SQLAlchemyError as exc:
            raise StoreError(f"procedures database {safe_url(url)}: {first_line(exc)}") from None
        return store

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    # -- migrations -------------------------------------------------------------------

    def head(self) -> str:
        """The latest revision the package ships."""
        return head_revision()

    def revision(self) -> str | None:
        """The revision the database is at (``None``: never migrated)."""
        return current_revision(self.engine)

    def migrate(self) -> tuple[str | None, str]:
        """Apply every pending migration; (revision before, revision after)."""
        before = self.revision()
        upgrade(self.engine)
        return before, self.head()

    def check_migrated(self) -> None:
        """Raise StoreError unless the database is at the latest revision."""
        current, head = self.revision(), self.head()
        if current != head:
            raise StoreError(
                f"the procedures database is at revision {current or 'none'}, the service "
                f"needs {head}: run `liaison procedures migrate`"
            )

    # -- applying one delivered copy --------------------------------------------------

    def consume(
        self,
        policy: core.Policy,
        envelope: Envelope[Payload],
        *,
        stamp: datetime,
        token: str | None = None,
    ) -> bool:
        """Apply one delivered copy exactly once; False when it was applied before."""
        return self.consume_many(policy, [(envelope, token)], stamp=stamp)[0]

    def consume_many(
        self,
        policy: core.Policy,
        copies: list[tuple[Envelope[Payload], str | None]],
        *,
        stamp: datetime,
    ) -> list[bool]:
        """Apply delivered copies (with their receipt tokens) in ONE transaction, in order.

        Each is applied once: False for those applied before (by this or another
        process). One commit for a batch is what lets the service keep up; a later
        copy of the batch sees what an earlier one wrote.
        """
        applied: list[bool] = []
        with self.engine.begin() as db:
            for envelope, token in copies:
                key = core.message_key(envelope.sender, envelope.message_id)
                # RETURNING, not rowcount: drivers need not report rowcount for an INSERT.
                inserted = db.execute(
                    self._consumed,
                    {"key": key, "type": envelope.type, "created_at": t.naive(envelope.created_at)},
                ).scalar_one_or_none()
                if inserted is None:
                    applied.append(False)
                    if envelope.type == releases.DRAFT_TYPE:
                        self._draft_again(db, policy, envelope, stamp=stamp, key=key)
                    continue
                applied.append(True)
                try:
                    # A savepoint per copy: a message the procedures cannot apply (a bug, a
                    # value the database refuses) is refused alone, never rolls back its
                    # batch, never stops the service in a loop on the same delivery.
                    with db.begin_nested():
                        self._apply_copy(db, policy, envelope, token, stamp=stamp, key=key)
                except (OperationalError, InterfaceError):
                    raise  # the database itself is away: the batch goes back, nothing lost
                except Exception as exc:  # the last line of defence, as above
                    self._refuse_copy(db, policy, envelope, exc, stamp=stamp, key=key)
        return applied

    def _apply_copy(
        self,
        db: Connection,
        policy: core.Policy,
        envelope: Envelope[Payload],
        token: str | None,
        *,
        stamp: datetime,
        key: str,
    ) -> None:
        """Fold one copy into the procedure that follows its type."""
        if case_store.concerns(envelope.payload):
            case_store.consume(
                db, policy, envelope, stamp=stamp, to_outbox=self._to_outbox, source=key
            )
            return
        if releases.concerns(envelope.type):
            release_store.consume(
                db, policy, envelope, stamp=stamp, to_outbox=self._to_outbox, source=key
            )
            return
        if report_store.concerns(policy, envelope.type):
            report_store.consume(db, policy, envelope)
        if committee.concerns(envelope.type):
            committee_store.consume(
                db, policy, envelope, stamp=stamp, to_outbox=self._to_outbox, source=key
            )
            return
        view = self._view(db, core.needs(envelope))
        effects = core.fold(policy, view, envelope, stamp=stamp, token=token)
        self._apply(db, effects, source=key)

    def _draft_again(
        self,
        db: Connection,
        policy: core.Policy,
        envelope: Envelope[Payload],
        *,
        stamp: datetime,
        key: str,
    ) -> None:
        """A draft under a consumed key: refused if its words differ from the release held."""
        try:
            with db.begin_nested():
                release_store.consume_again(
                    db, policy, envelope, stamp=stamp, to_outbox=self._to_outbox, source=key
                )
        except (OperationalError, InterfaceError):
            raise
        except Exception:  # as in consume_many: never loop on one delivery
            log.exception("procedures.apply_failed", message=key, type=envelope.type)

    def _refuse_copy(
        self,
        db: Connection,
        policy: core.Policy,
        envelope: Envelope[Payload],
        exc: Exception,
        *,
        stamp: datetime,
        key: str,
    ) -> None:
        """Record that ``envelope`` was consumed but not applied, and tell its sender why."""
        log.error(
            "procedures.apply_failed",
            message=key,
            type=envelope.type,
            error=f"{type(exc).__name__}: {exc}"[:500],
        )
        reason = f"the procedures service could not apply it ({type(exc).__name__})"
        notice = core.refusal_notice(policy, envelope, "procedures", reason, stamp)
        self._to_outbox(db, notice, key)

    def _insert_ignore(self, table: Any) -> Any:
        statement = self._ignore.get(table.name)
        if statement is None:
            dialect = postgresql if self._pg else sqlite
            statement = self._ignore[table.name] = dialect.insert(table).on_conflict_do_nothing()
        return statement

    def _view(self, db: Connection, needs: core.Needs) -> core.View:
        last, answered = 0, None
        watches: tuple[core.Watch, ...] = ()
        if needs.year is not None:
            db.execute(self._insert_ignore(t.registry_counter), {"year": needs.year, "last": 0})
            last = int(db.execute(self._counter, {"y": needs.year}).scalar_one())
        if needs.answers is not None and needs.replier is not None:
            letters = db.execute(
                select(t.registry.c.number, t.registry.c.sender, t.registry.c.recipients)
                .where(t.registry.c.message_id == needs.answers)
                .order_by(t.registry.c.year, t.registry.c.sequence)
            ).all()
            answered = core.answered(
                needs.replier,
                ((row.number, row.sender, tuple(row.recipients.split())) for row in letters),
            )
        if needs.original is not None:
            rows = db.execute(
                select(t.ack_watch).where(t.ack_watch.c.message_id == needs.original)
            ).all()
            watches = tuple(self._watch(db, row._mapping) for row in rows)
        return core.View(last_sequence=last, answered_number=answered, watches=watches)

    def _watch(self, db: Connection, row: Any) -> core.Watch:
        expected = db.execute(
            select(t.ack_expected.c.recipient, t.ack_expected.c.acknowledged_at)
            .where(t.ack_expected.c.watch_key == row["key"])
            .order_by(t.ack_expected.c.position)
        ).all()
        return core.Watch(
            key=row["key"],
            message_id=row["message_id"],
            type=row["type"],
            sender=row["sender"],
            rule=row["rule"],
            receipt=row["receipt"],
            opened_at=t.aware(row["opened_at"]),
            due_at=t.aware(row["due_at"]),
            escalate_to=tuple(row["escalate_to"].split()),
            pending=frozenset(code for code, at in expected if at is None),
            expected=tuple(code for code, _ in expected),
        )

    def _apply(self, db: Connection, effects: core.Effects, *, source: str) -> None:
        if effects.register is not None:
            entry = effects.register
            db.execute(
                t.registry.insert(),
                {
                    "number": entry.number,
                    "year": entry.year,
                    "sequence": entry.sequence,
                    "message_key": entry.message_key,
                    "message_id": entry.message_id,
                    "type": entry.type,
                    "sender": entry.sender,
                    "recipients": " ".join(entry.recipients),
                    "subject": entry.subject,
                    "classification": entry.classification,
                    "registered_at": t.naive(entry.registered_at),
                    "registered_on": entry.registered_on,
                    "sender_reference": entry.sender_reference,
                    "in_reply_to": entry.in_reply_to,
                    "thread_reference": entry.thread_reference,
                    "answers_number": entry.answers_number,
                },
            )
        if effects.counter is not None:
            year, last = effects.counter
            db.execute(self._set_counter, {"y": year, "n": last})
        if effects.watch is not None:
            self._open_watch(db, effects.watch)
        for d in (effects.deadline, effects.reminder):
            if d is None:
                continue
            db.execute(
                t.deadline.insert().values(
                    id=d.id,
                    procedure=d.procedure,
                    subject_key=d.subject_key,
                    due_at=t.naive(d.due_at),
                    cancelled=False,
                )
            )
        for ack in effects.acks:
            db.execute(
                update(t.ack_expected)
                .where(
                    and_(
                        t.ack_expected.c.watch_key == ack.watch_key,
                        t.ack_expected.c.recipient == ack.recipient,
                        t.ack_expected.c.acknowledged_at.is_(None),
                    )
                )
                .values(acknowledged_at=t.naive(ack.at), receipt_id=ack.receipt_id)
            )
        for deadline_id in effects.cancel:
            db.execute(
                update(t.deadline)
                .where(and_(t.deadline.c.id == deadline_id, t.deadline.c.fired_at.is_(None)))
                .values(cancelled=True)
            )
        for deadline_id, at, message_id in effects.fired:
            db.execute(
                update(t.deadline)
                .where(t.deadline.c.id == deadline_id)
                .values(fired_at=t.naive(at), message_id=message_id)
            )
        for message in effects.messages:
            self._to_outbox(db, message, source)

    def _open_watch(self, db: Connection, watch: core.Watch) -> None:
        db.execute(
            t.ack_watch.insert().values(
                key=watch.key,
                message_id=watch.message_id,
                type=watch.type,
                sender=watch.sender,
                rule=watch.rule,
                receipt=watch.receipt,
                opened_at=t.naive(watch.opened_at),
                due_at=t.naive(watch.due_at),
                escalate_to=" ".join(watch.escalate_to),
            )
        )
        for position, code in enumerate(watch.expected):
            db.execute(
                t.ack_expected.insert().values(
                    watch_key=watch.key, recipient=code, position=position
                )
            )

    def _to_outbox(self, db: Connection, message: core.Outgoing, source: str) -> None:
        envelope = message.envelope
        db.execute(
            self._insert_ignore(t.outbox),
            {
                "message_id": str(envelope.message_id),
                "source": source,
                "routing_key": envelope.type,
                "body": envelope.encode(),
                "headers": json.dumps(message.headers, sort_keys=True),
                "created_at": t.naive(envelope.created_at),
            },
        )

    # -- deadlines --------------------------------------------------------------------

    def due(self, now: datetime, *, limit: int = 100) -> list[core.Deadline]:
        """Deadlines due at ``now`` that have neither fired nor been cancelled."""
        with self.engine.connect() as db:
            rows = db.execute(
                select(t.deadline)
                .where(
                    and_(
                        t.deadline.c.due_at <= t.naive(now),
                        t.deadline.c.fired_at.is_(None),
                        t.deadline.c.cancelled.is_(False),
                    )
                )
                .order_by(t.deadline.c.due_at, t.deadline.c.id)
                .limit(limit)
            ).all()
        return [core.Deadline(r.id, r.procedure, r.subject_key, t.aware(r.due_at)) for r in rows]

    def fire(self, policy: core.Policy, deadline: core.Deadline, *, stamp: datetime) -> bool:
        """Fire one due deadline once: claim it, fold, write the outbox; False if lost."""
        with self.engine.begin() as db:
            claimed = db.execute(
                update(t.deadline)
                .where(
                    and_(
                        t.deadline.c.id == deadline.id,
                        t.deadline.c.fired_at.is_(None),
                        t.deadline.c.cancelled.is_(False),
                    )
                )
                .values(fired_at=t.naive(stamp))
            )
            if claimed.rowcount != 1:
                return False
            if deadline.procedure == reports.REPORT_PROCEDURE:
                return report_store.fire(
                    db, policy, deadline, stamp=stamp, to_outbox=self._to_outbox
                )
            if deadline.procedure == releases.RELEASE_PROCEDURE:
                return release_store.fire(
                    db, policy, deadline, stamp=stamp, to_outbox=self._to_outbox
                )
            if deadline.procedure not in (core.ACK_PROCEDURE, core.ACK_REMINDER):
                return case_store.fire(db, policy, deadline, stamp=stamp, to_outbox=self._to_outbox)
            row = db.execute(
                select(t.ack_watch).where(t.ack_watch.c.key == deadline.subject_key)
            ).one()
            watch = self._watch(db, row._mapping)
            effects = core.act(policy, watch, deadline, stamp=stamp)
            if not effects.fired:  # nobody missing after all
                db.execute(
                    update(t.deadline)
                    .where(t.deadline.c.id == deadline.id)
                    .values(fired_at=None, cancelled=True)
                )
            self._apply(db, effects, source=deadline.id)
        return bool(effects.fired)

    def record_fired(
        self, envelope: Envelope[Payload], body: bytes, namespace: UUID = core.NAMESPACE
    ) -> bool:
        """Rebuild: the ledger shows the service sent this escalation or reminder (an
        acknowledgement's, or a treaty file's or question's); mark its deadline."""
        subject = core.message_key(
            str(getattr(envelope.payload, "subject_sender", "")),
            str(getattr(envelope.payload, "subject_message_id", "")),
        )
        kind = "remind" if envelope.type == "procedure.reminder" else "ack"
        deadline_id = f"{kind}:{subject}"
        with self.engine.begin() as db:
            if getattr(envelope.payload, "procedure", core.ACK_PROCEDURE) != core.ACK_PROCEDURE:
                deadline_id = case_store.deadline_sent(db, envelope, namespace) or deadline_id
            done = db.execute(
                update(t.deadline)
                .where(and_(t.deadline.c.id == deadline_id, t.deadline.c.fired_at.is_(None)))
                .values(fired_at=t.naive(envelope.created_at), message_id=str(envelope.message_id))
            )
            if done.rowcount != 1:
                return False
            db.execute(
                self._insert_ignore(t.outbox),
                {
                    "message_id": str(envelope.message_id),
                    "source": deadline_id,
                    "routing_key": envelope.type,
                    "body": body,
                    "headers": "{}",
                    "created_at": t.naive(envelope.created_at),
                },
            )
        return True

    def expect_reports(self, policy: core.Policy, now: datetime) -> None:
        """Open the current month's deadline of each expected periodic report (idempotent)."""
        if not policy.reports:
            return
        with self.engine.begin() as db:
            report_store.expect(db, policy, now)

    def record_report_fired(self, policy: core.Policy, deadline_id: str, envelope: Any) -> bool:
        """Rebuild: the ledger shows the escalation of a missing report; mark its deadline."""
        for expected in policy.reports:
            name = f"report:{expected.name}:"
            if not deadline_id.startswith(name):
                continue
            month = deadline_id.removeprefix(name)
            due = reports.deadline(expected, month)
            with self.engine.begin() as db:
                exists = db.execute(
                    select(t.deadline.c.id).where(t.deadline.c.id == due.id)
                ).scalar_one_or_none()
                if exists is None:
                    db.execute(
                        t.deadline.insert().values(
                            id=due.id,
                            procedure=due.procedure,
                            subject_key=due.subject_key,
                            due_at=t.naive(due.due_at),
                            cancelled=False,
                        )
                    )
                done = db.execute(
                    update(t.deadline)
                    .where(and_(t.deadline.c.id == due.id, t.deadline.c.fired_at.is_(None)))
                    .values(
                        fired_at=t.naive(envelope.created_at),
                        message_id=str(envelope.message_id),
                        cancelled=False,
                    )
                )
                self._to_outbox(db, core.Outgoing(envelope), due.id)
            return done.rowcount == 1
        return False

    # -- the outbox -------------------------------------------------------------------

    def unsent(self, source: str | list[str] | None = None, *, limit: int = 500) -> list[OutboxRow]:
        """Messages written but not yet confirmed (of some sources, or all), oldest first."""
        query = select(t.outbox).where(t.outbox.c.sent_at.is_(None))
        if isinstance(source, str):
            query = query.where(t.outbox.c.source == source)
        elif source is not None:
            query = query.where(t.outbox.c.source.in_(source))
        with self.engine.connect() as db:
            rows = db.execute(query.order_by(t.outbox.c.created_at).limit(limit)).all()
        return [
            OutboxRow(r.message_id, r.routing_key, bytes(r.body), json.loads(r.headers))
            for r in rows
        ]

    def mark_sent(self, message_ids: list[str], *, at: datetime) -> None:
        """The broker confirmed these."""
        if not message_ids:
            return
        with self.engine.begin() as db:
            db.execute(
                update(t.outbox)
                .where(t.outbox.c.message_id.in_(message_ids))
                .values(sent_at=t.naive(at))
            )

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for the read-only queries in ``queries``."""
        with self.engine.connect() as db:
            yield db


__all__ = ["OutboxRow", "Store", "StoreError", "make_engine"]
