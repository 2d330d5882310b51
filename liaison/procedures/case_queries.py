"""Read-only views of treaty files and question cases: the CLI, status, metrics.

Lists filter on the row's columns; the whole file or case comes back from its
JSON document, exactly as the fold left it.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, and_, func, select

from liaison.procedures import case_store, questions, treaties
from liaison.procedures import tables as t


def treaty_files(
    db: Connection, *, waiting_on: str | None = None, step: str | None = None
) -> list[treaties.TreatyFile]:
    """Treaty files, by reference; narrowed to who they wait on and the step they are at."""
    query = select(t.treaty_file.c.document, t.treaty_file.c.waiting_on)
    if step is not None:
        query = query.where(
            t.treaty_file.c.step.is_(None) if step == "signed" else t.treaty_file.c.step == step
        )
    rows = db.execute(query.order_by(t.treaty_file.c.reference)).all()
    return [
        case_store.treaty_from_json(json.loads(row.document))
        for row in rows
        if waiting_on is None or waiting_on in row.waiting_on.split()
    ]


def question_cases(
    db: Connection,
    now: datetime,
    *,
    open_only: bool = False,
    overdue_only: bool = False,
    assigned: str | None = None,
) -> list[questions.QuestionCase]:
    """Question cases by deadline; narrowed to open, overdue at ``now``, or one directorate."""
    query = select(t.question_case.c.document)
    if open_only or overdue_only:
        query = query.where(t.question_case.c.answered_at.is_(None))
    if overdue_only:
        query = query.where(t.question_case.c.due_at <= t.naive(now))
    if assigned is not None:
        query = query.where(t.question_case.c.assigned_to == assigned)
    rows = db.execute(query.order_by(t.question_case.c.due_at, t.question_case.c.number))
    return [case_store.question_from_json(json.loads(doc)) for doc in rows.scalars()]


def question_counts(db: Connection, now: datetime) -> tuple[int, int]:
    """(open, overdue) question cases at ``now``: the gauges and the status breach."""
    open_ = t.question_case.c.answered_at.is_(None)
    total = db.execute(select(func.count()).where(open_)).scalar_one()
    late = db.execute(
        select(func.count()).where(and_(open_, t.question_case.c.due_at <= t.naive(now)))
    ).scalar_one()
    return int(total), int(late)


def treaty_counts(db: Connection) -> dict[tuple[str, str], int]:
    """Files by (step, who they wait on): the dashboard panel and the gauge."""
    rows = db.execute(
        select(t.treaty_file.c.step, t.treaty_file.c.waiting_on, func.count()).group_by(
            t.treaty_file.c.step, t.treaty_file.c.waiting_on
        )
    ).all()
    return {(step or "signed", waiting or "-"): int(n) for step, waiting, n in rows}


__all__ = ["question_cases", "question_counts", "treaty_counts", "treaty_files"]
