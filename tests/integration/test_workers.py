"""``liaison serve --workers 2``: two routers compete for ingress; "once" holds downstream.

Each worker has its own duplicate window, so a message published twice whose
copies reach different workers is routed twice. The promise is downstream: the
consumer's idempotency store hands it to the handler once, and the audit writer
records one ``received`` and one ``delivered`` per message (same dedupe keys).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from consumers import Consumer
from liaison.adapters.pipelined import publish_pipelined
from liaison.credentials import participant_url
from liaison.ledger.segments import list_segments
from liaison.settings import Settings
from schemas import wire
from schemas.catalog import default_registry
from schemas.envelope import Envelope
from schemas.examples import example_envelope
from tests.conftest import Broker
from tests.integration.harness import (
    consumer_count,
    depth,
    env_for,
    running,
    settle_depths,
    wait_for,
)
from tests.integration.sdk_support import hub_vhost, participant, running_consumer

SENDER, RECIPIENT = "gs", "gs-archives"
PAIRS = 40


@pytest.fixture
def hub(broker: Broker, tmp_path: Path) -> Iterator[Settings]:
    with hub_vhost(broker, tmp_path) as settings:
        yield settings


def _ledger(settings: Settings) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in list_segments(settings.audit_dir)
        for line in path.read_bytes().splitlines()
    ]


def test_duplicate_on_another_worker_is_dropped_downstream(hub: Settings, tmp_path: Path) -> None:
    """40 messages, each published twice back to back, through two router workers."""
    letters = [
        example_envelope("correspondence.letter", 1, sender=SENDER, recipients=(RECIPIENT,))
        for _ in range(PAIRS)
    ]
    ids = {str(letter.message_id) for letter in letters}
    props = pika.BasicProperties(
        content_type=wire.CONTENT_TYPE, delivery_mode=2, user_id=hub.user_for(SENDER)
    )
    twice = [(letter.type, letter.encode(), props) for letter in letters for _ in range(2)]
    # Prefetch 1: each worker holds one message at a time, so the two copies of a pair,
    # published back to back, go to different workers (round robin between them).
    env = env_for(hub, LIAISON_PREFETCH="1")
    log = str(tmp_path / "hub.log")
    with (
        running(hub, "audit", "run", wait_queue=wire.AUDIT_QUEUE, log_path=log, env=env),
        running(hub, "serve", "--workers", "2", log_path=log, env=env) as serve,
    ):
        wait_for(lambda: consumer_count(hub, wire.INGRESS_QUEUE) == 2, what="two router workers")
        publish_pipelined(participant_url(hub, SENDER), wire.INGRESS_EXCHANGE, twice)
        wait_for(
            lambda: {r["message_id"] for r in _ledger(hub) if r["event"] == "received"} == ids,
            timeout=60,
            what="every message recorded",
        )
        settle_depths(hub, [wire.INGRESS_QUEUE, wire.AUDIT_QUEUE, wire.inbox_queue(RECIPIENT)])
        copies = depth(hub, wire.inbox_queue(RECIPIENT))
        # Some pairs were split between the workers (else this test proves nothing).
        assert PAIRS < copies <= 2 * PAIRS, serve.log()

        handled: Counter[str] = Counter()

        def handle(envelope: Envelope[Any]) -> None:
            handled[str(envelope.message_id)] += 1

        consumer = Consumer(participant(hub, RECIPIENT))
        for type_ in default_registry().types():
            consumer.register(type_, handle)
        with running_consumer(consumer):
            wait_for(lambda: depth(hub, wire.inbox_queue(RECIPIENT)) == 0, what="inbox drained")
        assert handled == Counter(dict.fromkeys(ids, 1))  # each once, duplicates dropped
        assert serve.stop() == 0
    records = _ledger(hub)
    for kind in ("received", "delivered"):
        per_id = Counter(r["message_id"] for r in records if r["event"] == kind)
        assert per_id == Counter(dict.fromkeys(ids, 1)), kind
