"""Treaty files and question cases in the procedures database (SQLAlchemy Core).

Called by :class:`~liaison.procedures.store.Store` inside the transaction that
records a copy as consumed (or claims a deadline), so a file's change, its
deadlines and the notices it sends commit together or not at all.

Each file and case is one row: the columns the lists filter on (step, who is
waited on, deadline, answered) beside the whole state as a JSON document, which
the folds read back. The rebuild compares both, so a difference anywhere in a
file's timeline shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import Connection, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from liaison.procedures import core, questions, treaties
from liaison.procedures import tables as t
from schemas.envelope import Envelope
from schemas.treaties import TreatyStep
from schemas.types import Payload

ToOutbox = Callable[[Connection, core.Outgoing, str], None]


def treaty_policy(policy: core.Policy) -> treaties.TreatyPolicy:
    """The treaty procedure's policy (the defaults when the service was given none)."""
    return policy.treaties or treaties.TreatyPolicy(policy.code)


def question_policy(policy: core.Policy) -> questions.QuestionPolicy:
    """The question procedure's policy (the defaults when the service was given none)."""
    return policy.questions or questions.QuestionPolicy(policy.code)


def concerns(payload: Payload) -> bool:
    """Whether a message is for the treaty or the question procedure."""
    return treaties.reference_of(payload) is not None or questions.number_of(payload) is not None


def consume(
    db: Connection,
    policy: core.Policy,
    envelope: Envelope[Payload],
    *,
    stamp: datetime,
    to_outbox: ToOutbox,
    source: str,
) -> None:
    """Fold one copy into its treaty file or question case and write what it decided."""
    reference = treaties.reference_of(envelope.payload)
    if reference is not None:
        file = load_treaty(db, reference)
        effects = treaties.fold_treaty(treaty_policy(policy), file, envelope, stamp=stamp)
        if effects.file is not None:
            _save_treaty(db, effects.file, treaty_policy(policy).roles, exists=file is not None)
        _apply(db, effects.deadlines, effects.cancel, effects.messages, to_outbox, source)
        return
    number = questions.number_of(envelope.payload)
    if number is None:
        return
    case = load_question(db, number)
    q = questions.fold_question(question_policy(policy), case, envelope, stamp=stamp)
    if q.case is not None:
        _save_question(db, q.case, exists=case is not None)
    _apply(db, q.deadlines, q.cancel, q.messages, to_outbox, source)


def fire(
    db: Connection,
    policy: core.Policy,
    deadline: core.Deadline,
    *,
    stamp: datetime,
    to_outbox: ToOutbox,
) -> bool:
    """A claimed treaty or question deadline: send its reminder or escalation, or cancel it."""
    if deadline.procedure == treaties.TREATY_PROCEDURE:
        file = load_treaty(db, deadline.subject_key)
        effects = (
            treaties.escalate_treaty(treaty_policy(policy), file, deadline, stamp=stamp)
            if file is not None
            else treaties.TreatyEffects(cancel=(deadline.id,))
        )
        messages, cancel = effects.messages, effects.cancel
    else:
        case = load_question(db, deadline.subject_key)
        q = (
            questions.chase_question(question_policy(policy), case, deadline, stamp=stamp)
            if case is not None
            else questions.QuestionEffects(cancel=(deadline.id,))
        )
        messages, cancel = q.messages, q.cancel
    if not messages:
        db.execute(
            update(t.deadline)
            .where(t.deadline.c.id == deadline.id)
            .values(fired_at=None, cancelled=True)
        )
        return False
    (message,) = messages
    db.execute(
        update(t.deadline)
        .where(t.deadline.c.id == deadline.id)
        .values(fired_at=t.naive(stamp), message_id=str(message.envelope.message_id))
    )
    _apply(db, (), cancel, messages, to_outbox, deadline.id)
    return True


