"""``liaison serve``: run the router, with its metrics, health checks and dashboard."""

from __future__ import annotations

import gc

import click

from liaison.cli import Context, pass_context


@click.command()
@pass_context
def serve(obj: Context) -> None:
    """Run the router and the retry relay: validate, authorise, deliver, audit.

    The retry relay (its own thread and connection) takes consumers' due retries
    and give-ups from hub.retry.due and re-publishes them as the hub.
    With ``http_port`` set (default 8787; 0 turns it off) it also serves /metrics,
    /healthz, /readyz and the operator dashboard on ``http_host`` (default 127.0.0.1).
    """
    from liaison.bootstrap import routing_context  # noqa: PLC0415 - keeps --help fast
    from liaison.retries import RelayContext  # noqa: PLC0415
    from liaison.retry_relay import RetryRelay, start_relay  # noqa: PLC0415
    from liaison.router import Router  # noqa: PLC0415
    from liaison.web import MetricsObserver, start_web  # noqa: PLC0415

    settings = obj.settings
    context = routing_context(settings)
    observer = MetricsObserver.for_context(context)
    router = Router(settings, context, observer=observer)
    relay = RetryRelay(
        settings, RelayContext(context.directory, settings.hub_user, settings.user_prefix)
    )
    web = start_web(settings, router, observer)
    relay_thread = start_relay(relay)
    # Everything loaded so far lives as long as the process: keep it out of the
    # collector's way, and let the many short-lived objects of the hot path (which
    # form no cycles) accumulate longer between young-generation collections.
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
    try:
        code = router.run()
    finally:
        relay.stop()
        relay_thread.join(timeout=10)
        if web is not None:
            web.stop()
    if router.failure is not None:
        raise click.ClickException(router.failure)
    raise SystemExit(code)
