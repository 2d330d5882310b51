"""A burst of letters from four senders while the procedures service is SIGKILLed twice.

Done when: every letter has one registry number, the numbers are exactly 1..N for
the year, each sender gets exactly one receipt.registered per letter once it drops
duplicates by message id, and ``procedures rebuild`` finds no difference with the
ledger. N is 5,000 in long mode (``--long``) and 1,000 otherwise, on both SQLite
and PostgreSQL.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pika
from sqlalchemy import func, select

from liaison.adapters.pipelined import publish_pipelined
from liaison.credentials import participant_url
from liaison.procedures import tables as t
from liaison.procedures.store import Store
from liaison.settings import Settings
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import new_envelope
from tests.integration.console import cli
from tests.integration.harness import Process, blocking, consumer_count, running, wait_for
from tests.integration.procedures_support import procedures_env, procedures_settings

SENDERS = ("gs", "gs-treaties", "dir-political", "dir-european")


def _letters(sender: str, count: int) -> list[tuple[str, bytes, pika.BasicProperties]]:
    out = []
    for i in range(count):
        env = new_envelope(
            Letter(
                registry_reference=f"{sender.upper()}/{i}",
                subject=f"Lettre {i} de {sender}",
                body="Corps de la lettre.",
                addressee="Archives",
                signatory="Signataire",
            ),
            sender=sender,
            recipients=("gs-archives",),
        )
        props = pika.BasicProperties(
            content_type=wire.CONTENT_TYPE,
            delivery_mode=2,
            message_id=str(env.message_id),
            type=env.type,
            user_id=None,
        )
        out.append((env.type, env.encode(), props))
    return out


def _count(store: Store) -> int:
    with store.reading() as db:
        return int(db.execute(select(func.count()).select_from(t.registry)).scalar_one())


def _start(settings: Settings, tmp_path: Path, n: int):  # type: ignore[no-untyped-def]
    return running(
        settings,
        "procedures",
        "run",
        wait_queue="inbox.gs-procedures",
        log_path=str(tmp_path / f"procedures-{n}.log"),
        env=procedures_env(settings),
    )


def test_burst_with_two_sigkills(
    hub_settings: Settings, database_url: str, tmp_path: Path, long: bool
) -> None:
    """N letters, 4 senders, service killed twice: numbers 1..N, one receipt each, rebuild clean."""
    per_sender = 1_250 if long else 250
    total = per_sender * len(SENDERS)
    settings = procedures_settings(hub_settings, database_url, tmp_path)
    assert cli(settings, "procedures", "migrate", **procedures_env(settings)).code == 0
    store = Store.open(database_url)
    batches = {}
    for sender in SENDERS:
        batch = _letters(sender, per_sender)
        for _, _, props in batch:
            props.user_id = settings.user_for(sender)
        batches[sender] = batch
    sent = {
        sender: {json.loads(body)["message_id"] for _, body, _ in batch}
        for sender, batch in batches.items()
    }
    with (
        running(settings, "serve", log_path=str(tmp_path / "router.log")),
        running(
            settings, "audit", "run", wait_queue=wire.AUDIT_QUEUE, log_path=str(tmp_path / "a.log")
        ),
    ):
        senders = [
            threading.Thread(
                target=publish_pipelined,
                args=(participant_url(settings, sender), wire.INGRESS_EXCHANGE, batches[sender]),
                kwargs={"max_in_flight": 200},
            )
            for sender in SENDERS
        ]
        for thread in senders:
            thread.start()
        kills = 0
        for round_ in range(3):
            with _start(settings, tmp_path, round_) as service:
                if round_ < 2:
                    target = (round_ + 1) * total // 3
                    wait_for(
                        lambda n=target: _count(store) >= n,
                        timeout=240,
                        what=f"{target} registered",
                    )
                    _kill(service)
                    kills += 1
                else:
                    for thread in senders:
                        thread.join()
                    wait_for(
                        lambda: _count(store) >= total, timeout=300, what="every letter registered"
                    )
                    wait_for(lambda: not store.unsent(), timeout=60, what="the outbox sent")
                    receipts = {
                        sender: _receipts(settings, sender, per_sender) for sender in SENDERS
                    }
        assert kills == 2
        year = datetime.now(UTC).year
        with store.reading() as db:
            numbers = list(
                db.execute(select(t.registry.c.sequence).where(t.registry.c.year == year)).scalars()
            )
        assert sorted(numbers) == list(range(1, total + 1))
        for sender in SENDERS:
            originals = [r["payload"]["original_message_id"] for r in receipts[sender].values()]
            assert sorted(originals) == sorted(sent[sender]), sender
        wait_for(
            lambda: cli(settings, "procedures", "rebuild", **procedures_env(settings)).code == 0,
            timeout=120,
            what="procedures rebuild with no difference",
        )
    store.close()


def _kill(service: Process) -> None:
    service.popen.send_signal(signal.SIGKILL)
    service.popen.wait(timeout=30)
    time.sleep(0.2)


def _receipts(settings: Settings, sender: str, expected: int) -> dict[str, dict]:  # type: ignore[type-arg]
    """The receipts in ``sender``'s inbox, de-duplicated by message id (as a consumer does)."""
    found: dict[str, dict] = {}  # type: ignore[type-arg]
    connection = blocking(settings.amqp_url)
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=500)
        for method, _props, body in channel.consume(f"inbox.{sender}", inactivity_timeout=10):
            if method is None:
                break
            channel.basic_ack(method.delivery_tag)
            data = json.loads(body)
            found.setdefault(data["message_id"], data)
            if len(found) >= expected:
                break
        channel.cancel()
    finally:
        connection.close()
    return found


def test_two_services_at_once_on_postgresql(
    hub_settings: Settings, tmp_path: Path, database_url: str
) -> None:
    """Two `procedures run` on one PostgreSQL database share the inbox: numbers 1..N, none twice."""
    if not database_url.startswith("postgresql"):
        return  # SQLite has one writer at a time by design; the race is PostgreSQL's
    per_sender = 100
    total = per_sender * len(SENDERS)
    settings = procedures_settings(hub_settings, database_url, tmp_path)
    assert cli(settings, "procedures", "migrate", **procedures_env(settings)).code == 0
    store = Store.open(database_url)
    with (
        running(settings, "serve", log_path=str(tmp_path / "router.log")),
        _start(settings, tmp_path, 1) as first,
        _start(settings, tmp_path, 2) as second,
    ):
        wait_for(lambda: consumer_count(settings, "inbox.gs-procedures") == 2, what="both services")
        for sender in SENDERS:
            batch = _letters(sender, per_sender)
            for _, _, props in batch:
                props.user_id = settings.user_for(sender)
            publish_pipelined(participant_url(settings, sender), wire.INGRESS_EXCHANGE, batch)
        wait_for(lambda: _count(store) >= total, timeout=240, what="every letter registered")
        first.stop()
        second.stop()
    applied = [_applied(first.log()), _applied(second.log())]
    assert sum(applied) == total and min(applied) > 0, applied  # both took part
    year = datetime.now(UTC).year
    with store.reading() as db:
        numbers = list(
            db.execute(select(t.registry.c.sequence).where(t.registry.c.year == year)).scalars()
        )
    store.close()
    assert sorted(numbers) == list(range(1, total + 1))


def _applied(log: str) -> int:
    """How many copies a service applied, from its last ``procedures.stopped`` log line."""
    lines = [json.loads(line) for line in log.splitlines() if '"procedures.stopped"' in line]
    return int(lines[-1]["applied"])
