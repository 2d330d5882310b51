"""Fault injection on the shared local broker, and the processes of the hub under test.

Other engineers' tests share this RabbitMQ, so every fault here is either limited
to the test's own vhost (closing connections) or undone in a ``finally`` block
that waits until the broker answers again (stopping the application).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pika
import pika.exceptions

from liaison.adapters.connections import node_parameters
from liaison.settings import Settings
from schemas import wire
from tests.integration.harness import env_for

RABBITMQCTL_TIMEOUT_S = 120.0


def rabbitmqctl(*args: str, timeout: float = RABBITMQCTL_TIMEOUT_S) -> str:
    """Run ``rabbitmqctl ARGS``; its output; AssertionError when it fails."""
    result = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(args)}: {result.stderr or result.stdout}")
    return result.stdout


def close_vhost_connections(settings: Settings) -> None:
    """Close every client connection on the test's vhost (and no one else's)."""
    rabbitmqctl("close_all_connections", "--vhost", settings.vhost, "proof: fault injection")


def port_answers(host: str = "localhost", port: int = 5672) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def broker_ready(settings: Settings) -> bool:
    """AMQP answers on the test vhost, its ingress queue is there, and so is the management API."""
    try:
        connection = pika.BlockingConnection(node_parameters(settings, name="proof"))
    except (pika.exceptions.AMQPError, OSError):
        return False
    try:
        connection.channel().queue_declare(wire.INGRESS_QUEUE, passive=True)
    except (pika.exceptions.AMQPError, OSError):
        return False
    finally:
        if connection.is_open:
            connection.close()
    try:
        response = httpx.get(
            settings.management_url.rstrip("/") + "/api/overview",
            auth=settings.management_auth,
            timeout=5.0,
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def wait_broker_ready(settings: Settings, timeout: float = 180.0) -> float:
    """Wait until :func:`broker_ready`; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if broker_ready(settings):
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"the broker was not ready {timeout} s after its restart")


def ensure_app_running(settings: Settings) -> None:
    """Start the RabbitMQ application if it is stopped, and wait until it answers."""
    if port_answers():
        return
    for _attempt in range(3):
        try:
            rabbitmqctl("start_app")
            break
        except (AssertionError, subprocess.TimeoutExpired):
            time.sleep(2)
    wait_broker_ready(settings)


@contextmanager
def app_stopped(settings: Settings, *, down_for: float = 2.0) -> Iterator[None]:
    """``rabbitmqctl stop_app`` for the block (at least ``down_for`` s), then ``start_app``.

    The application is started again in a ``finally`` block whatever happens,
    and the block ends only when AMQP and the management API answer again.
    """
    try:
        rabbitmqctl("stop_app")
        stopped = time.monotonic()
        yield
        time.sleep(max(0.0, down_for - (time.monotonic() - stopped)))
    finally:
        ensure_app_running(settings)


@dataclass
class HubProcess:
    """``python -m liaison ARGS`` started (and restarted) by a test, its output in one file."""

    settings: Settings
    args: tuple[str, ...]
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0

    def start(self) -> None:
        """Start it (again)."""
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "liaison", *self.args],
                env=env_for(self.settings, **self.extra_env),
                stdout=log,
                stderr=log,
            )
        self.starts += 1

    def alive(self) -> bool:
        """Whether it is running."""
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no final ack, no goodbye to the broker."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=30)
            self.kills += 1

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(timeout=30)

    def log(self) -> str:
        """Everything it wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")
