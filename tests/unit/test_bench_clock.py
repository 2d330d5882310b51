"""The benchmark's ack clock, read from real processes' standard output."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest

from liaison.devtools.bench.clock import AckClock, AckWatch
from liaison.devtools.bench.cpu import CpuMeter, cpu_seconds


def _reporter(
    first: float, acked: int, last: float, cpu: float | None = None
) -> subprocess.Popen[bytes]:
    report: dict[str, float] = {"first": first, "acked": acked, "last": last}
    if cpu is not None:
        report["cpu"] = cpu
    line = json.dumps(report)
    return subprocess.Popen(
        [sys.executable, "-c", f"print('not a clock line'); print({line!r})"],
        stdout=subprocess.PIPE,
    )


class TestAckWatch:
    def test_rate_spans_every_process(self) -> None:
        """Two workers: the rate is all acks over first arrival (any) to last ack (any)."""
        watch = AckWatch()
        for process in (_reporter(10.0, 600, 12.0), _reporter(11.0, 400, 14.0)):
            watch.follow(process)
            process.wait()
        rate, rss = watch.wait(1000, timeout=10)
        assert rate == pytest.approx(1000 / 4.0)
        assert rss == []
        assert watch.cpu_us_per_message() is None  # the reports carry no CPU time

    def test_cpu_per_message_sums_every_process(self) -> None:
        """Two routers: their CPU seconds together over their acks together."""
        watch = AckWatch()
        for process in (_reporter(10.0, 600, 12.0, 0.3), _reporter(11.0, 400, 14.0, 0.2)):
            watch.follow(process)
            process.wait()
        watch.wait(1000, timeout=10)
        assert watch.cpu_us_per_message() == pytest.approx(0.5 / 1000 * 1e6)

    def test_too_few_acks_time_out(self) -> None:
        """Fewer acks than loaded messages is an error, not a rate."""
        watch = AckWatch()
        process = _reporter(10.0, 5, 11.0)
        watch.follow(process)
        process.wait()
        with pytest.raises(TimeoutError, match="only 5 of 10"):
            watch.wait(10, timeout=0.5)


class TestAckClock:
    def test_reports_first_arrival_and_acks(self) -> None:
        """The clock's thread writes what the loop counted, with the earliest arrival."""
        out = io.StringIO()
        clock = AckClock(out)
        clock.arrived(5.0)
        clock.arrived(6.0)
        clock.ack(3)
        clock.start()
        deadline = time.monotonic() + 5
        while not out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        report = json.loads(out.getvalue().splitlines()[0])
        assert report["first"] == 5.0
        assert report["acked"] == 3
        assert report["last"] >= 5.0
        assert 0 <= report["cpu"] < 5  # CPU seconds since start()


class TestCpuMeter:
    def test_counts_this_process_cpu_per_message(self) -> None:
        """CPU burnt between start and stop, per message."""
        meter = CpuMeter({"me": (os.getpid(),), "gone": ()})
        meter.start()
        deadline = time.process_time() + 0.2
        while time.process_time() < deadline:
            pass
        meter.stop()
        used = meter.used["me"]
        assert used is not None and 0.15 <= used < 5
        per = meter.per_message_us(1000)
        assert per["me"] == pytest.approx(used / 1000 * 1e6, rel=0.01)
        assert per["gone"] is None  # no process to read: no figure, not zero

    def test_unreadable_process_is_none(self) -> None:
        assert cpu_seconds(2**22 + 12345) is None
        assert cpu_seconds(os.getpid()) is not None
