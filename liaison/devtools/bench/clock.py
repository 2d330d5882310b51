"""The benchmark's clock: each process under test times its own acks.

The queue a process drains says nothing about acks (a passive declare counts
ready messages only, and the management API's counters lag by seconds), so the
router and the raw forwarder both keep an :class:`AckClock`: the monotonic time
their first message arrived, how many they have acked, and when the last of
those acks went out. A thread prints that as one JSON line on standard output
every few milliseconds while it changes; :class:`AckWatch` in the benchmark
reads those lines from every process under test and stops the clock when the
acks add up to the messages loaded. ``time.monotonic`` is the system-wide
``CLOCK_MONOTONIC`` on Linux, so times from several processes compare.

For the router an ack means the broker confirmed every delivery *and* the audit
batch recording the message (it acks nothing before), so its clock stops when
every ingress message is acked and every audit event confirmed.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

REPORT_EVERY_S = 0.01


class AckClock:
    """First arrival, acks and the last ack's time of one process; reported by a thread."""

    def __init__(self, out: TextIO, extra: Callable[[], dict[str, float]] | None = None) -> None:
        self._out = out
        #: More figures for each report (the router's confirmed audit messages).
        self._extra = extra
        self.first_arrival: float | None = None
        self.acked = 0
        self.last_ack = 0.0
        self._ready_cpu = 0.0

    def arrived(self, at: float) -> None:
        """A message arrived at monotonic time ``at`` (only the first one counts)."""
        if self.first_arrival is None:
            self.first_arrival = at

    def ack(self, count: int = 1) -> None:
        """``count`` more messages are acked, now."""
        # Count first, time second: a reader taking the count then the time gets a
        # time no earlier than that count's ack (the clock errs long, never short).
        self.acked += count
        self.last_ack = time.monotonic()

    def start(self) -> None:
        """Report from a daemon thread until the process ends.

        Each report also carries the CPU seconds the process has spent since this
        call (its imports and set-up are done by then): the report that follows the
        last ack says what routing every message cost, the idle time after it
        costing nothing.
        """
        self._ready_cpu = time.process_time()
        threading.Thread(target=self._report, name="ack-clock", daemon=True).start()

    def _report(self) -> None:
        reported = -1
        while True:
            time.sleep(REPORT_EVERY_S)
            acked, last, first = self.acked, self.last_ack, self.first_arrival
            if acked != reported and first is not None:
                cpu = time.process_time() - self._ready_cpu
                report = {"first": first, "acked": acked, "last": last, "cpu": cpu}
                if self._extra is not None:
                    report.update(self._extra())
                self._out.write(json.dumps(report) + "\n")
                self._out.flush()
                reported = acked


class AckWatch:
    """Reads the ack clocks of processes under test and waits for their sum."""

    def __init__(self) -> None:
        self._latest: dict[int, dict[str, float]] = {}
        self._changed = threading.Condition()
        self._followed: list[int] = []

    def follow(self, process: subprocess.Popen[bytes]) -> None:
        """Read ``process``'s clock lines (its standard output must be a pipe)."""
        assert process.stdout is not None
        stdout = process.stdout
        self._followed.append(process.pid)

        def read() -> None:
            for line in stdout:
                try:
                    report = json.loads(line)
                except ValueError:
                    continue  # not a clock line
                with self._changed:
                    self._latest[process.pid] = report
                    self._changed.notify_all()

        threading.Thread(target=read, name=f"ack-watch-{process.pid}", daemon=True).start()

    def acked(self) -> int:
        """Messages acked so far by every process followed."""
        with self._changed:
            return sum(int(r["acked"]) for r in self._latest.values())

    def rates(self) -> list[float]:
        """Each process's own rate so far: its acks over its first arrival to its last ack."""
        with self._changed:
            reports = [self._latest.get(pid) for pid in self._followed]
        return [
            0.0
            if r is None  # it acked nothing: the others took every message
            else r["acked"] / (r["last"] - r["first"])
            if r["last"] > r["first"]
            else float("inf")
            for r in reports
        ]

    def total(self, key: str) -> float:
        """The sum of ``key`` over every process's latest report (0 where absent)."""
        with self._changed:
            return sum(float(r.get(key, 0)) for r in self._latest.values())

    def wait_for(self, key: str, at_least: float, *, timeout: float = 120.0) -> None:
        """Until the processes' latest reports add ``key`` up to ``at_least``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(float(r.get(key, 0)) for r in self._latest.values()) < at_least:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{key} below {at_least} after {timeout} s")
                self._changed.wait(left)

    def cpu_us_per_message(self) -> float | None:
        """CPU microseconds per acked message, every process followed together."""
        with self._changed:
            reports = list(self._latest.values())
        acked = sum(int(r["acked"]) for r in reports)
        if not reports or acked == 0 or any("cpu" not in r for r in reports):
            return None
        return round(sum(float(r["cpu"]) for r in reports) / acked * 1e6, 1)

    def wait(
        self, total: int, *, timeout: float = 300.0, rss_of: int | None = None
    ) -> tuple[float, list[float]]:
        """Messages/s from the first arrival to the ``total``-th ack, and RSS samples (MB).

        With ``rss_of`` (a pid), that process's resident memory is sampled when the
        first ack is seen, when half the messages are acked and at the end.
        """
        deadline = time.monotonic() + timeout
        marks = [1, max(1, total // 2), total]
        rss: list[float] = []
        with self._changed:
            while True:
                acked = sum(int(r["acked"]) for r in self._latest.values())
                while rss_of is not None and marks and acked >= marks[0]:
                    marks.pop(0)
                    rss.append(resident_mb(rss_of))
                if acked >= total:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"only {acked} of {total} messages acked in {timeout} s")
                self._changed.wait(left)
            first = min(r["first"] for r in self._latest.values())
            last = max(r["last"] for r in self._latest.values())
        return (total / (last - first) if last > first else float("inf")), rss


def resident_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory (``VmRSS``) or its peak (``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")
