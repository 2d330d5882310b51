"""Helpers for tests that run the hub's real processes against the real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pika
import pika.adapters.blocking_connection

from liaison.credentials import participant_url
from liaison.settings import Settings
from schemas import wire
from schemas.envelope import Envelope
from schemas.types import Payload

T = TypeVar("T")


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment variables that give a subprocess exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env.update(
        LIAISON_AMQP_URL=settings.amqp_url,
        LIAISON_MANAGEMENT_URL=settings.management_url,
        LIAISON_USER_PREFIX=settings.user_prefix,
        LIAISON_CREDENTIALS_DIR=str(settings.credentials_dir),
        LIAISON_AUDIT_DIR=str(settings.audit_dir),
        LIAISON_HUB_KEY_PATH=str(settings.hub_key_path),
        LIAISON_HTTP_PORT=str(settings.http_port),
        LIAISON_LOG_JSON="true",
        LIAISON_RECONNECT_INITIAL_S="0.2",
        LIAISON_RECONNECT_MAX_S="1",
    )
    if settings.directory_path is not None:
        env["LIAISON_DIRECTORY_PATH"] = str(settings.directory_path)
    if settings.rules_path is not None:
        env["LIAISON_RULES_PATH"] = str(settings.rules_path)
    env.update(extra)
    return env


def blocking(url: str) -> pika.BlockingConnection:
    """A blocking connection to ``url``."""
    return pika.BlockingConnection(pika.URLParameters(url))


def consumer_count(settings: Settings, queue: str) -> int:
    """How many consumers ``queue`` has right now."""
    connection = blocking(settings.amqp_url)
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    finally:
        connection.close()


def wait_for(predicate: Any, *, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true, or fail the test saying ``what`` never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Process:
    """A hub process started by a test (router, audit writer, …)."""

    popen: subprocess.Popen[bytes]
    log_path: str

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        """Signal it and wait; its exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        return self.popen.wait(timeout=timeout)

    def log(self) -> str:
        """What it wrote to standard error so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()


@contextmanager
def running(
    settings: Settings,
    *args: str,
    wait_queue: str | None = wire.INGRESS_QUEUE,
    log_path: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[Process]:
    """Run ``python -m liaison ARGS`` until the block ends (SIGTERM, then SIGKILL)."""
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "liaison", *args],
            env=dict(env or env_for(settings)),
            stdout=log,
            stderr=log,
        )
    process = Process(popen, log_path)
    try:
        if wait_queue is not None:
            wait_for(
                lambda: popen.poll() is not None or consumer_count(settings, wait_queue) > 0,
                what=f"a consumer on {wait_queue}",
            )
            if popen.poll() is not None:
                raise AssertionError(f"process exited early:\n{process.log()}")
        yield process
    finally:
        if popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()


def publish_as(
    settings: Settings,
    code: str,
    message: Envelope[Payload] | bytes,
    *,
    routing_key: str | None = None,
    user_id: str | None = "",
    headers: dict[str, Any] | None = None,
) -> None:
    """Publish to ingress as participant ``code`` (its own user), with confirms."""
    body = message if isinstance(message, bytes) else message.encode()
    key = routing_key or (
        message.type if not isinstance(message, bytes) else "correspondence.letter"
    )
    connection = blocking(participant_url(settings, code))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            wire.INGRESS_EXCHANGE,
            key,
            body,
            pika.BasicProperties(
                content_type=wire.CONTENT_TYPE,
                delivery_mode=2,
                user_id=settings.user_for(code) if user_id == "" else user_id,
                headers=headers,
            ),
            mandatory=True,
        )
    finally:
        connection.close()


def preload(settings: Settings, code: str, messages: Sequence[Envelope[Payload]]) -> set[str]:
    """Publish ``messages`` to ingress as ``code``, pipelined, and wait until all are queued.

    For tests that need a full queue before a router starts; the message ids sent.
    """
    connection = blocking(participant_url(settings, code))
    try:
        channel = connection.channel()
        for message in messages:
            channel.basic_publish(
                wire.INGRESS_EXCHANGE,
                message.type,
                message.encode(),
                pika.BasicProperties(
                    content_type=wire.CONTENT_TYPE,
                    delivery_mode=2,
                    message_id=str(message.message_id),
                    type=message.type,
                    user_id=settings.user_for(code),
                ),
            )
    finally:
        connection.close()
    wait_for(
        lambda: depth(settings, wire.INGRESS_QUEUE) >= len(messages),
        timeout=60,
        what=f"{len(messages)} messages in {wire.INGRESS_QUEUE}",
    )
    return {str(message.message_id) for message in messages}


def take(
    settings: Settings, queue: str, count: int, *, timeout: float = 20.0
) -> list[tuple[pika.spec.BasicProperties, bytes]]:
    """Wait for and remove ``count`` messages from ``queue`` (as the hub's user)."""
    got: list[tuple[pika.spec.BasicProperties, bytes]] = []
    if count == 0:
        return got
    connection = blocking(settings.amqp_url)
    try:
        channel = connection.channel()
        # basic.consume, not basic.get: quorum queues with a single active consumer
        # (the audit queue) refuse basic.get.
        channel.basic_qos(prefetch_count=count)
        for method, props, body in channel.consume(queue, inactivity_timeout=timeout):
            if method is None:
                break
            channel.basic_ack(method.delivery_tag)
            got.append((props, body))
            if len(got) >= count:
                break
        channel.cancel()
    finally:
        connection.close()
    if len(got) < count:
        raise AssertionError(f"{queue}: {len(got)} of {count} messages within {timeout} s")
    return got


def depth(settings: Settings, queue: str) -> int:
    """Ready messages in ``queue``."""
    connection = blocking(settings.amqp_url)
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def depths(settings: Settings, queues: Sequence[str]) -> dict[str, int]:
    """Ready messages in each of ``queues``, read over one connection (passive declares)."""
    connection = blocking(settings.amqp_url)
    try:
        channel = connection.channel()
        return {
            queue: int(channel.queue_declare(queue, passive=True).method.message_count)
            for queue in queues
        }
    finally:
        connection.close()


def settle(
    read: Callable[[], T], *, quiet_s: float = 1.0, timeout: float = 60.0, what: str = "queues"
) -> T:
    """Poll ``read`` until its value has not changed for ``quiet_s``; that value.

    What a negative assertion ("nothing more arrives") waits for: a fixed sleep proves
    nothing on a loaded machine and wastes time on an idle one, while a value that
    stayed put through a whole quiet window, after everything it depends on was sent,
    is the system at rest. Fails after ``timeout`` if it never stops moving.
    """
    deadline = time.monotonic() + timeout
    value = read()
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        current = read()
        if current != value:
            value, since = current, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return value
    raise AssertionError(f"{what} still changing after {timeout} s (last: {value!r})")


def settle_depths(settings: Settings, queues: Sequence[str], **kwargs: Any) -> dict[str, int]:
    """The depths of ``queues`` once none of them has changed for a quiet window."""
    return settle(lambda: depths(settings, queues), what=", ".join(queues), **kwargs)
