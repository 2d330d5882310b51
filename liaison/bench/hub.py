"""``liaison bench``: the router against a raw pika forwarder, in one run, on one broker.

Both run as their own processes on a scratch vhost made for the run (deleted
after): N messages are loaded into the input queue first, the process under test
is started, and its rate is how fast the output queue fills, timed from the first
message out to the last. Then the latency run: the router running, messages
offered at a fixed rate, each timed from its ``created_at`` to its arrival in the
inbox. The router's peak RSS comes from ``/proc`` (VmHWM).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pika

from liaison.amqp import connection_parameters
from liaison.bench.load import purge, queue_depth, scratch_vhost, stop_process, watch_drain
from liaison.credentials import participant_url
from liaison.management import Management
from liaison.publish import publish_pipelined
from liaison.settings import Settings
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import new_envelope

SENDER = "gs"
RECIPIENT = "gs-archives"
RAW_IN, RAW_EXCHANGE, RAW_OUT = "bench.raw.in", "bench.raw.out", "bench.raw.sink"


@dataclass(frozen=True)
class BenchResult:
    """The figures of one run (the ``--json`` object)."""

    messages: int
    payload_bytes: int
    router_msgs_per_s: float
    raw_msgs_per_s: float
    ratio: float
    offered_rate: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    latency_samples: int
    router_peak_rss_mb: float
    broker: str

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return asdict(self)


def _body(payload_bytes: int, n: int) -> bytes:
    letter = Letter(
        registry_reference=f"BENCH/{n:07d}",
        subject="Benchmark letter",
        body="x" * max(1, payload_bytes - 380),
        addressee="Service des archives et du courrier",
        signatory="Le Secrétaire général",
    )
    return new_envelope(letter, sender=SENDER, recipients=[RECIPIENT]).encode()


def _props(user: str) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=wire.CONTENT_TYPE, delivery_mode=2, user_id=user, type="correspondence.letter"
    )


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LIAISON_AMQP_URL": settings.amqp_url,
            "LIAISON_MANAGEMENT_URL": settings.management_url,
            "LIAISON_USER_PREFIX": settings.user_prefix,
            "LIAISON_LOG_LEVEL": "warning",
            "LIAISON_HTTP_PORT": "0",
        }
    )
    return env


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_bench(
    settings: Settings,
    *,
    messages: int = 20_000,
    rate: int = 1_000,
    seconds: float = 5.0,
    payload_bytes: int = 1024,
) -> BenchResult:
    """Set up a scratch vhost, measure raw and router, tear the vhost down."""
    with scratch_vhost(settings, "hub") as bench:
        return _measure(bench, messages, rate, seconds, payload_bytes)


def _measure(
    bench: Settings, messages: int, rate: int, seconds: float, payload_bytes: int
) -> BenchResult:
    sender_url = participant_url(bench, SENDER)
    user = bench.user_for(SENDER)
    bodies = [_body(payload_bytes, n) for n in range(messages)]
    env = _env(bench)

    # Raw baseline: its own queues, same kind (quorum), same prefetch.
    connection = pika.BlockingConnection(connection_parameters(bench))
    channel = connection.channel()
    quorum = {"x-queue-type": "quorum"}
    channel.queue_declare(RAW_IN, durable=True, arguments=quorum)
    channel.exchange_declare(RAW_EXCHANGE, "fanout", durable=True)
    channel.queue_declare(RAW_OUT, durable=True, arguments=quorum)
    channel.queue_bind(RAW_OUT, RAW_EXCHANGE)
    connection.close()
    publish_pipelined(
        connection_parameters(bench), "", [(RAW_IN, b, _props(bench.hub_user)) for b in bodies]
    )
    raw = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liaison.bench.raw",
            bench.amqp_url,
            RAW_IN,
            RAW_EXCHANGE,
            str(bench.prefetch),
        ],
        env=env,
    )
    try:
        raw_rate = watch_drain(connection_parameters(bench), RAW_OUT, messages)
    finally:
        stop_process(raw)

    # The router: load ingress as the sender's own user, then start it.
    publish_pipelined(
        connection_parameters(bench, sender_url),
        wire.INGRESS_EXCHANGE,
        [("correspondence.letter", b, _props(user)) for b in bodies],
    )
    router = subprocess.Popen([sys.executable, "-m", "liaison", "serve"], env=env)
    try:
        inbox = wire.inbox_queue(RECIPIENT)
        router_rate = watch_drain(connection_parameters(bench), inbox, messages)
        purge(connection_parameters(bench), inbox)
        latencies = _latency(bench, sender_url, user, rate, seconds, payload_bytes)
        rss = _peak_rss_mb(router.pid)
    finally:
        stop_process(router)
    latencies.sort()
    return BenchResult(
        messages=messages,
        payload_bytes=len(bodies[0]),
        router_msgs_per_s=round(router_rate, 1),
        raw_msgs_per_s=round(raw_rate, 1),
        ratio=round(router_rate / raw_rate, 3),
        offered_rate=rate,
        latency_p50_ms=round(statistics.median(latencies), 2),
        latency_p99_ms=round(latencies[int(0.99 * (len(latencies) - 1))], 2),
        latency_max_ms=round(latencies[-1], 2),
        latency_samples=len(latencies),
        router_peak_rss_mb=round(rss, 1),
        broker=_broker_version(bench),
    )


def _latency(
    bench: Settings, sender_url: str, user: str, rate: int, seconds: float, payload_bytes: int
) -> list[float]:
    """Offer ``rate`` msg/s for ``seconds``; milliseconds from created_at to the inbox."""
    total = int(rate * seconds)
    received: list[float] = []
    done = threading.Event()
    ready = threading.Event()

    def consume() -> None:
        connection = pika.BlockingConnection(connection_parameters(bench))
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1000)
        ready.set()
        for _method, _props, body in channel.consume(
            wire.inbox_queue(RECIPIENT), auto_ack=True, inactivity_timeout=1.0
        ):
            if body is None:
                if done.is_set() and len(received) >= total:
                    break
                continue
            arrived = datetime.now(UTC)
            created = datetime.fromisoformat(
                body.split(b'"created_at":"', 1)[1].split(b'"', 1)[0].decode()
            )
            received.append((arrived - created).total_seconds() * 1000)
            if len(received) >= total:
                break
        connection.close()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    ready.wait(10)
    connection = pika.BlockingConnection(connection_parameters(bench, sender_url))
    channel = connection.channel()
    letter_props = _props(user)
    start = time.perf_counter()
    for n in range(total):
        target = start + n / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        channel.basic_publish(
            wire.INGRESS_EXCHANGE, "correspondence.letter", _body(payload_bytes, n), letter_props
        )
    connection.close()
    done.set()
    consumer.join(timeout=60)
    if len(received) < total:
        raise RuntimeError(f"latency run: {len(received)} of {total} messages arrived")
    return received


def _broker_version(bench: Settings) -> str:
    try:
        with Management(bench) as api:
            overview = api.request("GET", "/overview")
        return f"RabbitMQ {overview.get('rabbitmq_version', '?')}"
    except Exception:  # the version is decoration, not a figure
        return "RabbitMQ"


__all__ = ["BenchResult", "queue_depth", "run_bench"]
