"""``liaison demo``: the hub end to end on this machine, with real institutions' users.

Applies the topology, starts the router and the audit writer as processes, lets a
few institutions exchange real messages through their own RabbitMQ users (one
of them invalid), then reads the inboxes and dead letters and prints what went
where, and the audit log's verification.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pika

from liaison.adapters.connections import open_connection
from liaison.credentials import participant_connection
from liaison.devtools.demo_cases import run_cases_demo
from liaison.devtools.demo_procedures import demo_settings, env_names, run_procedures_demo
from liaison.devtools.demo_secretariat import run_secretariat_demo
from liaison.directory import load_directory
from liaison.errors import BrokerError, ConfigError
from liaison.settings import Settings
from liaison.topology import apply, rotation_hint
from schemas import wire
from schemas.envelope import Envelope, canonical_json
from schemas.examples import example_envelope
from schemas.types import Classification, Payload, Precedence

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Sent:
    """One message of the scenario, as published."""

    label: str
    sender: str
    envelope: Envelope[Payload] | None
    body: bytes
    routing_key: str


@dataclass
class Outcome:
    """Where the messages went."""

    delivered: dict[str, list[str]] = field(default_factory=dict)  # message id → inboxes
    dead: dict[str, tuple[str, str]] = field(default_factory=dict)  # message id → reason, text
    audit: str = ""


def scenario() -> list[Sent]:
    """A morning's traffic at the General Secretariat, and one mistake."""
    messages: list[tuple[str, Envelope[Payload]]] = [
        (
            "treaty file opened",
            example_envelope(
                "treaty.file_opened",
                1,
                sender="gs-treaties",
                recipients=("council", "chamber"),
                classification=Classification.RESTRICTED,
            ),
        ),
        (
            "FLASH cable from Berlin",
            example_envelope(
                "mission.cable",
                2,
                sender="emb-berlin",
                recipients=("gs", "dir-political"),
                classification=Classification.CONFIDENTIAL,
                precedence=Precedence.FLASH,
            ),
        ),
        (
            "parliamentary question",
            example_envelope("chamber.question", 1, sender="chamber", recipients=("dir-european",)),
        ),
        (
            "legal opinion requested",
            example_envelope(
                "legal.opinion_requested",
                1,
                sender="gs",
                recipients=("gs-legal",),
                classification=Classification.RESTRICTED,
            ),
        ),
        ("ONA monthly report", example_envelope("ona.report", 1, sender="ona", recipients=("gs",))),
        (
            "press release",
            example_envelope(
                "icc.press_release",
                1,
                sender="gs-icc",
                recipients=("gs", "palace"),
                classification=Classification.PUBLIC,
            ),
        ),
    ]
    sent = [Sent(label, env.sender, env, env.encode(), env.type) for label, env in messages]
    # The mistake: a question whose answer is due before it was asked.
    bad = example_envelope("chamber.question", 1, sender="chamber", recipients=("gs",))
    data = bad.to_jsonable()
    asked = date.fromisoformat(data["payload"]["asked_on"])
    data["payload"]["answer_deadline"] = (asked - timedelta(days=1)).isoformat()
    sent.append(
        Sent("question due before it was asked", "chamber", None, canonical_json(data), bad.type)
    )
    return sent


def _publish(settings: Settings, item: Sent) -> None:
    connection = participant_connection(settings, item.sender, name="liaison-demo")
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            wire.INGRESS_EXCHANGE,
            item.routing_key,
            item.body,
            pika.BasicProperties(
                content_type=wire.CONTENT_TYPE,
                delivery_mode=2,
                user_id=settings.user_for(item.sender),
            ),
            mandatory=True,
        )
    finally:
        connection.close()


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    for name in (
        "amqp_url",
        "management_url",
        "user_prefix",
        "credentials_dir",
        "audit_dir",
        "hub_key_path",
        "receipt_key_path",
        "http_port",
        "directory_path",
        "rules_path",
        "checkpoint_seconds",
        *env_names(),
    ):
        value = getattr(settings, name)
        if value is not None:
            env[f"LIAISON_{name.upper()}"] = str(value)
    env["LIAISON_LOG_JSON"] = "true"
    # Checkpoint often, so the summary can show a signed checkpoint within a second.
    env["LIAISON_CHECKPOINT_SECONDS"] = str(min(settings.checkpoint_seconds, 1.0))
    return env


