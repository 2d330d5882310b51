"""``liaison bench audit``: durable appends, verification and replay, measured in one run.

Appends and verification run on a scratch directory (see
``liaison.devtools.bench.ledger_speed``); the replay figure selects every message of a ledger
of real letter envelopes and re-publishes them to ``liaison.ingress`` on a
scratch vhost with publisher confirms, timed from selection to the last confirm.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.adapters.connections import connection_parameters
from liaison.adapters.management import Management
from liaison.adapters.replay import plan_replays, publish_replays
from liaison.core import dedupe
from liaison.core.events import EventKind, make_event
from liaison.devtools.bench.ledger_speed import bench_audit, build_ledger
from liaison.ledger.keys import load_or_create
from liaison.ledger.query import Filter, replay_selection
from liaison.ledger.store import Ledger
from liaison.settings import Settings
from schemas import wire
from schemas.examples import example_envelope


def run_audit_bench(
    settings: Settings, *, records: int = 100_000, replays: int = 20_000
) -> dict[str, Any]:
    """Append, verify and replay figures; the replay uses a scratch vhost, deleted after."""
    with tempfile.TemporaryDirectory(prefix="liaison-bench-audit-") as tmp:
        figures = bench_audit(Path(tmp), records)
        figures["replays"] = replays
        figures["replay_per_s"] = round(_replay_rate(settings, Path(tmp) / "replay", replays))
    return figures


def run_startup_bench(root: Path, sizes: list[int], *, repeat: int = 3) -> dict[str, Any]:
    """The writer's start-up time and memory on ledgers of each size (built once under ``root``).

    A ledger already under ``root`` is reused (and completed if it is short), since
    building millions of records takes minutes. Each start-up runs in a fresh
    process; the median of ``repeat`` opens is reported, with the RSS of the last.
    """
    figures: dict[str, Any] = {}
    for size in sizes:
        directory, key_file = root / f"ledger-{size}", root / f"ledger-{size}.key"
        started = time.perf_counter()
        build_ledger(directory, size, load_or_create(key_file))
        built_s = time.perf_counter() - started
        runs = [_startup(directory, key_file) for _ in range(repeat)]
        last = runs[-1]
        figures[str(size)] = {
            **last,
            "open_s": statistics.median(run["open_s"] for run in runs),
            "open_s_runs": [run["open_s"] for run in runs],
            "build_or_check_s": round(built_s, 1),
        }
    return figures


def _startup(directory: Path, key_file: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "liaison.devtools.bench.ledger_startup",
            str(directory),
            str(key_file),
        ],
        check=True,
        capture_output=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _replay_rate(settings: Settings, directory: Path, n: int) -> float:
    template = example_envelope(
        "correspondence.letter", 1, sender="gs", recipients=("gs-archives",)
    )
    with Ledger.open(directory, key=Ed25519PrivateKey.generate()) as ledger:
        batch = []
        for _ in range(n):
            envelope = template.model_copy(update={"message_id": uuid.uuid4()})
            # Keyed as the router keys them: replay selects only messages with a
            # ``routed`` record for the same id, sender and bytes.
            key = dedupe.routed(dedupe.owner(envelope.sender, envelope.encode()), "")
            facts: dict[str, Any] = {
                "type": envelope.type,
                "sender": envelope.sender,
                "recipients": envelope.recipients,
            }
            message_id = str(envelope.message_id)
            batch.append(
                make_event(
                    EventKind.RECEIVED,
                    message_id,
                    discriminator=key,
                    envelope=envelope.to_jsonable(),
                    **facts,
                )
            )
            batch.append(make_event(EventKind.ROUTED, message_id, discriminator=key, **facts))
            if len(batch) >= 1000:
                ledger.append(batch)
                batch = []
        ledger.append(batch)
        ledger.checkpoint()
    vhost = f"liaison-bench-replay-{uuid.uuid4().hex[:8]}"
    scratch = settings.replace(amqp_url=settings.amqp_url.rsplit("/", 1)[0] + "/" + vhost)
    with Management(scratch) as api:
        api.put_vhost(vhost)
        try:
            api.put_permissions(vhost, scratch.hub_user, configure=".*", write=".*", read=".*")
            _declare_ingress(scratch)
            started = time.perf_counter()
            plans = plan_replays(
                replay_selection(directory, Filter(type="correspondence.letter")), actor="bench"
            )
            publish_replays(scratch, plans)
            seconds = time.perf_counter() - started
        finally:
            api.delete_vhost(vhost)
    if len(plans) != n:
        raise AssertionError(f"replay selected {len(plans)} of {n} messages")
    return n / seconds


def _declare_ingress(settings: Settings) -> None:
    import pika  # noqa: PLC0415

    connection = pika.BlockingConnection(connection_parameters(settings))
    try:
        channel = connection.channel()
        channel.exchange_declare(wire.INGRESS_EXCHANGE, "topic", durable=True)
        channel.queue_declare(
            wire.INGRESS_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
        )
        channel.queue_bind(wire.INGRESS_QUEUE, wire.INGRESS_EXCHANGE, "#")
    finally:
        connection.close()
