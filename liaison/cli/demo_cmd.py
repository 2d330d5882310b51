"""``liaison demo``: run the hub end to end on this machine."""

from __future__ import annotations

import click

from liaison.cli import Context, pass_context
from liaison.errors import LiaisonError


@click.command()
@click.option(
    "--exit",
    "exit_after",
    is_flag=True,
    help="Stop the hub after the summary instead of leaving it running.",
)
@click.option(
    "--ack-deadline",
    default="8 seconds",
    show_default=True,
    help="The FLASH cables' acknowledgement deadline for the demo ('15 minutes' in the rules).",
)
@pass_context
def demo(obj: Context, exit_after: bool, ack_deadline: str) -> None:
    """Apply the topology, run router and audit writer, exchange real messages, summarise."""
    from liaison.demo import run_demo  # noqa: PLC0415 - keeps --help fast

    try:
        run_demo(
            obj.settings,
            echo=click.echo,
            keep_running=not exit_after,
            ack_deadline=ack_deadline,
        )
    except LiaisonError as exc:
        raise click.ClickException(str(exc)) from None