@contextmanager
def _process(settings: Settings, log_dir: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{args[0]}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "liaison", *args], env=_env(settings), stdout=log, stderr=log
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise BrokerError(f"demo: timed out waiting for {what}")


def _queue(settings: Settings, name: str) -> tuple[int, int]:
    connection = open_connection(settings, name="liaison-demo")
    try:
        frame = connection.channel().queue_declare(name, passive=True)
        return int(frame.method.message_count), int(frame.method.consumer_count)
    finally:
        connection.close()


def _drain(
    settings: Settings, code: str | None, queue: str
) -> list[tuple[pika.spec.BasicProperties, bytes]]:
    """Every message of ``queue``, read as participant ``code`` (the hub when ``None``)."""
    connection = (
        open_connection(settings, name="liaison-demo")
        if code is None
        else participant_connection(settings, code, name="liaison-demo")
    )
    got: list[tuple[pika.spec.BasicProperties, bytes]] = []
    try:
        channel = connection.channel()
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append((props, body))
    finally:
        connection.close()


def run_demo(
    settings: Settings,
    *,
    echo: Echo,
    keep_running: bool,
    summary_only: bool = False,
    ack_deadline: str = "8 seconds",
) -> Outcome:
    """Run the scenario end to end; with ``keep_running``, leave the hub up until a signal.

    ``summary_only`` prints one line instead of the table (for output that is not a
    terminal: a log or a CI job wants the verdict, ``-v`` gives the details).
    ``ack_deadline`` shortens the FLASH cables' acknowledgement deadline for the show.
    """
    settings = demo_settings(settings, ack_deadline)
    full = echo
    if summary_only:
        echo = _quiet
    directory = load_directory(settings.directory_path)
    report = apply(settings, directory)
    echo(
        f"topology: vhost {settings.vhost!r}, {len(directory)} participants, "
        f"{len(report.changes)} change(s) applied"
    )
    items = scenario()
    # Before starting anything: a participant of the scenario that cannot log in from
    # here is named, with the fix, rather than found halfway by a pika traceback.
    cast = {item.sender for item in items} | set(_inboxes(items))
    blocked = [p for p in report.credential_problems if p.code in cast]
    if blocked:
        raise ConfigError(
            f"demo: {len(blocked)} participant(s) cannot log in from here, first {blocked[0]}; "
            f"to fix: {rotation_hint([p.code for p in blocked])}"
        )
    log_dir = settings.audit_dir.parent / "logs"
    with ExitStack() as stack:
        router = stack.enter_context(_process(settings, log_dir, "serve"))
        writer = stack.enter_context(_process(settings, log_dir, "audit", "run"))
        _wait(
            lambda: _queue(settings, wire.INGRESS_QUEUE)[1] > 0 or router.poll() is not None,
            "the router to consume",
        )
        if router.poll() is not None:
            raise ConfigError(f"the router exited at start; see {log_dir / 'serve.log'}")
        echo(
            f"router running (pid {router.pid}), audit writer running (pid {writer.pid}); "
            f"logs in {log_dir}"
        )
        for item in items:
            _publish(settings, item)
        outcome = _collect(settings, items)
        _wait(lambda: _queue(settings, wire.AUDIT_QUEUE)[0] == 0, "the audit writer")
        time.sleep(1.5)  # one checkpoint interval
        outcome.audit = _verify(settings)
        _print(items, outcome, echo)
        _start_procedures(settings, log_dir, stack)
        run_procedures_demo(settings, echo, ack_deadline=ack_deadline)
        run_cases_demo(settings, echo)
        run_secretariat_demo(settings, echo)
        if summary_only:
            full(summary_line(items, outcome))
        if keep_running:
            full(
                f"\nThe hub is running on vhost {settings.vhost!r}. Dashboard and metrics: "
                f"http://127.0.0.1:{settings.http_port}/  —  Ctrl-C to stop."
            )
            stop = {"now": False}
            signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
            signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
            while not stop["now"] and router.poll() is None:
                time.sleep(0.2)
    return outcome


