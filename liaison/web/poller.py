"""A background thread that reads the hub's queues every few seconds for metrics and the dashboard.

Depths and consumer counts come from AMQP passive declares (exact, immediate);
rates and unacked counts from the management API when it answers (its figures
lag up to 5 s). One reading serves every dashboard poll and every scrape, so
neither puts load on the broker.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from liaison.errors import LiaisonError
from liaison.ops import HubQueue, HubStatus, StatusCollector, status_json
from liaison.procedures.health import read_acks
from liaison.settings import Settings
from liaison.web.metrics import HubMetrics

log = structlog.get_logger("liaison.web")


class QueuePoller:
    """Keeps the latest :func:`status_json` and the depth gauges fresh until stopped."""

    def __init__(
        self,
        settings: Settings,
        queues: Sequence[HubQueue],
        metrics: HubMetrics,
        *,
        interval_s: float = 2.0,
        max_age_s: float = 600.0,
    ) -> None:
        self._settings = settings
        self._collector = StatusCollector(settings, queues, mode="combined")
        self._acks: list[dict[str, Any]] | None = None
        self._cases: dict[str, Any] | None = None
        self._metrics = metrics
        self._interval = interval_s
        self._max_age = max_age_s
        self._stopping = threading.Event()
        self._latest: dict[str, Any] | None = None
        self._error: str | None = "not read yet"
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="liaison-queue-poller", daemon=True)

    def start(self) -> None:
        """Start polling in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and close the connections."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def latest(self) -> dict[str, Any]:
        """The last reading as JSON data, with ``error`` set when the last poll failed."""
        with self._lock:
            data = dict(self._latest or {"queues": [], "breaches": [], "warnings": []})
            data["error"] = self._error
        return data

    def poll_once(self) -> None:
        """One reading (the thread calls this; tests may too)."""
        try:
            status = self._collector.collect()
        except LiaisonError as exc:
            self._failed(str(exc))
            return
        except Exception as exc:  # the thread must outlive any one bad reading
            log.exception("web.poll_crashed")
            self._failed(f"internal error: {exc!r}")
            return
        self._metrics.set_depths({row.name: row.ready for row in status.rows if row.exists})
        status = self._with_acks(status)
        data = status_json(status, max_age_s=self._max_age)
        with self._lock:
            self._latest, self._error = data, None

    def acks(self) -> dict[str, Any]:
        """The acknowledgements awaited at the last reading (``deployed``: a database exists)."""
        with self._lock:
            awaited = self._acks
        return {"deployed": awaited is not None, "awaited": awaited or []}

    def cases(self) -> dict[str, Any]:
        """Treaty files by step and waiting party, and the questions' figures (last reading)."""
        with self._lock:
            cases = self._cases
        if cases is None:
            return {"deployed": False, "treaties": [], "questions": None}
        return {"deployed": True, **cases}

    def _with_acks(self, status: HubStatus) -> HubStatus:
        try:
            acks = read_acks(self._settings, datetime.now(UTC))
        except LiaisonError as exc:
            log.warning("web.acks_unreadable", error=str(exc))
            return status
        if acks is None:
            return status
        self._metrics.acks_pending.set(len(acks.awaited))
        self._metrics.acks_overdue.set(len(acks.overdue))
        self._metrics.questions_open.set(acks.questions_open)
        self._metrics.questions_overdue.set(len(acks.questions_overdue))
        self._metrics.treaty_files.clear()
        for (step, waiting_on), count in acks.treaties.items():
            self._metrics.treaty_files.labels(step=step, waiting_on=waiting_on).set(count)
        with self._lock:
            self._acks = [item.to_json() for item in acks.awaited]
            self._cases = {
                "treaties": [
                    {"step": step, "waiting_on": waiting.split(), "files": count}
                    for (step, waiting), count in sorted(acks.treaties.items())
                ],
                "questions": {
                    "open": acks.questions_open,
                    "overdue": list(acks.questions_overdue),
                },
            }
        return dataclasses.replace(
            status,
            acks_overdue=acks.overdue_lines(),
            acks_pending=len(acks.awaited),
            questions_overdue=acks.questions_overdue,
            questions_open=acks.questions_open,
        )

    def _failed(self, error: str) -> None:
        with self._lock:
            self._error = error
        log.warning("web.poll_failed", error=error)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.poll_once()
                self._stopping.wait(self._interval)
        finally:
            self._collector.close()