def deadline_sent(
    db: Connection, envelope: Envelope[Payload], namespace: UUID = core.NAMESPACE
) -> str | None:
    """The unfired deadline whose reminder or escalation ``envelope`` is (rebuild).

    Their ids are derived from the deadline's (uuid5), so the match is exact.
    """
    kind = "escalation" if envelope.type == "procedure.escalation" else "reminder"
    procedure = getattr(envelope.payload, "procedure", None)
    ids = db.execute(
        select(t.deadline.c.id).where(
            and_(t.deadline.c.procedure == procedure, t.deadline.c.fired_at.is_(None))
        )
    ).scalars()
    wanted = str(envelope.message_id)
    return next((i for i in ids if str(uuid5(namespace, f"{kind}:{i}")) == wanted), None)


def _apply(
    db: Connection,
    deadlines: tuple[core.Deadline, ...],
    cancel: tuple[str, ...],
    messages: tuple[core.Outgoing, ...],
    to_outbox: ToOutbox,
    source: str,
) -> None:
    insert = (postgresql if db.dialect.name == "postgresql" else sqlite).insert(t.deadline)
    for d in deadlines:
        db.execute(
            insert.on_conflict_do_nothing(),
            {
                "id": d.id,
                "procedure": d.procedure,
                "subject_key": d.subject_key,
                "due_at": t.naive(d.due_at),
                "cancelled": False,
            },
        )
    for deadline_id in cancel:
        db.execute(
            update(t.deadline)
            .where(and_(t.deadline.c.id == deadline_id, t.deadline.c.fired_at.is_(None)))
            .values(cancelled=True)
        )
    for message in messages:
        to_outbox(db, message, source)


# -- treaty files ---------------------------------------------------------------------


def load_treaty(db: Connection, reference: str) -> treaties.TreatyFile | None:
    """The file under ``reference``, or None."""
    row = db.execute(
        select(t.treaty_file.c.document).where(t.treaty_file.c.reference == reference)
    ).scalar_one_or_none()
    return None if row is None else treaty_from_json(json.loads(row))


def _save_treaty(
    db: Connection, file: treaties.TreatyFile, roles: treaties.Roles, *, exists: bool
) -> None:
    values = {
        "step": file.step.value if file.step is not None else None,
        "since": t.naive(file.since),
        "waiting_on": " ".join(file.waiting_on(roles)),
        "missing": len(file.missing),
        "anomalies": file.anomalies,
        "document": json.dumps(treaty_to_json(file), sort_keys=True, ensure_ascii=False),
    }
    if exists:
        db.execute(
            update(t.treaty_file).where(t.treaty_file.c.reference == file.reference).values(values)
        )
    else:
        db.execute(t.treaty_file.insert().values(reference=file.reference, **values))


def treaty_to_json(file: treaties.TreatyFile) -> dict[str, Any]:
    """A file as JSON (what ``treaties show --json`` prints and the row keeps)."""
    return {
        "reference": file.reference,
        "title": file.title,
        "opened_at": file.opened_at.isoformat(),
        "step": file.step.value if file.step is not None else None,
        "since": file.since.isoformat(),
        "first_vote_on": _iso(file.first_vote_on),
        "anomalies": file.anomalies,
        "contributions": [
            {
                "item": c.item,
                "from": c.from_code,
                "requested_at": c.requested_at.isoformat(),
                "due_at": c.due_at.isoformat(),
                "given_at": _iso(c.given_at),
                "waived_by": c.waived_by,
                "waiver_reason": c.waiver_reason,
            }
            for c in file.contributions
        ],
        "timeline": [
            {
                "at": e.at.isoformat(),
                "sender": e.sender,
                "message_id": e.message_id,
                "type": e.type,
                "what": e.what,
                "applied": e.applied,
            }
            for e in file.timeline
        ],
    }


