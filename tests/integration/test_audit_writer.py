"""The audit writer as a real process on a real broker: exactly once, graceful stop, failover."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pika
import pytest

from liaison.adapters.management import Management
from liaison.core.events import AuditEvent, EventKind, encode_batch, make_event
from liaison.ledger.keys import read_public_key
from liaison.ledger.segments import list_segments
from liaison.ledger.verify import verify_directory
from liaison.settings import Settings
from schemas import wire
from tests.integration.harness import depth, settle

LIAISON = Path(sys.executable).parent / "liaison"


def declare(settings: Settings) -> None:
    """The two objects the writer needs (plus the dead-letter pair), as topology makes them."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        channel.exchange_declare(wire.DEAD_EXCHANGE, "fanout", durable=True)
        channel.queue_declare(wire.DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(wire.DEAD_QUEUE, wire.DEAD_EXCHANGE)
        channel.exchange_declare(wire.AUDIT_EXCHANGE, "fanout", durable=True)
        channel.queue_declare(
            wire.AUDIT_QUEUE,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-single-active-consumer": True,
                "x-dead-letter-exchange": wire.DEAD_EXCHANGE,
            },
        )
        channel.queue_bind(wire.AUDIT_QUEUE, wire.AUDIT_EXCHANGE)
    finally:
        connection.close()


def publish(
    settings: Settings, bodies: list[bytes], *, pause: float = 0.0, user_id: str | None = ""
) -> None:
    """Publish audit message bodies with confirms (so every one is in the queue), as the
    hub's user unless ``user_id`` says otherwise (None: no user_id)."""
    user_id = settings.hub_user if user_id == "" else user_id
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish(
                wire.AUDIT_EXCHANGE,
                "",
                body,
                pika.BasicProperties(
                    delivery_mode=2, content_type="application/json", user_id=user_id
                ),
            )
            if pause:
                time.sleep(pause)
    finally:
        connection.close()


def batches(count: int, per_batch: int, *, prefix: str) -> tuple[list[bytes], set[str]]:
    """Audit messages with duplicates inside and across them; and the distinct dedupe keys."""
    bodies: list[bytes] = []
    keys: set[str] = set()
    for b in range(count):
        events: list[AuditEvent] = []
        for i in range(per_batch):
            n = b * per_batch + i
            event = make_event(
                (EventKind.RECEIVED, EventKind.ROUTED, EventKind.DELIVERED)[n % 3],
                f"{prefix}-{n // 3}",
                type="correspondence.letter",
                sender="MAEE",
                recipients=("CHAMBRE",),
            )
            events.append(event)
            keys.add(event.dedupe_key)
        events.append(events[0])  # a duplicate within the message
        bodies.append(encode_batch(events))
        if b % 5 == 0:
            bodies.append(bodies[-1])  # a redelivered message
    return bodies, keys


