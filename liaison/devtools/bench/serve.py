"""The hub's processes as ``liaison serve`` and ``liaison audit run`` start them, timed.

``python -m liaison.devtools.bench.serve router`` builds the router exactly as ``liaison
serve`` does (routing context, metrics observer, garbage-collector settings;
the benchmark turns the HTTP server off) and adds an ack clock
(:mod:`liaison.devtools.bench.clock`) to its observer. ``python -m liaison.devtools.bench.serve
audit`` runs the audit writer with the CLI's defaults and reports the audit messages
it has recorded (so the benchmark knows when it is done). Both read the settings
as JSON from ``$LIAISON_BENCH_SETTINGS``, so whatever the benchmark was
configured with (prefetch included) reaches them whatever the config path.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

from liaison.devtools.bench.clock import REPORT_EVERY_S, AckClock
from liaison.devtools.bench.raw import SETTINGS_ENV
from liaison.logs import configure_logging
from liaison.settings import Settings

if TYPE_CHECKING:
    from liaison.adapters.audit_writer import AuditWriter


def run_router(settings: Settings) -> int:
    """Route until SIGTERM, reporting acks on standard output."""
    from liaison.adapters.pika_router import Router  # noqa: PLC0415
    from liaison.bootstrap import routing_context  # noqa: PLC0415 - heavy, only when used
    from liaison.core.values import Decision  # noqa: PLC0415
    from liaison.runtime import calm_gc  # noqa: PLC0415
    from liaison.web import MetricsObserver  # noqa: PLC0415

    context = routing_context(settings)
    metrics = MetricsObserver.for_context(context)
    clock: AckClock | None = None

    def observer(decision: Decision, seconds: float) -> None:
        metrics(decision, seconds)
        assert clock is not None
        clock.arrived(time.monotonic() - seconds)
        clock.ack()

    router = Router(settings, context, observer=observer)
    clock = AckClock(sys.stdout, extra=lambda: {"audit": router.stats.audit_messages})
    calm_gc()
    clock.start()
    return router.run()


def run_audit(settings: Settings) -> int:
    """Write the ledger until SIGTERM, as ``liaison audit run`` does."""
    from liaison.adapters.audit_writer import AuditWriter  # noqa: PLC0415

    writer = AuditWriter(settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: writer.stop())
    threading.Thread(target=_report_recorded, args=(writer,), daemon=True).start()
    writer.run()
    return 0


def _report_recorded(writer: AuditWriter) -> None:
    """Audit messages recorded (or refused) so far, as a JSON line whenever it changes."""
    reported = -1
    while True:
        time.sleep(REPORT_EVERY_S)
        done = writer.stats.messages + writer.stats.rejected
        if done != reported:
            sys.stdout.write(json.dumps({"recorded": done}) + "\n")
            sys.stdout.flush()
            reported = done


def main(argv: list[str]) -> int:
    """``router`` or ``audit``, settings from the environment."""
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(json=True, level=settings.log_level)
    return run_router(settings) if argv == ["router"] else run_audit(settings)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
