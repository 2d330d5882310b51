"""``liaison demo``: run the hub end to end on this machine."""

from __future__ import annotations

import sys

import click

from liaison.cli import Context, pass_context
from liaison.logs import configure_logging


@click.command()
@click.option(
    "--exit",
    "exit_after",
    is_flag=True,
    help="Stop the hub after the summary instead of leaving it running.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show every step and the hub's logs (default: the table on a terminal, else one line).",
)
@click.option(
    "--ack-deadline",
    default="8 seconds",
    show_default=True,
    help="The FLASH cables' acknowledgement deadline for the demo ('15 minutes' in the rules).",
)
@pass_context
def demo(obj: Context, exit_after: bool, verbose: bool, ack_deadline: str) -> None:
    """Apply the topology, run router and audit writer, exchange real messages, summarise."""
    from liaison.devtools.demo import run_demo  # noqa: PLC0415 - keeps --help fast

    settings = obj.settings
    if not verbose and settings.log_level.lower() in ("debug", "info"):
        # Each topology change is an info log line (about 300 on a first run): the details.
        configure_logging(json=settings.log_json, level="warning")
    run_demo(
        settings,
        echo=click.echo,
        keep_running=not exit_after,
        summary_only=not verbose and not sys.stdout.isatty(),
        ack_deadline=ack_deadline,
    )
