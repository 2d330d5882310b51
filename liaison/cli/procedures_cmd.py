"""``liaison procedures``, ``registry`` and ``acks``: the procedures service and what it knows."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import click

from liaison.cli import Context, pass_context
from liaison.errors import LiaisonError

if TYPE_CHECKING:
    from liaison.procedures.queries import RegisterLine
    from liaison.procedures.store import Store

EXIT_DIFFERENCES = 2


@contextmanager
def _store(obj: Context, *, check: bool = True) -> Iterator[Store]:
    from liaison.procedures.store import Store  # noqa: PLC0415 - keeps --help fast

    try:
        store = Store.open(obj.settings.procedures_url, check=check)
    except LiaisonError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield store
    finally:
        store.close()


@click.group()
def procedures() -> None:
    """The procedures service: registry numbers, acknowledgements chased, deadlines."""


@procedures.command()
@pass_context
def migrate(obj: Context) -> None:
    """Create or upgrade the procedures database to the latest schema."""
    with _store(obj, check=False) as store:
        before, after = store.migrate()
    click.echo(f"procedures database: revision {before or 'none'} -> {after}")


@procedures.command()
@pass_context
def run(obj: Context) -> None:
    """Consume the service's inbox, keep the registry and chase acknowledgements."""
    from liaison.procedures.bootstrap import policy  # noqa: PLC0415
    from liaison.procedures.service import ProceduresService  # noqa: PLC0415
    from schemas.catalog import default_registry  # noqa: PLC0415

    with _store(obj) as store:
        try:
            service = ProceduresService(
                obj.settings, store, policy(obj.settings), default_registry()
            )
        except LiaisonError as exc:
            raise click.ClickException(str(exc)) from None
        raise SystemExit(service.run())


@procedures.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--into",
    default="sqlite://",
    show_default=True,
    help="Database to rebuild into (default: in memory); an empty one to recover a lost database.",
)
@pass_context
def rebuild(obj: Context, as_json: bool, into: str) -> None:
    """Recompute the state from the audit ledger and report every difference (exit 2 if any)."""
    from liaison.procedures.bootstrap import policy  # noqa: PLC0415
    from liaison.procedures.rebuild import rebuild as run_rebuild  # noqa: PLC0415
    from schemas.catalog import default_registry  # noqa: PLC0415

    with _store(obj) as store:
        try:
            report = run_rebuild(
                obj.settings.audit_dir, policy(obj.settings), default_registry(), store, into=into
            )
        except LiaisonError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(
            f"ledger: {report.records} records; folded {report.folded} copies and "
            f"{report.escalations} escalations and reminders"
        )
        for line in report.differences:
            click.echo(f"  DIFFERENT {line}")
        click.echo(
            f"{len(report.differences)} difference(s)"
            if report.differences
            else "OK: the live database matches the ledger"
        )
    if report.differences:
        raise SystemExit(EXIT_DIFFERENCES)


@click.group()
def registry() -> None:
    """The correspondence register: every letter and note the hub routed, numbered."""


def _print_lines(lines: list[RegisterLine], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([line.to_json() for line in lines], indent=2, ensure_ascii=False))
        return
    for line in lines:
        reply = f"  answers {line.answers_number}" if line.answers_number else ""
        click.echo(
            f"{line.number:<18} {line.registered_on}  {line.sender} → "
            f"{', '.join(line.recipients)}  [{line.classification}]  {line.subject}{reply}"
        )


@registry.command()
@click.argument("number")
@click.option("--thread", is_flag=True, help="Show the whole thread the letter belongs to.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def show(obj: Context, number: str, thread: bool, as_json: bool) -> None:
    """One registered letter (or its whole thread) by registry number."""
    from liaison.procedures import queries  # noqa: PLC0415

    with _store(obj) as store, store.reading() as db:
        lines = queries.thread(db, number) if thread else [queries.entry(db, number)]
    found = [line for line in lines if line is not None]
    if not found:
        raise click.ClickException(f"no registry number {number!r}")
    if as_json and not thread:
        click.echo(json.dumps(found[0].to_json(), indent=2, ensure_ascii=False))
    else:
        _print_lines(found, as_json)


@registry.command(name="search")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Registered on or after.")
@click.option("--sender", help="Sender's participant code.")
@click.option("--recipient", help="A recipient's participant code.")
@click.option("--text", help="Words of the subject (full-text on PostgreSQL).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def search_cmd(
    obj: Context,
    since: datetime | None,
    sender: str | None,
    recipient: str | None,
    text: str | None,
    as_json: bool,
) -> None:
    """Registered letters matching every given criterion."""
    from liaison.procedures import queries  # noqa: PLC0415

    with _store(obj) as store, store.reading() as db:
        lines = queries.search(
            db,
            since=since.date() if since else None,
            sender=sender,
            recipient=recipient,
            text=text,
        )
    _print_lines(lines, as_json)


@registry.command()
@click.option("--year", type=int, default=lambda: date.today().year, show_default="this year")
@click.option("--csv", "as_csv", is_flag=True, required=True, help="CSV on standard output.")
@pass_context
def export(obj: Context, year: int, as_csv: bool) -> None:
    """The register of one year as CSV, as the archives keep it."""
    from liaison.procedures import queries  # noqa: PLC0415

    del as_csv  # the one format there is; the flag says so on the command line
    with _store(obj) as store, store.reading() as db:
        lines = queries.year(db, year)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        [
            "number",
            "registered_on",
            "type",
            "sender",
            "recipients",
            "subject",
            "classification",
            "sender_reference",
            "answers_number",
            "thread_reference",
            "message_id",
        ]
    )
    for line in lines:
        writer.writerow(
            [
                line.number,
                line.registered_on.isoformat(),
                line.type,
                line.sender,
                " ".join(line.recipients),
                line.subject,
                line.classification,
                line.sender_reference,
                line.answers_number or "",
                line.thread_reference or "",
                line.message_id,
            ]
        )


@click.group()
def acks() -> None:
    """Acknowledgements the hub is chasing."""


@acks.command()
@click.option("--overdue", is_flag=True, help="Only those past their deadline.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def pending(obj: Context, overdue: bool, as_json: bool) -> None:
    """Messages still waiting for someone's receipt, with who and until when."""
    from liaison.procedures import queries  # noqa: PLC0415

    now = datetime.now(UTC)
    with _store(obj) as store, store.reading() as db:
        awaited = queries.pending(db, now, overdue_only=overdue)
    if as_json:
        click.echo(json.dumps([item.to_json() for item in awaited], indent=2))
        return
    if not awaited:
        click.echo("no acknowledgement awaited" + (" past its deadline" if overdue else ""))
    for item in awaited:
        state = "OVERDUE" if item.overdue else "pending"
        escalated = f", escalated {item.escalated_at:%Y-%m-%d %H:%M}" if item.escalated_at else ""
        click.echo(
            f"{state:<8} {item.type} {item.message_id} from {item.sender}: {item.receipt} "
            f"awaited from {', '.join(item.waiting_on)} by {item.due_at:%Y-%m-%d %H:%M}Z{escalated}"
        )


COMMANDS: tuple[click.Command, ...] = (procedures, registry, acks)

__all__ = ["COMMANDS"]
