"""Benchmark plumbing: scratch vhosts, queue depths and drain rates."""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pika
import pika.adapters.blocking_connection
import pika.channel
import pika.connection
import pika.frame
import pika.spec

from liaison.adapters.management import Management
from liaison.directory import load_directory
from liaison.settings import Settings
from liaison.topology import apply as apply_topology


def queue_depth(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> int:
    """Ready messages in ``queue`` (a passive declare: works without the management API)."""
    frame = channel.queue_declare(queue, passive=True)
    return int(frame.method.message_count)


def watch_drain(
    params: pika.connection.Parameters,
    queue: str,
    expected: int,
    *,
    timeout: float = 300.0,
    poll: float = 0.02,
) -> float:
    """Messages per second at which ``queue`` filled to ``expected``, timed from the first one."""
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        first_at: float | None = None
        first_count = 0
        while time.monotonic() < deadline:
            count = queue_depth(channel, queue)
            now = time.perf_counter()
            if first_at is None and count > 0:
                first_at, first_count = now, count
            if count >= expected:
                if first_at is None or now == first_at:
                    return float("inf")
                return (expected - first_count) / (now - first_at)
            time.sleep(poll)
        raise TimeoutError(f"{queue} reached only {queue_depth(channel, queue)} of {expected}")
    finally:
        connection.close()


def purge(params: pika.connection.Parameters, queue: str) -> None:
    """Empty ``queue`` between runs."""
    connection = pika.BlockingConnection(params)
    try:
        connection.channel().queue_purge(queue)
    finally:
        connection.close()


@contextmanager
def scratch_vhost(settings: Settings, label: str) -> Iterator[Settings]:
    """A vhost with the hub's topology for one measurement; deleted (with its users) after."""
    tag = uuid.uuid4().hex[:8]
    vhost = f"liaison-bench-{label}-{tag}"
    root = settings.amqp_url.rsplit("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp:
        bench = settings.replace(
            amqp_url=f"{root}/{vhost}",
            user_prefix=f"bench{tag}-",
            credentials_dir=Path(tmp) / "credentials",
            # The ledger and keys of a measurement are its own, never the hub's.
            audit_dir=Path(tmp) / "audit",
            hub_key_path=Path(tmp) / "hub.key",
            receipt_key_path=None,
        )
        with Management(bench) as api:
            try:
                apply_topology(bench, load_directory(bench.directory_path))
                yield bench
            finally:
                api.delete_vhost(vhost)
                for record in api.list_users():
                    if record["name"].startswith(bench.user_prefix):
                        api.delete_user(record["name"])


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process under measurement, SIGKILL it if it has not gone within 40 s."""
    process.terminate()
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
