"""``liaison bench flash``: how long a FLASH message waits behind a routine backlog.

On a scratch vhost (:func:`liaison.devtools.bench.load.scratch_vhost`): ``backlog`` ROUTINE
letters wait in ``inbox.gs-archives``, put there through the hub (the router
and the audit writer route them, as in production) or, with ``via="direct"``,
published straight to ``liaison.deliver`` as the hub's user (the same bytes,
without the routing time). Then the SDK consumer (:class:`consumers.Consumer`)
starts on that inbox, its handler taking ``handler_ms`` per message, so the
backlog is still there throughout; after a second of it, FLASH letters go
through the router at ``rate`` per second for ``seconds``. Each FLASH is timed
from just before its publish to its handler's start (both clocks in this
process). The routine letters handled before the last FLASH arrived say how
much of the backlog was left behind it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import pika

from consumers import Consumer
from liaison.adapters.connections import connection_parameters
from liaison.adapters.pipelined import publish_pipelined
from liaison.core.tokens import load_or_create_secret, receipt_token
from liaison.credentials import participant_url
from liaison.devtools.bench.hub import _props, _spawn, _wait_for_consumer
from liaison.devtools.bench.load import queue_depth, scratch_vhost, stop_process
from liaison.settings import Settings
from liaison.topology import credentials_path
from producers.settings import ParticipantSettings
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import Envelope, new_envelope
from schemas.types import Precedence

SENDER = "gs"
RECIPIENT = "gs-archives"
#: Seconds the consumer chews the backlog before the first FLASH is sent.
WARM_UP_S = 1.0


@dataclass(frozen=True)
class FlashResult:
    """The figures of one run (the ``--json`` object)."""

    backlog: int
    #: "hub" (routed by the router) or "direct" (published to liaison.deliver as the hub).
    backlog_filled_via: str
    backlog_fill_s: float
    handler_ms: float
    offered_rate: float
    flash_sent: int
    flash_handled: int
    flash_p50_ms: float
    flash_p99_ms: float
    flash_max_ms: float
    #: ROUTINE letters handled before the first and before the last FLASH was.
    routine_handled_before_first_flash: int
    routine_handled_before_last_flash: int
    #: The backlog still waiting (in the inbox or the consumer's buffer) when the last
    #: FLASH reached its handler; the inbox's own depth then (ready messages).
    backlog_remaining_at_last_flash: int
    inbox_ready_after_last_flash: int
    routine_prefetch: int
    load_average: tuple[float, float, float]

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return asdict(self)


def _letter(n: int, precedence: Precedence) -> Envelope[Letter]:
    letter = Letter(
        registry_reference=f"FLASH/{n:07d}",
        subject=f"{precedence.value} letter {n}",
        body="x" * 600,
        addressee="Service des archives et du courrier",
        signatory="Le Secrétaire général",
    )
    return new_envelope(letter, sender=SENDER, recipients=[RECIPIENT], precedence=precedence)


class _Timing:
    """What the handler sees, shared with the sending thread."""

    def __init__(self, backlog: int) -> None:
        self.lock = threading.Lock()
        self.sent_at: dict[str, float] = {}
        self.latencies_ms: list[float] = []
        self.routine = 0
        self.routine_at_first: int | None = None
        self.routine_at_last = 0
        self.backlog = backlog

    def handled(self, envelope: Envelope[Any], now: float) -> None:
        if envelope.precedence is not Precedence.FLASH:
            self.routine += 1
            return
        with self.lock:
            sent = self.sent_at.get(str(envelope.message_id))
        if sent is None:
            return
        self.latencies_ms.append((now - sent) * 1000)
        if self.routine_at_first is None:
            self.routine_at_first = self.routine
        self.routine_at_last = self.routine


def run_flash(
    settings: Settings,
    *,
    backlog: int = 50_000,
    rate: float = 10.0,
    seconds: float = 10.0,
    handler_ms: float = 1.0,
    via: str = "hub",
    routine_prefetch: int = 10,
) -> FlashResult:
    """Measure FLASH publish→handler latency behind ``backlog`` ROUTINE letters."""
    if via not in {"hub", "direct"}:
        raise ValueError(f"via must be 'hub' or 'direct', not {via!r}")
    load = os.getloadavg()
    with scratch_vhost(settings, "flash") as bench:
        writer = _spawn(bench, "liaison.devtools.bench.serve", "audit")
        router: subprocess.Popen[bytes] | None = None
        try:
            _wait_for_consumer(bench, wire.AUDIT_QUEUE)
            router = _spawn(bench, "liaison.devtools.bench.serve", "router")
            _wait_for_consumer(bench, wire.INGRESS_QUEUE)
            fill_s = _fill(bench, backlog, via)
            return _measure(
                bench,
                backlog=backlog,
                via=via,
                fill_s=fill_s,
                rate=rate,
                seconds=seconds,
                handler_ms=handler_ms,
                routine_prefetch=routine_prefetch,
                load=load,
            )
        finally:
            if router is not None:
                stop_process(router)
            stop_process(writer)


def _fill(bench: Settings, backlog: int, via: str) -> float:
    """Put ``backlog`` ROUTINE letters in the recipient's routine inbox; seconds taken."""
    started = time.perf_counter()
    envelopes = [_letter(n, Precedence.ROUTINE) for n in range(backlog)]
    if via == "hub":
        sender_url = participant_url(bench, SENDER)
        props = _props(bench.user_for(SENDER))
        messages = [("correspondence.letter", e.encode(), props) for e in envelopes]
        publish_pipelined(connection_parameters(bench, sender_url), wire.INGRESS_EXCHANGE, messages)
    else:
        secret = load_or_create_secret(bench.receipt_key_file)
        messages = [
            (
                wire.delivery_key(RECIPIENT, Precedence.ROUTINE.value),
                e.encode(),
                pika.BasicProperties(
                    content_type=wire.CONTENT_TYPE,
                    delivery_mode=2,
                    user_id=bench.hub_user,
                    message_id=str(e.message_id),
                    type=e.type,
                    headers={
                        wire.H_RECEIPT_TOKEN: receipt_token(
                            secret, str(e.message_id), RECIPIENT, SENDER
                        )
                    },
                ),
            )
            for e in envelopes
        ]
        publish_pipelined(connection_parameters(bench), wire.DELIVER_EXCHANGE, messages)
    _wait_depth(bench, wire.inbox_queue(RECIPIENT), backlog, timeout=max(120.0, backlog / 200))
    return time.perf_counter() - started


