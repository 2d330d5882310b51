"""``liaison bench peers``: the hub against its peers, side by side, on one broker, in one run.

Three comparisons, each as ratios of measured rates:

- the router against a raw pika forwarder: :func:`liaison.devtools.bench.hub.run_bench`,
  reused as it is (it also gives the latency figures);
- the router against a FastStream application doing the same validate-and-forward
  (:mod:`liaison.devtools.bench.faststream_app`, its own process, like the raw forwarder):
  N messages loaded into a quorum queue, the app started, its rate timed on the
  output queue from the first message out to the last;
- the producer SDK (``producers.Publisher``, kombu, a confirm per message)
  against raw pika with pipelined confirms (up to 1,000 in flight), publishing
  the same prepared envelopes to ``liaison.ingress`` as the same participant.

Every measurement runs on its own scratch vhost, deleted afterwards. FastStream
is an optional extra (``pip install -e '.[bench]'``); without it that line is
reported as not measured.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import pika

from liaison.adapters.connections import connection_parameters
from liaison.adapters.pipelined import publish_pipelined
from liaison.credentials import participant_url
from liaison.devtools.bench.hub import SENDER, BenchResult, run_bench
from liaison.devtools.bench.load import purge, scratch_vhost, stop_process, watch_drain
from liaison.settings import Settings
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import Envelope, new_envelope
from schemas.types import Payload

FS_IN, FS_EXCHANGE, FS_OUT = "bench.faststream.in", "bench.faststream.out", "bench.faststream.sink"
RECIPIENT = "gs-archives"


@dataclass(frozen=True)
class PeersResult:
    """The figures of one ``bench peers`` run (the ``--json`` object)."""

    messages: int
    payload_bytes: int
    router_msgs_per_s: float
    raw_msgs_per_s: float
    router_vs_raw: float
    faststream_msgs_per_s: float | None
    router_vs_faststream: float | None
    sdk_messages: int
    sdk_msgs_per_s: float | None
    raw_publish_msgs_per_s: float
    sdk_vs_raw_publish: float | None
    latency_p50_ms: float
    latency_p99_ms: float
    notes: tuple[str, ...]
    broker: str

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return asdict(self)


def envelopes(count: int, payload_bytes: int) -> list[Envelope[Payload]]:
    """``count`` letters from the bench sender of about ``payload_bytes`` each."""
    return [
        new_envelope(
            Letter(
                registry_reference=f"BENCH/{n:07d}",
                subject="Benchmark letter",
                body="x" * max(1, payload_bytes - 380),
                addressee="Service des archives et du courrier",
                signatory="Le Secrétaire général",
            ),
            sender=SENDER,
            recipients=[RECIPIENT],
        )
        for n in range(count)
    ]


def faststream_available() -> bool:
    """Whether the ``bench`` extra (FastStream with its RabbitMQ driver) is installed."""
    return importlib.util.find_spec("faststream") is not None


def measure_faststream(settings: Settings, bodies: list[bytes]) -> float:
    """Messages per second the FastStream app forwards, on a scratch vhost."""
    with scratch_vhost(settings, "faststream") as bench:
        connection = pika.BlockingConnection(connection_parameters(bench))
        channel = connection.channel()
        quorum = {"x-queue-type": "quorum"}
        channel.queue_declare(FS_IN, durable=True, arguments=quorum)
        channel.exchange_declare(FS_EXCHANGE, "fanout", durable=True)
        channel.queue_declare(FS_OUT, durable=True, arguments=quorum)
        channel.queue_bind(FS_OUT, FS_EXCHANGE)
        connection.close()
        props = pika.BasicProperties(content_type=wire.CONTENT_TYPE, delivery_mode=2)
        publish_pipelined(bench.amqp_url, "", [(FS_IN, body, props) for body in bodies])
        app = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "liaison.devtools.bench.faststream_app",
                bench.amqp_url,
                FS_IN,
                FS_EXCHANGE,
                str(bench.prefetch),
            ]
        )
        try:
            return watch_drain(connection_parameters(bench), FS_OUT, len(bodies))
        finally:
            stop_process(app)


def measure_publishers(
    settings: Settings, prepared: list[Envelope[Payload]]
) -> tuple[float | None, float, str]:
    """(SDK msg/s or None, raw pipelined pika msg/s, a note) publishing ``prepared`` to ingress."""
    with scratch_vhost(settings, "publish") as bench:
        url = participant_url(bench, SENDER)
        user = bench.user_for(SENDER)
        bodies = [(e.type, e.encode(), _props(e, user)) for e in prepared]
        raw_rate = len(bodies) / publish_pipelined(url, wire.INGRESS_EXCHANGE, bodies)
        purge(connection_parameters(bench), wire.INGRESS_QUEUE)
        try:
            from producers import ParticipantSettings, Publisher  # noqa: PLC0415 - optional SDK
        except ImportError as exc:
            return None, raw_rate, f"producer SDK not measured: {exc}"
        started = time.perf_counter()
        with Publisher(ParticipantSettings(code=SENDER, amqp_url=url)) as publisher:
            for envelope in prepared:
                publisher.publish_envelope(envelope)
        sdk_rate = len(prepared) / (time.perf_counter() - started)
        return sdk_rate, raw_rate, ""


def _props(envelope: Envelope[Payload], user: str) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=wire.CONTENT_TYPE,
        delivery_mode=2,
        user_id=user,
        message_id=str(envelope.message_id),
        type=envelope.type,
    )


def run_peers(
    settings: Settings,
    *,
    messages: int = 20_000,
    sdk_messages: int = 5_000,
    payload_bytes: int = 1024,
) -> PeersResult:
    """Measure the router, the raw forwarder, the FastStream app, the SDK and raw pika."""
    hub: BenchResult = run_bench(
        settings, messages=messages, rate=1_000, seconds=5.0, payload_bytes=payload_bytes
    )
    notes: list[str] = []
    prepared = envelopes(messages, payload_bytes)
    faststream: float | None = None
    if faststream_available():
        faststream = measure_faststream(settings, [e.encode() for e in prepared])
    else:
        notes.append("FastStream not measured: pip install -e '.[bench]'")
    sdk, pika_rate, note = measure_publishers(settings, prepared[:sdk_messages])
    if note:
        notes.append(note)
    return PeersResult(
        messages=messages,
        payload_bytes=hub.payload_bytes,
        router_msgs_per_s=hub.router_msgs_per_s,
        raw_msgs_per_s=hub.raw_msgs_per_s,
        router_vs_raw=hub.ratio,
        faststream_msgs_per_s=round(faststream, 1) if faststream else None,
        router_vs_faststream=round(hub.router_msgs_per_s / faststream, 3) if faststream else None,
        sdk_messages=min(sdk_messages, messages),
        sdk_msgs_per_s=round(sdk, 1) if sdk else None,
        raw_publish_msgs_per_s=round(pika_rate, 1),
        sdk_vs_raw_publish=round(sdk / pika_rate, 3) if sdk else None,
        latency_p50_ms=hub.latency_p50_ms,
        latency_p99_ms=hub.latency_p99_ms,
        notes=tuple(notes),
        broker=hub.broker,
    )


__all__ = ["PeersResult", "run_peers"]
