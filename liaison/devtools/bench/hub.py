"""``liaison bench``: the router against a raw pika forwarder, in one run, on one broker.

Each side runs as its own process on a scratch vhost made for it (deleted after,
so each starts on an empty broker): N messages are loaded into its input queue,
the process under test is started, and its rate is N over the time from its
first message's arrival to its N-th ack, timed by the process itself
(:mod:`liaison.devtools.bench.clock`). The router acks a message only once its deliveries
and its audit batch are confirmed, and the audit writer runs beside it during
the measurement, as in production. The sides run in ``rounds`` pairs, the order
alternating (raw first, then router first, ...); the figures are the medians.
Then the latency run: the router running, messages offered at a fixed rate,
each timed from its ``created_at`` to its arrival in the inbox. The router's
resident memory is sampled (``/proc``) at its first ack, half-way and at the end.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pika

from liaison.adapters.connections import connection_parameters
from liaison.adapters.management import Management
from liaison.adapters.pipelined import publish_pipelined
from liaison.credentials import participant_url
from liaison.devtools.bench.clock import AckWatch, resident_mb
from liaison.devtools.bench.cpu import CpuMeter, broker_pids
from liaison.devtools.bench.load import purge, queue_depth, scratch_vhost, stop_process
from liaison.devtools.bench.paced import PacedRun
from liaison.devtools.bench.raw import SETTINGS_ENV
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
    prefetch: int
    #: Router processes (competing consumers) on the router's side.
    routers: int
    #: Medians over the rounds (all routers together), and their ratio.
    router_msgs_per_s: float
    raw_msgs_per_s: float
    ratio: float
    #: Each round's rates, and which side ran first in it.
    router_runs: tuple[float, ...]
    raw_runs: tuple[float, ...]
    first_side: tuple[str, ...]
    #: Each router's own rate in the first round (its acks over its own span).
    per_router_msgs_per_s: tuple[float, ...]
    audit_writer_running: bool
    offered_rate: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    latency_samples: int
    #: The same paced load through the raw forwarder (first round): the broker's share.
    raw_latency_p50_ms: float
    raw_latency_p99_ms: float
    router_peak_rss_mb: float
    #: Router RSS at its first ack, half-way and at the end of the first round.
    router_rss_mb: tuple[float, ...]
    #: CPU microseconds per message of each process (median over the rounds), from
    #: the first ack to the last (router side: until the audit writer is idle again);
    #: ``None`` where ``/proc`` could not tell (no single local broker, not Linux).
    router_cpu_us_per_msg: dict[str, float | None]
    raw_cpu_us_per_msg: dict[str, float | None]
    load_average: tuple[float, float, float]
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


class _FreshLetters:
    """Bodies like ``_body``'s with a new id and ``created_at`` each, for a few µs apiece.

    Building and encoding a letter through the models costs about 60 µs: in the
    latency run that CPU would be taken from the hub being measured.
    """

    def __init__(self, payload_bytes: int) -> None:
        template = _body(payload_bytes, 0)
        data = json.loads(template)
        self._template = template
        self._id = data["message_id"].encode()
        self._created = data["created_at"].encode()

    def __call__(self, at: datetime) -> bytes:
        created = at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return self._template.replace(self._id, str(uuid.uuid4()).encode()).replace(
            self._created, created.encode()
        )


def _props(user: str) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=wire.CONTENT_TYPE, delivery_mode=2, user_id=user, type="correspondence.letter"
    )


def _spawn(bench: Settings, *args: str) -> subprocess.Popen[bytes]:
    """A process under test, given the whole settings object (prefetch included)."""
    quiet = bench.replace(log_level="warning", http_port=0, log_json=True)
    env = {**os.environ, SETTINGS_ENV: quiet.model_dump_json()}
    return subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=subprocess.PIPE)


def run_bench(
    settings: Settings,
    *,
    messages: int = 20_000,
    rate: int = 1_000,
    seconds: float = 5.0,
    payload_bytes: int = 1024,
    rounds: int = 2,
    routers: int = 1,
) -> BenchResult:
    """Measure raw and router in ``rounds`` pairs, alternating which goes first."""
    load = os.getloadavg()
    bodies = [_body(payload_bytes, n) for n in range(messages)]
    raw_runs: list[float] = []
    router_runs: list[float] = []
    first_side: list[str] = []
    latencies: list[float] = []
    raw_latencies: list[float] = []
    rss: list[float] = []
    per_router: list[float] = []
    raw_cpu: list[dict[str, float | None]] = []
    router_cpu: list[dict[str, float | None]] = []
    peak = 0.0
    for round_ in range(rounds):
        sides = ["raw", "router"] if round_ % 2 == 0 else ["router", "raw"]
        first_side.append(sides[0])
        for side in sides:
            if side == "raw":
                paced = (rate, seconds, payload_bytes) if round_ == 0 else None
                raw = _raw_side(settings, bodies, latency=paced)
                raw_runs.append(raw.rate)
                raw_cpu.append(raw.cpu_us)
                if round_ == 0:
                    raw_latencies = sorted(raw.latencies)
                continue
            timed = _router_side(
                settings,
                bodies,
                latency=(rate, seconds, payload_bytes) if round_ == 0 else None,
                routers=routers,
            )
            router_runs.append(timed.rate)
            router_cpu.append(timed.cpu_us)
            peak = max(peak, timed.peak_rss)
            if round_ == 0:
                latencies, rss, per_router = sorted(timed.latencies), timed.rss, timed.each
    router_rate = round(statistics.median(router_runs), 1)
    raw_rate = round(statistics.median(raw_runs), 1)
    return BenchResult(
        messages=messages,
        payload_bytes=len(bodies[0]),
        prefetch=settings.prefetch,
        routers=routers,
        router_msgs_per_s=router_rate,
        raw_msgs_per_s=raw_rate,
        ratio=round(router_rate / raw_rate, 3),
        router_runs=tuple(round(r, 1) for r in router_runs),
        raw_runs=tuple(round(r, 1) for r in raw_runs),
        first_side=tuple(first_side),
        per_router_msgs_per_s=tuple(round(r, 1) for r in per_router),
        audit_writer_running=True,
        offered_rate=rate,
        latency_p50_ms=round(statistics.median(latencies), 2),
        latency_p99_ms=round(latencies[int(0.99 * (len(latencies) - 1))], 2),
        latency_max_ms=round(latencies[-1], 2),
        latency_samples=len(latencies),
        raw_latency_p50_ms=round(statistics.median(raw_latencies), 2),
        raw_latency_p99_ms=round(raw_latencies[int(0.99 * (len(raw_latencies) - 1))], 2),
        router_peak_rss_mb=peak,
        router_rss_mb=tuple(rss),
        router_cpu_us_per_msg=_median_each(router_cpu),
        raw_cpu_us_per_msg=_median_each(raw_cpu),
        load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
        broker=_broker_version(settings),
    )


def _median_each(runs: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Each role's median over the rounds (``None`` if a round could not read it)."""
    roles = runs[0].keys() if runs else ()
    out: dict[str, float | None] = {}
    for role in roles:
        values = [run[role] for run in runs]
        clean = [v for v in values if v is not None]
        out[role] = round(statistics.median(clean), 1) if len(clean) == len(values) else None
    return out


