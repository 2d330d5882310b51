"""``liaison bench`` itself, small: its figures are finite and say what they claim."""

from __future__ import annotations

import math

import pytest

from liaison.devtools.bench.audit import run_audit_bench
from liaison.devtools.bench.hub import run_bench
from liaison.settings import Settings


def test_bench_reports_what_it_measured(settings: Settings) -> None:
    """A few hundred messages: finite rates, ratio = router / raw, one latency sample each."""
    result = run_bench(
        settings.replace(prefetch=500), messages=300, rate=200, seconds=1.0, rounds=2
    )

    assert result.messages == 300
    assert result.prefetch == 500
    assert len(result.router_runs) == len(result.raw_runs) == 2
    assert result.first_side == ("raw", "router")  # the order alternates
    for rate in (*result.router_runs, *result.raw_runs):
        assert math.isfinite(rate) and rate > 0
    assert result.ratio == pytest.approx(result.router_msgs_per_s / result.raw_msgs_per_s, abs=5e-4)
    assert result.audit_writer_running
    assert result.routers == 1 and len(result.per_router_msgs_per_s) == 1
    assert result.latency_samples == 200  # rate x seconds, every one arrived
    assert 0 < result.latency_p50_ms <= result.latency_p99_ms <= result.latency_max_ms
    assert 0 < result.raw_latency_p50_ms <= result.raw_latency_p99_ms  # the same load, raw
    assert len(result.router_rss_mb) == 3 and all(mb > 0 for mb in result.router_rss_mb)
    assert result.router_peak_rss_mb >= max(result.router_rss_mb)
    # CPU per message of each process, read from /proc (the broker runs on this machine).
    assert set(result.router_cpu_us_per_msg) == {"router", "audit_writer", "broker"}
    assert set(result.raw_cpu_us_per_msg) == {"raw", "broker"}
    for figure in (*result.router_cpu_us_per_msg.values(), *result.raw_cpu_us_per_msg.values()):
        assert figure is not None and math.isfinite(figure) and figure > 0


def test_bench_with_two_routers(settings: Settings) -> None:
    """--routers 2: the aggregate rate and one rate per router, each finite."""
    # A small prefetch, or the router that connects first takes all 400 at once.
    result = run_bench(
        settings.replace(prefetch=20), messages=400, rate=100, seconds=1.0, rounds=1, routers=2
    )

    assert result.routers == 2
    assert len(result.per_router_msgs_per_s) == 2
    for rate in (*result.per_router_msgs_per_s, result.router_msgs_per_s):
        assert math.isfinite(rate) and rate > 0
    assert result.latency_samples == 100


def test_bench_audit_replays_what_it_wrote(settings: Settings) -> None:
    """`liaison bench audit`, small: appends, verification and a replay of every message."""
    figures = run_audit_bench(settings, records=2_000, replays=300)

    for key in ("append_per_s", "verify_per_s", "replay_per_s"):
        value = figures[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, key
    assert figures["replays"] == 300
