"""``liaison demo``: run the hub end to end on this machine."""

from __future__ import annotations

import click

from liaison.cli import Context, pass_context


@click.command()
@click.option(
    "--exit",
    "exit_after",
    is_flag=True,
    help="Stop the hub after the summary instead of leaving it running.",
)
@pass_context
def demo(obj: Context, exit_after: bool) -> None:
    """Apply the topology, run router and audit writer, exchange real messages, summarise."""
    from liaison.demo import run_demo  # noqa: PLC0415 - keeps --help fast

    run_demo(obj.settings, echo=click.echo, keep_running=not exit_after)
