"""``liaison treaties``: the treaty files the procedures service follows."""

from __future__ import annotations

import json

import click

from liaison.cli import Context, pass_context
from liaison.cli.procedures_cmd import _store


@click.group()
def treaties() -> None:
    """Treaty files from signature to entry into force: where each stands, who must act."""


@treaties.command("list")
@click.option("--waiting-on", "waiting_on", metavar="CODE", help="Only files waiting on CODE.")
@click.option("--stage", metavar="STEP", help="Only files at STEP (or 'signed').")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def list_(obj: Context, waiting_on: str | None, stage: str | None, as_json: bool) -> None:
    """Every treaty file: its step, since when, and who it waits on."""
    from liaison.procedures import case_queries, case_store  # noqa: PLC0415
    from liaison.procedures.bootstrap import policy  # noqa: PLC0415

    roles = case_store.treaty_policy(policy(obj.settings)).roles
    with _store(obj) as store, store.reading() as db:
        files = case_queries.treaty_files(db, waiting_on=waiting_on, step=stage)
    if as_json:
        out = [
            {**case_store.treaty_to_json(f), "waiting_on": list(f.waiting_on(roles))} for f in files
        ]
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if not files:
        click.echo("no treaty file")
    for f in files:
        step = f.step.value if f.step is not None else "signed"
        waiting = ", ".join(f.waiting_on(roles)) or "nobody (in force)"
        flags = f"  {f.anomalies} anomal{'y' if f.anomalies == 1 else 'ies'}" if f.anomalies else ""
        click.echo(
            f"{f.reference:<16} {step:<32} since {f.since:%Y-%m-%d}  waiting on {waiting}"
            f"{flags}  {f.title}"
        )


@treaties.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_context
def show(obj: Context, reference: str, as_json: bool) -> None:
    """One file's timeline, contributions and anomalies, each linked to its message."""
    from liaison.procedures import case_store  # noqa: PLC0415
    from liaison.procedures.bootstrap import policy  # noqa: PLC0415
    from liaison.procedures.treaties import first_vote_on, second_vote_from  # noqa: PLC0415
    from schemas.treaties import TreatyStep  # noqa: PLC0415

    roles = case_store.treaty_policy(policy(obj.settings)).roles
    with _store(obj) as store, store.reading() as db:
        file = case_store.load_treaty(db, reference)
    if file is None:
        raise click.ClickException(f"no treaty file {reference!r}")
    if as_json:
        data = {**case_store.treaty_to_json(file), "waiting_on": list(file.waiting_on(roles))}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    step = file.step.value if file.step is not None else "signed"
    click.echo(f"{file.reference}  {file.title}")
    click.echo(
        f"  at {step} since {file.since:%Y-%m-%d %H:%M}Z, waiting on "
        f"{', '.join(file.waiting_on(roles)) or 'nobody'}"
    )
    if file.step is TreatyStep.APPROVED_BY_CHAMBER:
        click.echo(
            f"  first vote on {first_vote_on(file)}: a second vote, if the Council "
            f"of State does not dispense with it, not before {second_vote_from(file)}"
        )
    for c in file.contributions:
        state = (
            f"given {c.given_at:%Y-%m-%d}"
            if c.given_at
            else f"waived by {c.waived_by}: {c.waiver_reason}"
            if c.waived_by
            else f"MISSING, due {c.due_at:%Y-%m-%d}"
        )
        click.echo(f"  contribution {c.item} from {c.from_code}: {state}")
    for e in file.timeline:
        mark = " " if e.applied else "!"
        click.echo(
            f"{mark} {e.at:%Y-%m-%d %H:%M}Z {e.sender:<16} {e.type:<30} {e.what}"
            f"  (audit: liaison audit show {e.message_id})"
        )


COMMANDS: list[click.Command] = [treaties]

__all__ = ["COMMANDS", "treaties"]