@dataclass(frozen=True)
class _RawTimed:
    rate: float
    cpu_us: dict[str, float | None]
    latencies: list[float]


def _raw_side(
    settings: Settings, bodies: list[bytes], *, latency: tuple[int, float, int] | None
) -> _RawTimed:
    """The raw forwarder's rate (and latency), on a vhost of its own: its own quorum queues."""
    with scratch_vhost(settings, "raw") as bench:
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
        watch = AckWatch()
        # The broker's CPU from before the forwarder starts to its last ack, net of idle.
        meter = CpuMeter({"broker": broker_pids(bench)})
        meter.idle()
        meter.start()
        raw = _spawn(bench, "liaison.devtools.bench.raw", RAW_IN, RAW_EXCHANGE)
        watch.follow(raw)
        try:
            rate = watch.wait(len(bodies))[0]
            meter.stop()
            cpu = {"raw": watch.cpu_us_per_message(), **meter.per_message_us(len(bodies))}
            latencies: list[float] = []
            if latency is not None:
                # The same paced load, through the forwarder: what the broker and a
                # plain pika forwarder take on this machine, beside the router's figure.
                purge(connection_parameters(bench), RAW_OUT)
                url, user = bench.amqp_url, bench.hub_user
                latencies = _paced(bench, url, user, "", RAW_IN, RAW_OUT, *latency)
            return _RawTimed(rate, cpu, latencies)
        finally:
            stop_process(raw)


