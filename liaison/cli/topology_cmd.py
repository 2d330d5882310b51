"""``liaison topology``: declare the broker topology from the directory, or check it."""

from __future__ import annotations

import click

from liaison.cli import Context, pass_context


@click.group()
def topology() -> None:
    """Exchanges, queues, users and permissions on the hub's vhost."""


@topology.command()
@click.option(
    "--dry-run", is_flag=True, help="Print the plan and what would change; change nothing."
)
@click.option(
    "--rotate",
    "rotate",
    metavar="CODE",
    multiple=True,
    help="Give this participant a new password and credential file (repeatable).",
)
@click.option("--rotate-all", is_flag=True, help="Give every existing participant a new password.")
@pass_context
def apply(obj: Context, dry_run: bool, rotate: tuple[str, ...], rotate_all: bool) -> None:
    """Create what the directory needs; never delete, never change a password unasked.

    Safe to run again, and from another place: an existing participant keeps its
    password. Its credential file here is tried (one login each); a missing or
    refused one is reported with the fix, and exit stays 0 (the topology is applied).
    """
    from liaison.directory import load_directory  # noqa: PLC0415 - keeps --help fast
    from liaison.topology import apply as apply_topology  # noqa: PLC0415
    from liaison.topology import plan, rotation_hint  # noqa: PLC0415

    settings = obj.settings
    directory = load_directory(settings.directory_path)
    if dry_run:
        click.echo(f"Plan for vhost {settings.vhost!r} ({len(directory)} participants):")
        for line in plan(directory, settings).describe():
            click.echo(f"  {line}")
    report = apply_topology(
        settings, directory, rotate=rotate, rotate_all=rotate_all, dry_run=dry_run
    )
    verb = "Would apply" if dry_run else "Applied"
    if report.changes:
        click.echo(f"{verb}:")
        for line in report.changes:
            click.echo(f"  {line}")
    for path in report.credential_files:
        click.echo(f"credentials written to {path} (mode 0600)")
    if report.extra:
        click.echo("Left in place (not in the plan; delete by hand once drained):")
        for difference in report.extra:
            click.echo(f"  {difference}")
    count = len(report.changes)
    click.echo(f"{count} change{'s' if count != 1 else ''}{' (dry run)' if dry_run else ''}.")
    if report.credential_problems:
        problems = report.credential_problems
        click.echo(
            f"{len(problems)} participant(s) cannot log in with the credentials in "
            f"{settings.credentials_dir} (their passwords were left unchanged):",
            err=True,
        )
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        click.echo(f"To fix: {rotation_hint([p.code for p in problems])}.", err=True)
    if report.unresolved:
        click.echo("Cannot repair by itself:", err=True)
        for difference in report.unresolved:
            click.echo(f"  {difference}", err=True)
        raise SystemExit(1)


@topology.command()
@pass_context
def diff(obj: Context) -> None:
    """Print how the broker differs from the plan; exit 1 when it does."""
    from liaison.directory import load_directory  # noqa: PLC0415 - keeps --help fast
    from liaison.topology import diff as diff_topology  # noqa: PLC0415

    settings = obj.settings
    differences = diff_topology(settings, load_directory(settings.directory_path))
    if not differences:
        click.echo(f"In sync: vhost {settings.vhost!r} matches the plan.")
        return
    for difference in differences:
        click.echo(str(difference))
    click.echo(f"{len(differences)} difference{'s' if len(differences) != 1 else ''}.")
    raise SystemExit(1)
