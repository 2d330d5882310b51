"""Helpers for the operator-console tests: the CLI as a subprocess, the hub with its web server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pika

from liaison.settings import Settings
from schemas import wire
from tests.integration.harness import Process, blocking, depth, env_for, running, take, wait_for


@dataclass
class Result:
    """What a CLI run printed and returned."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Standard output parsed as JSON."""
        return json.loads(self.out)


def cli(settings: Settings, *args: str, input: str | None = None, **env: str) -> Result:
    """Run ``python -m liaison ARGS`` with exactly ``settings`` (plus ``env``)."""
    done = subprocess.run(
        [sys.executable, "-m", "liaison", *args],
        env=env_for(settings, LIAISON_LOG_LEVEL="warning", **env),
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def publish_hub(
    settings: Settings,
    exchange: str,
    routing_key: str,
    body: bytes,
    count: int = 1,
    headers: dict[str, Any] | None = None,
) -> None:
    """Publish ``count`` copies as the hub's own user, with confirms."""
    connection = blocking(settings.amqp_url)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for _ in range(count):
            channel.basic_publish(
                exchange,
                routing_key,
                body,
                pika.BasicProperties(
                    delivery_mode=2, headers=headers, content_type=wire.CONTENT_TYPE
                ),
                mandatory=True,
            )
    finally:
        connection.close()


def delete_queue(settings: Settings, queue: str) -> None:
    """Delete ``queue`` (to make deliveries to it unroutable)."""
    connection = blocking(settings.amqp_url)
    try:
        connection.channel().queue_delete(queue)
    finally:
        connection.close()


def audit_events(settings: Settings) -> list[dict[str, Any]]:
    """Take every audit batch waiting in ``hub.audit`` and return their events."""
    batches = take(settings, wire.AUDIT_QUEUE, depth(settings, wire.AUDIT_QUEUE))
    return [event for _props, body in batches for event in json.loads(body)["events"]]


@dataclass
class Hub:
    """A running ``liaison serve`` and the base URL of its web server."""

    process: Process
    url: str

    def get(self, path: str) -> httpx.Response:
        """GET ``path`` on the hub's web server."""
        return httpx.get(self.url + path, timeout=10)


@contextmanager
def serving(settings: Settings, tmp_path: Path, **env: str) -> Iterator[Hub]:
    """``liaison serve`` with its web server on a free port, ready to take requests."""
    port = free_port()
    hub_settings = settings.replace(http_port=port)
    environment = env_for(hub_settings, **env)
    with running(
        hub_settings, "serve", log_path=str(tmp_path / "serve.log"), env=environment
    ) as process:
        hub = Hub(process, f"http://127.0.0.1:{port}")

        def answers() -> bool:
            try:
                return hub.get("/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, what="the hub's web server")
        yield hub