def _wait_depth(bench: Settings, queue: str, expected: int, *, timeout: float) -> None:
    connection = pika.BlockingConnection(connection_parameters(bench))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while (found := queue_depth(channel, queue)) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{queue}: {found} of {expected} after {timeout:.0f} s")
            time.sleep(0.1)
    finally:
        connection.close()


def _measure(
    bench: Settings,
    *,
    backlog: int,
    via: str,
    fill_s: float,
    rate: float,
    seconds: float,
    handler_ms: float,
    routine_prefetch: int,
    load: tuple[float, float, float],
) -> FlashResult:
    timing = _Timing(backlog)
    total = max(1, int(rate * seconds))
    participant = ParticipantSettings.from_credentials(
        credentials_path(bench, RECIPIENT), environ={}
    )
    consumer = Consumer(participant, routine_prefetch=routine_prefetch)
    pause = handler_ms / 1000

    def handle(envelope: Envelope[Any]) -> None:
        timing.handled(envelope, time.perf_counter())
        time.sleep(pause)  # a realistic small piece of work

    consumer.register("correspondence.letter", handle)
    runner = threading.Thread(
        target=consumer.run, kwargs={"install_signal_handlers": False}, daemon=True
    )
    runner.start()
    try:
        time.sleep(WARM_UP_S)
        _send_flash(bench, timing, total, rate)
        deadline = time.monotonic() + 30.0
        while len(timing.latencies_ms) < total and time.monotonic() < deadline:
            time.sleep(0.01)
        remaining = backlog - timing.routine_at_last
        inbox_ready = _ready(bench, wire.inbox_queue(RECIPIENT))
    finally:
        consumer.stop()
        runner.join(timeout=30)
        consumer.close()
    latencies = sorted(timing.latencies_ms)
    if not latencies:
        raise RuntimeError(f"no FLASH letter reached the handler ({total} sent)")
    return FlashResult(
        backlog=backlog,
        backlog_filled_via=via,
        backlog_fill_s=round(fill_s, 2),
        handler_ms=handler_ms,
        offered_rate=rate,
        flash_sent=total,
        flash_handled=len(latencies),
        flash_p50_ms=round(statistics.median(latencies), 2),
        flash_p99_ms=round(latencies[int(0.99 * (len(latencies) - 1))], 2),
        flash_max_ms=round(latencies[-1], 2),
        routine_handled_before_first_flash=timing.routine_at_first or 0,
        routine_handled_before_last_flash=timing.routine_at_last,
        backlog_remaining_at_last_flash=remaining,
        inbox_ready_after_last_flash=inbox_ready,
        routine_prefetch=routine_prefetch,
        load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
    )


def _send_flash(bench: Settings, timing: _Timing, total: int, rate: float) -> None:
    """FLASH letters through the router at ``rate`` per second, each timed at its publish."""
    envelopes = [_letter(n, Precedence.FLASH) for n in range(total)]
    bodies = [e.encode() for e in envelopes]
    connection = pika.BlockingConnection(
        connection_parameters(bench, participant_url(bench, SENDER))
    )
    try:
        channel = connection.channel()
        props = _props(bench.user_for(SENDER))
        start = time.perf_counter()
        for n, (envelope, body) in enumerate(zip(envelopes, bodies, strict=True)):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            with timing.lock:
                timing.sent_at[str(envelope.message_id)] = time.perf_counter()
            channel.basic_publish(wire.INGRESS_EXCHANGE, "correspondence.letter", body, props)
    finally:
        connection.close()


def _ready(bench: Settings, queue: str) -> int:
    connection = pika.BlockingConnection(connection_parameters(bench))
    try:
        return queue_depth(connection.channel(), queue)
    finally:
        connection.close()


__all__ = ["FlashResult", "run_flash"]
