"""``liaison committee``: the Comité de coordination's register and accounts, as kept."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date
from decimal import Decimal
from typing import Any

import click

from liaison.cli import Context, pass_context
from liaison.cli.procedures_cmd import _store


@click.group()
def committee() -> None:
    """The committee's meetings, decisions and accounts (kept by the procedures service)."""


@committee.command()
@click.option("--year", type=int, help="Only the meetings of this year.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def meetings(obj: Context, year: int | None, as_json: bool) -> None:
    """The meetings by date: agenda, minutes adopted, decisions."""
    from liaison.procedures import committee_store  # noqa: PLC0415 - keeps --help fast

    with _store(obj) as store, store.reading() as db:
        found = committee_store.meetings(db, year)
    data: list[dict[str, Any]] = [
        {
            "reference": m.reference,
            "meeting_on": m.meeting_on.isoformat(),
            "place": m.place,
            "agenda": list(m.agenda),
            "minutes_adopted_on": m.minutes_adopted_on.isoformat()
            if m.minutes_adopted_on
            else None,
            "decisions": [{"reference": d.reference, "text": d.text} for d in decisions],
        }
        for m, decisions in found
    ]
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for item in data:
        minutes = item["minutes_adopted_on"] or "not yet adopted"
        click.echo(f"{item['meeting_on']}  {item['reference']}  (minutes: {minutes})")
        for number, agenda_item in enumerate(item["agenda"], 1):
            click.echo(f"    {number}. {agenda_item}")
        for decision in item["decisions"]:
            click.echo(f"    decision {decision['reference']}: {decision['text']}")


@committee.command()
@click.option("--year", type=int, default=lambda: date.today().year, show_default="this year")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on standard output.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def accounts(obj: Context, year: int, as_csv: bool, as_json: bool) -> None:
    """Per budget line: budgeted, committed, paid, remaining; totals per currency."""
    from liaison.procedures import committee as c  # noqa: PLC0415
    from liaison.procedures import committee_store  # noqa: PLC0415

    with _store(obj) as store, store.reading() as db:
        rows = c.accounts(committee_store.lines(db, year), committee_store.entries(db, year))
    sums = c.totals(rows)
    table: list[dict[str, Any]] = [
        {
            "line": row.line,
            "label": row.label,
            "currency": row.currency,
            "budgeted": row.budgeted,
            "committed": row.committed,
            "paid": row.paid,
            "remaining": row.remaining,
            "overspends": row.overspends,
        }
        for row in rows
    ]
    for currency, total in sorted(sums.items()):
        table.append(
            {
                "line": "TOTAL",
                "label": "",
                "currency": currency,
                **total,
                "overspends": sum(r.overspends for r in rows if r.currency == currency),
            }
        )
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        columns = [
            "line",
            "label",
            "currency",
            "budgeted",
            "committed",
            "paid",
            "remaining",
            "overspends",
        ]
        writer.writerow(["year", *columns])
        for item in table:
            writer.writerow([year, *(_text(item[k]) for k in columns)])
        return
    if as_json:
        click.echo(
            json.dumps(
                [{k: _text(v) for k, v in item.items()} for item in table],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    heads = ("budgeted", "committed", "paid", "remaining")
    click.echo(f"{'line':<10} {'cur':<4} " + " ".join(f"{h:>16}" for h in heads) + "  label")
    for item in table:
        flag = "  OVERSPENT" if item["overspends"] else ""
        click.echo(
            f"{item['line']:<10} {item['currency']:<4} {item['budgeted']:>16} "
            f"{item['committed']:>16} {item['paid']:>16} {item['remaining']:>16}  "
            f"{item['label']}{flag}"
        )


def _text(value: Any) -> Any:
    # Decimals as their exact text, never through float.
    return str(value) if isinstance(value, Decimal) else value


COMMANDS = [committee]

__all__ = ["COMMANDS", "committee"]
