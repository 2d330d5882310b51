"""The hub's processes as ``liaison serve`` and ``liaison audit run`` start them, timed.

``python -m liaison.devtools.bench.serve router`` builds the router exactly as ``liaison
serve`` does (routing context, metrics observer, garbage-collector settings;
the benchmark turns the HTTP server off) and adds an ack clock
(:mod:`liaison.devtools.bench.clock`) to its observer. ``python -m liaison.devtools.bench.serve
audit`` runs the audit writer with the CLI's defaults. Both read the settings
as JSON from ``$LIAISON_BENCH_SETTINGS``, so whatever the benchmark was
configured with (prefetch included) reaches them whatever the config path.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from liaison.devtools.bench.clock import AckClock
from liaison.devtools.bench.raw import SETTINGS_ENV
from liaison.logs import configure_logging
from liaison.settings import Settings


def run_router(settings: Settings) -> int:
    """Route until SIGTERM, reporting acks on standard output."""
    from liaison.adapters.pika_router import Router  # noqa: PLC0415
    from liaison.bootstrap import routing_context  # noqa: PLC0415 - heavy, only when used
    from liaison.core.values import Decision  # noqa: PLC0415
    from liaison.runtime import calm_gc  # noqa: PLC0415
    from liaison.web import MetricsObserver  # noqa: PLC0415

    context = routing_context(settings)
    metrics = MetricsObserver.for_context(context)
    clock = AckClock(sys.stdout)

    def observer(decision: Decision, seconds: float) -> None:
        metrics(decision, seconds)
        clock.arrived(time.monotonic() - seconds)
        clock.ack()

    router = Router(settings, context, observer=observer)
    calm_gc()
    clock.start()
    return router.run()


def run_audit(settings: Settings) -> int:
    """Write the ledger until SIGTERM, as ``liaison audit run`` does."""
    from liaison.adapters.audit_writer import AuditWriter  # noqa: PLC0415

    writer = AuditWriter(settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: writer.stop())
    writer.run()
    return 0


def main(argv: list[str]) -> int:
    """``router`` or ``audit``, settings from the environment."""
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(json=True, level=settings.log_level)
    return run_router(settings) if argv == ["router"] else run_audit(settings)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
