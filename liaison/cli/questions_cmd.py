"""``liaison questions``: parliamentary questions followed to their answer deadline."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from liaison.cli import Context, pass_context
from liaison.cli.procedures_cmd import _store

if TYPE_CHECKING:
    from liaison.procedures.questions import QuestionCase


@click.group()
def questions() -> None:
    """Parliamentary questions: who answers, by when, and which are late."""


@questions.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only questions not yet answered.")
@click.option("--overdue", is_flag=True, help="Only open questions past their deadline.")
@click.option("--assigned", metavar="CODE", help="Only questions assigned to CODE.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def list_(
    obj: Context, open_only: bool, overdue: bool, assigned: str | None, as_json: bool
) -> None:
    """Questions by deadline, with the directorate that answers and whether it is late."""
    from liaison.procedures import case_queries, case_store  # noqa: PLC0415

    now = datetime.now(UTC)
    with _store(obj) as store, store.reading() as db:
        cases = case_queries.question_cases(
            db, now, open_only=open_only, overdue_only=overdue, assigned=assigned
        )
    if as_json:
        out = [{**case_store.question_to_json(c), "overdue": c.overdue(now)} for c in cases]
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if not cases:
        click.echo("no question")
    for c in cases:
        click.echo(
            f"{c.number:<10} {_state(c, now):<18} due {c.deadline}  {c.assigned_to:<16} {c.subject}"
        )


def _state(case: QuestionCase, now: datetime) -> str:
    if not case.open:
        return f"answered, {case.days_late}d late" if case.days_late else "answered on time"
    return "OVERDUE" if case.overdue(now) else "open"


@questions.command()
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def show(obj: Context, number: str, as_json: bool) -> None:
    """One question: deputy, subject, assignment, deadline, answer and lateness."""
    from liaison.procedures import case_store  # noqa: PLC0415

    now = datetime.now(UTC)
    with _store(obj) as store, store.reading() as db:
        case = case_store.load_question(db, number)
    if case is None:
        raise click.ClickException(f"no question {number!r}")
    if as_json:
        data = {**case_store.question_to_json(case), "overdue": case.overdue(now)}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(f"question {case.number} by {case.deputy}: {case.subject}")
    click.echo(f"  asked {case.asked_on}, answer due {case.deadline}: {_state(case, now)}")
    click.echo(f"  assigned to {case.assigned_to} ({case.assigned_by})")
    click.echo(f"  audit: liaison audit show {case.message_id}")
    if case.answer_id:
        click.echo(f"  answered {case.answered_on}: liaison audit show {case.answer_id}")


COMMANDS: list[click.Command] = [questions]

__all__ = ["COMMANDS", "questions"]
