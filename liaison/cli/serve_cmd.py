"""``liaison serve``: run the router, with its metrics, health checks and dashboard."""

from __future__ import annotations

import click

from liaison.cli import Context, pass_context


@click.command()
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Router processes (competing consumers); worker i serves HTTP on http_port + i.",
)
@pass_context
def serve(obj: Context, workers: int) -> None:
    """Run the router and the retry relay: validate, authorise, deliver, audit.

    The retry relay (its own thread and connection) takes consumers' due retries
    and give-ups from hub.retry.due and re-publishes them as the hub.
    With ``http_port`` set (default 8787; 0 turns it off) it also serves /metrics,
    /healthz, /readyz and the operator dashboard on ``http_host`` (default 127.0.0.1).
    """
    from liaison.serving import run_workers, serve_router  # noqa: PLC0415 - keeps --help fast

    settings = obj.settings
    raise SystemExit(serve_router(settings) if workers == 1 else run_workers(settings, workers))
