"""``liaison serve``: run the router, with its metrics, health checks and dashboard."""

from __future__ import annotations

import click

from liaison.cli import Context, pass_context


@click.command()
@pass_context
def serve(obj: Context) -> None:
    """Run the router: consume ingress, validate, authorise, deliver, audit.

    With ``http_port`` set (default 8787; 0 turns it off) it also serves /metrics,
    /healthz, /readyz and the operator dashboard on ``http_host`` (default 127.0.0.1).
    """
    from liaison.bootstrap import routing_context  # noqa: PLC0415 - keeps --help fast
    from liaison.router import Router  # noqa: PLC0415
    from liaison.runtime import calm_gc  # noqa: PLC0415
    from liaison.web import MetricsObserver, start_web  # noqa: PLC0415

    settings = obj.settings
    context = routing_context(settings)
    observer = MetricsObserver.for_context(context)
    router = Router(settings, context, observer=observer)
    web = start_web(settings, router, observer)
    calm_gc()
    try:
        code = router.run()
    finally:
        if web is not None:
            web.stop()
    raise SystemExit(code)
