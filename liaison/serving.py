"""Running the router: one process, or several as competing consumers under a supervisor.

Routers are stateless competing consumers on ``hub.ingress``: each worker has
its own connection, prefetch window and duplicate window. A duplicate that
reaches another worker than its first copy is routed again; the consumers'
idempotency stores and the audit writer (one record per dedupe key) are where
"once" holds, as after any redelivery.

``run_workers`` starts ``count`` worker processes (``spawn``: each a fresh
interpreter with its own garbage-collector settings), forwards SIGTERM and
SIGINT to them and waits for each to drain. A worker killed by a signal (the
kernel's OOM killer, an operator) is started again; one that exits with an
error (a refused login, a bad directory) stops them all, since its siblings
would fail the same way. Worker ``i`` serves metrics and the dashboard on
``http_port + i`` (when ``http_port`` is not 0).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from types import FrameType

import structlog

from liaison.settings import Settings

log = structlog.get_logger("liaison.serving")

#: How long a stopping worker may take: the router's own drain limit, and some.
STOP_TIMEOUT_S = 45.0


def serve_router(settings: Settings) -> int:
    """Run one router and its retry relay (and the web server) until SIGTERM.

    The retry relay (its own thread and connection) takes consumers' due retries and
    give-ups from ``hub.retry.due`` and re-publishes them as the hub; with several
    workers, each has one, competing on that queue.
    """
    from liaison.adapters.pika_router import Router  # noqa: PLC0415
    from liaison.adapters.retry_relay import RetryRelay, start_relay  # noqa: PLC0415
    from liaison.bootstrap import routing_context  # noqa: PLC0415 - keeps --help fast
    from liaison.core.retry import RelayContext  # noqa: PLC0415
    from liaison.errors import TlsRefusedError  # noqa: PLC0415
    from liaison.runtime import calm_gc  # noqa: PLC0415
    from liaison.web import MetricsObserver, start_web  # noqa: PLC0415

    context = routing_context(settings)
    observer = MetricsObserver.for_context(context)
    router = Router(settings, context, observer=observer)
    relay = RetryRelay(
        settings, RelayContext(context.directory, settings.hub_user, settings.user_prefix)
    )
    web = start_web(settings, router, observer)
    relay_thread = start_relay(relay)
    calm_gc()
    try:
        code = router.run()
    finally:
        relay.stop()
        relay_thread.join(timeout=10)
        if web is not None:
            web.stop()
    if router.failure is not None:
        raise TlsRefusedError(router.failure)
    return code


def _worker(settings: Settings, index: int) -> None:
    from liaison.errors import LiaisonError  # noqa: PLC0415
    from liaison.logs import configure_logging  # noqa: PLC0415

    configure_logging(json=settings.log_json, level=settings.log_level)
    structlog.contextvars.bind_contextvars(worker=index)
    if settings.http_port:
        settings = settings.replace(http_port=settings.http_port + index)
    try:
        code = serve_router(settings)
    except LiaisonError as exc:
        log.error("router.failed", error=str(exc))  # noqa: TRY400 - one line says it all
        code = 1
    raise SystemExit(code)


def run_workers(settings: Settings, count: int) -> int:
    """Run ``count`` routers as processes until SIGTERM or SIGINT; 0 when all stopped cleanly."""
    spawn = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("workers.signal", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def start(index: int) -> multiprocessing.process.BaseProcess:
        process = spawn.Process(target=_worker, args=(settings, index), name=f"router-{index}")
        process.start()
        log.info("workers.started", worker=index, pid=process.pid)
        return process

    workers = {index: start(index) for index in range(count)}
    failed = False
    while not stopping.wait(0.5):
        for index, process in list(workers.items()):
            if process.is_alive():
                continue
            code = process.exitcode
            log.error("workers.exited", worker=index, pid=process.pid, exit_code=code)
            if code is not None and code < 0:  # killed by a signal: take its place
                workers[index] = start(index)
            else:
                failed = True
                stopping.set()
    for process in workers.values():
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    for index, process in workers.items():
        process.join(STOP_TIMEOUT_S)
        if process.is_alive():
            log.error("workers.kill", worker=index, pid=process.pid)
            process.kill()
            process.join()
        failed = failed or process.exitcode != 0
    return 1 if failed else 0