@dataclass(frozen=True)
class _RouterTimed:
    rate: float
    rss: list[float]
    peak_rss: float
    latencies: list[float]
    each: list[float]
    cpu_us: dict[str, float | None]


def _router_side(
    settings: Settings,
    bodies: list[bytes],
    *,
    latency: tuple[int, float, int] | None,
    routers: int,
) -> _RouterTimed:
    """The router's rate with the audit writer running, on a vhost of its own."""
    with scratch_vhost(settings, "hub") as bench:
        sender_url = participant_url(bench, SENDER)
        user = bench.user_for(SENDER)

        def load() -> None:
            publish_pipelined(
                connection_parameters(bench, sender_url),
                wire.INGRESS_EXCHANGE,
                [("correspondence.letter", b, _props(user)) for b in bodies],
            )

        # One router meets a full queue, like the raw forwarder. Several start first and
        # the load follows once all of them consume: preloaded, the one that starts
        # first (a Python process takes a second or two) would take everything.
        if routers == 1:
            load()
        writer = _spawn(bench, "liaison.devtools.bench.serve", "audit")
        recorded = AckWatch()  # the writer reports the audit messages it has recorded
        recorded.follow(writer)
        started: list[subprocess.Popen[bytes]] = []
        # The writer's and the broker's CPU from before the routers start (the writer
        # consuming, idle) to the writer's last record, net of their idle rates.
        meter = CpuMeter({"audit_writer": (writer.pid,), "broker": broker_pids(bench)})
        try:
            _wait_for_consumer(bench, wire.AUDIT_QUEUE)
            meter.idle()
            meter.start()
            watch = AckWatch()
            for _ in range(routers):
                started.append(_spawn(bench, "liaison.devtools.bench.serve", "router"))
                watch.follow(started[-1])
            if routers > 1:
                _wait_for_consumer(bench, wire.INGRESS_QUEUE, count=routers)
                with meter.excluded():
                    load()
            first = started[0]
            rate, rss = watch.wait(len(bodies), rss_of=first.pid)
            each = watch.rates()
            # The writer may still be recording the last batches: its work (and the
            # broker's for them) is part of each message's cost, and a latency run
            # starting now would measure the catch-up, not 1,000 msg/s.
            recorded.wait_for("recorded", watch.total("audit"))
            meter.stop()
            latencies: list[float] = []
            if latency is not None:
                purge(connection_parameters(bench), wire.inbox_queue(RECIPIENT))
                latencies = _latency(bench, sender_url, user, *latency)
            return _RouterTimed(
                rate,
                rss,
                resident_mb(first.pid, "VmHWM"),
                latencies,
                each,
                {"router": watch.cpu_us_per_message(), **meter.per_message_us(len(bodies))},
            )
        finally:
            for router in started:
                stop_process(router)
            stop_process(writer)


def _wait_for_consumer(
    bench: Settings, queue: str, timeout: float = 60.0, *, count: int = 1
) -> None:
    connection = pika.BlockingConnection(connection_parameters(bench))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while channel.queue_declare(queue, passive=True).method.consumer_count < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} consumer(s) on {queue} after {timeout} s")
            time.sleep(0.05)
    finally:
        connection.close()


def _latency(
    bench: Settings, sender_url: str, user: str, rate: int, seconds: float, payload_bytes: int
) -> list[float]:
    """Offer ``rate`` msg/s of letters to the hub for ``seconds``; ms from created_at to inbox."""
    return _paced(
        bench,
        sender_url,
        user,
        wire.INGRESS_EXCHANGE,
        "correspondence.letter",
        wire.inbox_queue(RECIPIENT),
        rate,
        seconds,
        payload_bytes,
    )


def _paced(
    bench: Settings,
    sender_url: str,
    user: str,
    exchange: str,
    routing_key: str,
    queue: str,
    rate: int,
    seconds: float,
    payload_bytes: int,
) -> list[float]:
    total = int(rate * seconds)
    received = PacedRun(
        publish_params=connection_parameters(bench, sender_url),
        consume_params=connection_parameters(bench),
        exchange=exchange,
        routing_key=routing_key,
        inbox=queue,
        properties=_props(user),
        body=_FreshLetters(payload_bytes),
        rate=rate,
        total=total,
    ).run()
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
