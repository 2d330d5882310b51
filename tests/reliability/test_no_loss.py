"""No confirmed message is lost while the router is killed and the broker misbehaves.

Producers (one process per participant, each its own RabbitMQ user, pipelined
confirms, retrying whatever is not confirmed) publish through the real hub (router
and audit writer as processes) while the router is SIGKILLed every few seconds,
the broker closes every connection on the vhost, and the RabbitMQ application is
stopped and started once. Afterwards every confirmed message is in each of its
recipients' inboxes (duplicates counted, not failed on: the router's duplicate
window does not survive SIGKILL), the ledger has exactly one ``received`` and
one ``delivered`` record per message, and ``liaison audit verify`` passes.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pika
import pika.exceptions
import pytest

from liaison.adapters.connections import node_parameters
from liaison.credentials import participant_url
from liaison.ledger.query import iter_records
from liaison.settings import Settings
from schemas import wire
from tests.reliability.faults import (
    HubProcess,
    app_stopped,
    close_vhost_connections,
    ensure_app_running,
)

#: Participant → the recipients its letters go to (one or two per message).
PRODUCERS: dict[str, tuple[str, ...]] = {
    "gs": ("gs-archives", "gs-legal"),
    "gs-treaties": ("gs-legal", "council"),
    "emb-berlin": ("gs", "dir-political"),
    "chamber": ("gs", "gs-archives"),
}


@dataclass(frozen=True)
class Plan:
    """The size of a run and when its faults happen (seconds from the start)."""

    messages: int
    rate_per_producer: float
    close_connections_at: tuple[float, ...]
    stop_app_at: float
    kill_every: tuple[float, float]


SHORT = Plan(20_000, 300.0, (4.0,), 9.0, (1.5, 3.5))
LONG = Plan(100_000, 450.0, (6.0, 40.0), 20.0, (1.5, 4.0))


def queue_ready(settings: Settings, queue: str) -> int:
    """Ready messages in ``queue`` (-1 when the broker cannot say right now)."""
    try:
        connection = pika.BlockingConnection(node_parameters(settings, name="proof"))
    except (pika.exceptions.AMQPError, OSError):
        return -1
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    except (pika.exceptions.AMQPError, OSError):
        return -1
    finally:
        if connection.is_open:
            connection.close()


def consumers(settings: Settings, queue: str) -> int:
    """Consumers on ``queue`` (0 when the broker cannot say right now)."""
    try:
        connection = pika.BlockingConnection(node_parameters(settings, name="proof"))
    except (pika.exceptions.AMQPError, OSError):
        return 0
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    except (pika.exceptions.AMQPError, OSError):
        return 0
    finally:
        if connection.is_open:
            connection.close()


def drain(settings: Settings, queue: str) -> Counter[str]:
    """Take every message out of ``queue``; how many times each message id was there."""
    seen: Counter[str] = Counter()
    connection = pika.BlockingConnection(node_parameters(settings, name="proof"))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=2_000)
        for method, props, _body in channel.consume(queue, inactivity_timeout=2.0):
            if method is None:
                if channel.queue_declare(queue, passive=True).method.message_count == 0:
                    break
                continue
            seen[props.message_id] += 1
            channel.basic_ack(method.delivery_tag, multiple=True)
        channel.cancel()
    finally:
        connection.close()
    return seen


def wait_until(predicate: object, timeout: float, what: str) -> None:
    """Poll ``predicate`` every half second until true; AssertionError after ``timeout``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def settle(process: HubProcess, settings: Settings, queue: str, timeout: float) -> None:
    """Let ``process`` empty ``queue``, stop it gracefully, and start again until it stays empty."""
    deadline = time.monotonic() + timeout
    while True:
        if not process.alive():
            process.start()
        wait_until(
            lambda: queue_ready(settings, queue) == 0,
            max(1.0, deadline - time.monotonic()),
            f"{queue} to empty",
        )
        time.sleep(1.0)
        code = process.stop()
        assert code == 0, f"{' '.join(process.args)} exited {code}:\n{process.log()[-3000:]}"
        if queue_ready(settings, queue) == 0:
            return
        assert time.monotonic() < deadline, f"{queue} never stayed empty"


def start_producers(
    settings: Settings, plan: Plan, out_dir: Path
) -> dict[str, tuple[subprocess.Popen[bytes], Path]]:
    """One producer process per participant of :data:`PRODUCERS`."""
    per_producer = plan.messages // len(PRODUCERS)
    started: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for code, recipients in PRODUCERS.items():
        out = out_dir / f"confirmed-{code}.tsv"
        with (out_dir / f"producer-{code}.log").open("wb") as log:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.reliability.producer",
                    participant_url(settings, code),
                    settings.user_for(code),
                    code,
                    ",".join(recipients),
                    str(per_producer),
                    str(plan.rate_per_producer),
                    str(out),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started[code] = (popen, out)
    return started