def treaty_from_json(data: dict[str, Any]) -> treaties.TreatyFile:
    """The inverse of :func:`treaty_to_json`."""
    return treaties.TreatyFile(
        reference=data["reference"],
        title=data["title"],
        opened_at=datetime.fromisoformat(data["opened_at"]),
        step=TreatyStep(data["step"]) if data["step"] else None,
        since=datetime.fromisoformat(data["since"]),
        first_vote_on=_day(data.get("first_vote_on")),
        anomalies=data["anomalies"],
        contributions=tuple(
            treaties.Contribution(
                item=c["item"],
                from_code=c["from"],
                requested_at=datetime.fromisoformat(c["requested_at"]),
                due_at=datetime.fromisoformat(c["due_at"]),
                given_at=_dt(c["given_at"]),
                waived_by=c["waived_by"],
                waiver_reason=c["waiver_reason"],
            )
            for c in data["contributions"]
        ),
        timeline=tuple(
            treaties.Entry(
                at=datetime.fromisoformat(e["at"]),
                sender=e["sender"],
                message_id=e["message_id"],
                type=e["type"],
                what=e["what"],
                applied=e["applied"],
            )
            for e in data["timeline"]
        ),
    )


# -- question cases -------------------------------------------------------------------


def load_question(db: Connection, number: str) -> questions.QuestionCase | None:
    """The case of question ``number``, or None."""
    row = db.execute(
        select(t.question_case.c.document).where(t.question_case.c.number == number)
    ).scalar_one_or_none()
    return None if row is None else question_from_json(json.loads(row))


def _save_question(db: Connection, case: questions.QuestionCase, *, exists: bool) -> None:
    values = {
        "assigned_to": case.assigned_to,
        "deadline": case.deadline,
        "due_at": t.naive(case.due_at),
        "answered_at": t.naive(case.answered_at) if case.answered_at else None,
        "days_late": case.days_late,
        "document": json.dumps(question_to_json(case), sort_keys=True, ensure_ascii=False),
    }
    if exists:
        db.execute(
            update(t.question_case).where(t.question_case.c.number == case.number).values(values)
        )
    else:
        db.execute(t.question_case.insert().values(number=case.number, **values))


def question_to_json(case: questions.QuestionCase) -> dict[str, Any]:
    """A case as JSON."""
    return {
        "number": case.number,
        "deputy": case.deputy,
        "subject": case.subject,
        "asked_on": case.asked_on.isoformat(),
        "deadline": case.deadline.isoformat(),
        "due_at": case.due_at.isoformat(),
        "assigned_to": case.assigned_to,
        "assigned_by": case.assigned_by,
        "opened_at": case.opened_at.isoformat(),
        "message_id": case.message_id,
        "answered_at": _iso(case.answered_at),
        "answered_on": case.answered_on.isoformat() if case.answered_on else None,
        "answer_id": case.answer_id,
        "days_late": case.days_late,
    }


def question_from_json(data: dict[str, Any]) -> questions.QuestionCase:
    """The inverse of :func:`question_to_json`."""
    return questions.QuestionCase(
        number=data["number"],
        deputy=data["deputy"],
        subject=data["subject"],
        asked_on=date.fromisoformat(data["asked_on"]),
        deadline=date.fromisoformat(data["deadline"]),
        due_at=datetime.fromisoformat(data["due_at"]),
        assigned_to=data["assigned_to"],
        assigned_by=data["assigned_by"],
        opened_at=datetime.fromisoformat(data["opened_at"]),
        message_id=data["message_id"],
        answered_at=_dt(data["answered_at"]),
        answered_on=date.fromisoformat(data["answered_on"]) if data["answered_on"] else None,
        answer_id=data["answer_id"],
        days_late=data["days_late"],
    )


def _iso(moment: date | datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


__all__ = [
    "concerns",
    "consume",
    "deadline_sent",
    "fire",
    "load_question",
    "load_treaty",
    "question_from_json",
    "question_policy",
    "question_to_json",
    "treaty_from_json",
    "treaty_policy",
    "treaty_to_json",
]