def _inboxes(items: list[Sent]) -> list[str]:
    """The inboxes the scenario can reach: its recipients and the routing rules' copies."""
    return sorted(
        {code for item in items if item.envelope for code in item.envelope.recipients}
        | {"gs-legal", "duty-officer", "gs"}
    )


def _start_procedures(settings: Settings, log_dir: Path, stack: ExitStack) -> None:
    migrate = subprocess.run(
        [sys.executable, "-m", "liaison", "procedures", "migrate"],
        env=_env(settings),
        capture_output=True,
        text=True,
        check=False,
    )
    if migrate.returncode != 0:
        raise ConfigError(f"procedures migrate failed: {migrate.stderr.strip()}")
    service = stack.enter_context(_process(settings, log_dir, "procedures", "run"))
    _wait(
        lambda: (
            _queue(settings, wire.inbox_queue("gs-procedures"))[1] > 0 or service.poll() is not None
        ),
        "the procedures service to consume",
    )
    if service.poll() is not None:
        raise ConfigError(f"the procedures service exited; see {log_dir / 'procedures.log'}")


def _collect(settings: Settings, items: list[Sent]) -> Outcome:
    """Read every inbox the scenario could reach (as its participant) and the dead letters."""
    outcome = Outcome()
    expected_dead = sum(1 for item in items if item.envelope is None)
    inboxes = _inboxes(items)
    minimum = sum(len(item.envelope.recipients) for item in items if item.envelope)
    _wait(
        lambda: (
            sum(_queue(settings, q)[0] for c in inboxes for q in wire.inbox_queues(c)) >= minimum
            and _queue(settings, wire.DEAD_QUEUE)[0] >= expected_dead
        ),
        "deliveries",
    )
    time.sleep(0.5)  # copies added by routing rules arrive with the rest; let them land
    for code in inboxes:
        # Both precedence bands, urgent first (FLASH and IMMEDIATE copies are there).
        for queue in wire.inbox_queues(code):
            for props, _body in _drain(settings, code, queue):
                outcome.delivered.setdefault(props.message_id or "?", []).append(code)
    for props, body in _drain(settings, None, wire.DEAD_QUEUE):
        headers = props.headers or {}
        key = props.message_id or _body_key(body)
        outcome.dead[key] = (
            str(headers.get(wire.H_REASON, "?")),
            str(headers.get(wire.H_REASON_TEXT, "")),
        )
    return outcome


def _body_key(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message_id", "?"))
    except ValueError:
        return "?"


def _verify(settings: Settings) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "liaison", "audit", "verify", str(settings.audit_dir)],
        env=_env(settings),
        capture_output=True,
        text=True,
        check=False,
    )
    return (result.stdout.strip() or result.stderr.strip()).splitlines()[-1]


def _print(items: list[Sent], outcome: Outcome, echo: Echo) -> None:
    echo("\nWhat went where:")
    for item in items:
        key = str(item.envelope.message_id) if item.envelope else _body_key(item.body)
        to = ", ".join(sorted(outcome.delivered.get(key, []))) or "-"
        echo(f"  {item.label:<34} {item.sender:>12} → {to}")
        if key in outcome.dead:
            reason, text = outcome.dead[key]
            echo(f"  {'':<34} {'':>12}   dead letter: {reason}: {text}")
    echo(f"\naudit log: {outcome.audit}")


def _quiet(_line: str) -> None:
    """Where the details go when only the summary is wanted."""


def summary_line(items: list[Sent], outcome: Outcome) -> str:
    """The demo's verdict in one line: what was sent, delivered, refused, and the audit."""
    copies = sum(len(inboxes) for inboxes in outcome.delivered.values())
    reasons = sorted({reason for reason, _text in outcome.dead.values()})
    refused = f"{len(outcome.dead)} dead-lettered" + (f" ({', '.join(reasons)})" if reasons else "")
    return (
        f"demo: {len(items)} messages sent, {len(outcome.delivered)} delivered "
        f"({copies} inbox copies), {refused}; audit log: {outcome.audit}"
    )