def inject_faults(
    settings: Settings,
    plan: Plan,
    router: HubProcess,
    producers: dict[str, tuple[subprocess.Popen[bytes], Path]],
    timeline: list[str],
) -> None:
    """Kill the router every few seconds, close connections, restart the broker app once.

    Runs in the test's own thread (so a pytest timeout still reaches the ``finally``
    that starts the broker again) until every producer has finished.
    """
    chance = random.Random(20_261_127)
    started = time.monotonic()
    closes = list(plan.close_connections_at)
    app_restarted = False
    next_kill = started + chance.uniform(*plan.kill_every)

    def now() -> float:
        return time.monotonic() - started

    while any(popen.poll() is None for popen, _out in producers.values()) or not app_restarted:
        if time.monotonic() - started > 1_500:
            raise AssertionError(f"producers still running after 1500 s: {timeline}")
        if closes and now() >= closes[0]:
            closes.pop(0)
            close_vhost_connections(settings)
            timeline.append(f"{now():6.1f}s closed every connection on the vhost")
        if not app_restarted and now() >= plan.stop_app_at:
            app_restarted = True
            timeline.append(f"{now():6.1f}s rabbitmqctl stop_app")
            with app_stopped(settings, down_for=3.0):
                pass
            timeline.append(f"{now():6.1f}s broker answering again after start_app")
        if time.monotonic() >= next_kill:
            if router.alive() and consumers(settings, wire.INGRESS_QUEUE) > 0:
                router.kill()
                router.start()
                timeline.append(f"{now():6.1f}s SIGKILL router (kill #{router.kills})")
            next_kill = time.monotonic() + chance.uniform(*plan.kill_every)
        if not router.alive():
            router.start()
        time.sleep(0.1)


def expected_deliveries(
    producers: dict[str, tuple[subprocess.Popen[bytes], Path]],
) -> dict[str, tuple[str, ...]]:
    """Confirmed message id → its recipients, from the producers' files."""
    expected: dict[str, tuple[str, ...]] = {}
    for _popen, out in producers.values():
        for line in out.read_text(encoding="utf-8").splitlines():
            if line:
                message_id, recipients = line.split("\t")
                expected[message_id] = tuple(recipients.split(","))
    return expected


def run_proof(settings: Settings, plan: Plan, tmp_path: Path) -> None:
    """The whole no-loss scenario for ``plan``; prints and asserts the figures."""
    started = time.monotonic()
    timeline: list[str] = []
    writer = HubProcess(
        settings,
        ("audit", "run"),
        tmp_path / "writer.log",
        {"LIAISON_CHECKPOINT_EVERY": "5000", "LIAISON_CHECKPOINT_SECONDS": "2"},
    )
    router = HubProcess(settings, ("serve",), tmp_path / "router.log")
    producers: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        writer.start()
        router.start()
        producers = start_producers(settings, plan, tmp_path)
        try:
            inject_faults(settings, plan, router, producers, timeline)
        finally:
            ensure_app_running(settings)
        publish_s = time.monotonic() - started
        for code, (popen, _out) in producers.items():
            log = (tmp_path / f"producer-{code}.log").read_text(errors="replace")
            assert popen.wait(timeout=60) == 0, f"producer {code} failed:\n{log[-3000:]}"
            timeline.append(f"producer {code}: {log.strip().splitlines()[-1]}")
        settle(router, settings, wire.INGRESS_QUEUE, timeout=600)
        settle(writer, settings, wire.AUDIT_QUEUE, timeout=300)
        settled_s = time.monotonic() - started
    finally:
        for popen, _out in producers.values():
            if popen.poll() is None:
                popen.kill()
        router.kill()
        writer.kill()

    expected = expected_deliveries(producers)
    inboxes = sorted({code for recipients in PRODUCERS.values() for code in recipients})
    found = {code: drain(settings, wire.inbox_queue(code)) for code in inboxes}
    dead = drain(settings, wire.DEAD_QUEUE)
    lost = [
        (message_id, code)
        for message_id, recipients in expected.items()
        for code in recipients
        if found[code][message_id] == 0
    ]
    copies = sum(len(r) for r in expected.values())
    duplicates = sum(n - 1 for counts in found.values() for n in counts.values() if n > 1)
    unexpected = sum(
        1 for code in inboxes for message_id in found[code] if message_id not in expected
    )

    records = Counter(
        (record.event, record.message_id)
        for record in iter_records(settings.audit_dir)
        if record.event in ("received", "delivered")
    )
    audit_wrong = [
        (event, message_id, records[(event, message_id)])
        for message_id in expected
        for event in ("received", "delivered")
        if records[(event, message_id)] != 1
    ]
    verify = subprocess.run(
        [sys.executable, "-m", "liaison", "audit", "verify", str(settings.audit_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    summary = (
        f"no-loss proof: {len(expected)} confirmed messages ({copies} inbox copies expected), "
        f"lost={len(lost)} duplicates={duplicates} unconfirmed-but-delivered={unexpected} "
        f"dead-lettered={sum(dead.values())}; router SIGKILLed {router.kills} times "
        f"(started {router.starts}); audit records checked {len(expected) * 2}, "
        f"wrong={len(audit_wrong)}; publish phase {publish_s:.1f} s, settled at {settled_s:.1f} s; "
        f"audit verify: {verify.stdout.strip()}"
    )
    print("\n" + summary)
    print("\n".join(timeline))
    assert len(expected) == plan.messages // len(PRODUCERS) * len(PRODUCERS), summary
    assert router.kills >= 3, summary
    assert not lost, f"{summary}; first lost: {lost[:5]}"
    assert not audit_wrong, f"{summary}; first wrong audit counts: {audit_wrong[:5]}"
    assert verify.returncode == 0, f"{summary}\n{verify.stderr}"


@pytest.mark.timeout(900)
def test_no_loss_short(hub_settings: Settings, tmp_path: Path, long: bool) -> None:
    """20,000 messages through router kills, connection closes and a broker restart: none lost, each delivered record once, ledger verifies."""
    if long:
        pytest.skip("long mode runs test_no_loss_long instead (one broker restart per run)")
    run_proof(hub_settings, SHORT, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(3_000)
def test_no_loss_long(hub_settings: Settings, tmp_path: Path) -> None:
    """100,000 messages through the same faults, longer: none lost, each delivered record once, ledger verifies."""
    run_proof(hub_settings, LONG, tmp_path)