class Writer:
    """One ``liaison audit run`` subprocess, its log in a file."""

    def __init__(self, settings: Settings, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
        env.update(
            LIAISON_AMQP_URL=settings.amqp_url,
            LIAISON_MANAGEMENT_URL=settings.management_url,
            LIAISON_USER_PREFIX=settings.user_prefix,
            LIAISON_AUDIT_DIR=str(settings.audit_dir),
            LIAISON_HUB_KEY_PATH=str(settings.hub_key_path),
            LIAISON_LOG_JSON="true",
            LIAISON_CHECKPOINT_EVERY="200",
            LIAISON_CHECKPOINT_SECONDS="0.5",
            LIAISON_RECONNECT_INITIAL_S="0.2",
            LIAISON_RECONNECT_MAX_S="1",
        )
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [str(LIAISON), "audit", "run"],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def logged(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        finally:
            self._log_file.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def record_count(directory: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in list_segments(directory))


def settled_records(settings: Settings) -> int:
    """The ledger's record count once the writer is at rest: hub.audit empty and the
    count unchanged through a quiet window (what a 'nothing more arrives' check needs)."""
    count, waiting = settle(
        lambda: (record_count(settings.audit_dir), depth(settings, wire.AUDIT_QUEUE)),
        what="the audit writer",
    )
    assert waiting == 0, f"{waiting} audit messages never consumed"
    return count


def recorded_keys(directory: Path) -> list[str]:
    return [
        json.loads(line)["dedupe_key"]
        for p in list_segments(directory)
        for line in p.read_bytes().splitlines()
    ]


def dead_letters(settings: Settings) -> list[bytes]:
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        channel = connection.channel()
        found: list[bytes] = []
        while True:
            method, _props, body = channel.basic_get(wire.DEAD_QUEUE, auto_ack=True)
            if method is None:
                return found
            found.append(body)
    finally:
        connection.close()


@pytest.fixture
def writers(settings: Settings, tmp_path: Path) -> Iterator[Callable[[str], Writer]]:
    """Start writers by name; any still running at the end are killed."""
    started: list[Writer] = []

    def start(name: str) -> Writer:
        writer = Writer(settings, tmp_path / f"writer-{name}.log")
        started.append(writer)
        return writer

    declare(settings)
    yield start
    for writer in started:
        if writer.process.poll() is None:
            writer.process.kill()
            writer.process.wait()


def test_every_event_recorded_once(settings: Settings, writers: Callable[[str], Writer]) -> None:
    """Duplicated events are recorded once, malformed messages dead-lettered, stop exits 0."""
    bodies, keys = batches(60, 25, prefix="once")
    publish(settings, [*bodies[:30], b"{not json", *bodies[30:], b'{"events": [{"x": 1}]}'])
    # A well-formed batch without the hub's user_id (a loosened permission, a tool run
    # with the wrong credentials): refused, its events not recorded.
    stray, stray_keys = batches(1, 3, prefix="stray")
    publish(settings, stray, user_id=None)
    writer = writers("a")
    wait_for(lambda: record_count(settings.audit_dir) >= len(keys), "every event written")
    # Anything extra (a duplicate slipping through) shows up before the writer is at rest.
    assert settled_records(settings) == len(keys)
    assert writer.stop() == 0, writer.log.read_text()
    recorded = recorded_keys(settings.audit_dir)
    assert len(recorded) == len(set(recorded)) == len(keys)
    assert set(recorded) == keys
    public_key = read_public_key(settings.audit_dir / "hub.pub")
    result = verify_directory(settings.audit_dir, public_key)
    assert result.ok, result.failure
    assert result.unsigned == 0  # the graceful stop signed the tail
    assert not set(recorded) & stray_keys
    assert sorted(dead_letters(settings)) == sorted(
        [b"{not json", b'{"events": [{"x": 1}]}', *stray]
    )
    assert writer.logged("audit.dead_lettered")


def test_failover_exactly_once(settings: Settings, writers: Callable[[str], Writer]) -> None:
    """Writer A killed mid-stream; B, waiting on the lock, takes over; nothing lost or doubled."""
    bodies, keys = batches(400, 20, prefix="failover")
    first = writers("a")
    wait_for(lambda: first.logged("audit.consuming"), "writer A consuming")
    second = writers("b")
    wait_for(lambda: second.logged("audit.lock_waiting"), "writer B waiting")

    publisher = threading.Thread(target=publish, args=(settings, bodies), kwargs={"pause": 0.002})
    publisher.start()
    wait_for(lambda: record_count(settings.audit_dir) > len(keys) // 4, "A writing")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    assert record_count(settings.audit_dir) < len(keys), "A finished before it was killed"

    wait_for(lambda: second.logged("audit.consuming"), "writer B taking over")
    publisher.join(120)
    wait_for(lambda: record_count(settings.audit_dir) >= len(keys), "every event written", 120)
    assert settled_records(settings) == len(keys)
    assert second.stop() == 0, second.log.read_text()

    recorded = recorded_keys(settings.audit_dir)
    assert len(recorded) == len(set(recorded)) == len(keys)
    result = verify_directory(settings.audit_dir, read_public_key(settings.audit_dir / "hub.pub"))
    assert result.ok, result.failure
    assert result.records == len(keys)


def _close_writer_connections(settings: Settings) -> bool:
    """Force-close the writer's connections on this test's vhost; whether there were any."""
    closed = False
    with Management(settings) as api:
        for conn in api.request("GET", "/connections") or []:
            name = (conn.get("client_properties") or {}).get("connection_name")
            if conn.get("vhost") == settings.vhost and name == "liaison-audit-writer":
                api.request("DELETE", f"/connections/{quote(conn['name'], safe='')}")
                closed = True
    return closed


def test_reconnects_after_connection_loss(
    settings: Settings, writers: Callable[[str], Writer]
) -> None:
    """The broker drops the writer's connection: it reconnects, and nothing is lost or doubled."""
    bodies, keys = batches(40, 10, prefix="reconnect")
    writer = writers("a")
    publish(settings, bodies[:20])
    wait_for(lambda: record_count(settings.audit_dir) > 0, "first half written")
    wait_for(lambda: _close_writer_connections(settings), "the writer's connection to close")
    wait_for(lambda: writer.logged("audit.reconnecting"), "the writer to notice")
    publish(settings, bodies[20:])
    expected = len(keys)
    wait_for(lambda: record_count(settings.audit_dir) >= expected, "every event written")
    assert settled_records(settings) == expected
    assert writer.stop() == 0, writer.log.read_text()
    recorded = recorded_keys(settings.audit_dir)
    assert len(recorded) == len(set(recorded)) == expected
    assert verify_directory(settings.audit_dir, read_public_key(settings.audit_dir / "hub.pub")).ok
