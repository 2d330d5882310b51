"""The benchmark's ack clock, read from real processes' standard output."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import pytest

from liaison.devtools.bench.clock import AckClock, AckWatch


def _reporter(first: float, acked: int, last: float) -> subprocess.Popen[bytes]:
    line = json.dumps({"first": first, "acked": acked, "last": last})
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
