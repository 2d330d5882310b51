"""Helpers for the procedures service's broker tests: its settings, env and receipts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika

from liaison.procedures.core import RECEIPT_TOKEN_HEADER
from liaison.settings import Settings
from schemas import wire
from schemas.envelope import new_envelope
from schemas.receipts import ReceiptReceived
from tests.integration.harness import blocking, env_for, publish_as, running

#: Acknowledgement rules with a deadline short enough to watch it pass in a test.
SHORT_ACKS = """
[[ack]]
name = "flash-cables"
types = ["mission.cable"]
precedence = ["FLASH"]
receipt = "receipt.received"
within = "{within}"
remind_after = "2 seconds"

[[ack]]
name = "letters-to-the-institutions"
types = ["correspondence.*"]
recipients = ["palace", "chamber", "council"]
receipt = "receipt.registered"
within = "2 working days"
"""


def procedures_settings(
    settings: Settings, database_url: str, base: Path, *, within: str = "4 seconds"
) -> Settings:
    """Hub settings plus the procedures database, short ack rules and a quick sweeper."""
    acks = base / "acks.toml"
    acks.write_text(SHORT_ACKS.format(within=within), encoding="utf-8")
    return settings.replace(
        procedures_database_url=database_url, acks_path=acks, procedures_sweep_s=0.3
    )


def procedures_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a subprocess with these settings, the procedures' ones included."""
    return env_for(
        settings,
        LIAISON_PROCEDURES_DATABASE_URL=settings.procedures_database_url or "",
        LIAISON_ACKS_PATH=str(settings.acks_path),
        LIAISON_PROCEDURES_SWEEP_S=str(settings.procedures_sweep_s),
        **extra,
    )


def take_json(
    settings: Settings, code: str, count: int, *, timeout: float = 30.0
) -> list[tuple[pika.spec.BasicProperties, dict[str, Any]]]:
    """``count`` messages from ``code``'s inboxes, bodies parsed: the urgent band first,
    as every consumer reads them (FLASH and IMMEDIATE copies are there)."""
    got: list[tuple[pika.spec.BasicProperties, dict[str, Any]]] = []
    connection = blocking(settings.amqp_url)
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            for queue in wire.inbox_queues(code):
                method, props, body = channel.basic_get(queue, auto_ack=True)
                if method is not None:
                    got.append((props, json.loads(body)))
                    break
            else:
                time.sleep(0.05)
    finally:
        connection.close()
    if len(got) < count:
        raise AssertionError(f"inbox.{code}[.urgent]: {len(got)} of {count} within {timeout} s")
    return got


def acknowledge(
    settings: Settings, code: str, props: pika.spec.BasicProperties, data: dict[str, Any]
) -> None:
    """``code`` sends receipt.received for the copy it took (with the copy's receipt token)."""
    token = (props.headers or {}).get(RECEIPT_TOKEN_HEADER)
    receipt = new_envelope(
        ReceiptReceived(original_message_id=data["message_id"], received_at=datetime.now(UTC)),
        sender=code,
        recipients=(data["sender"],),
        causation_id=data["message_id"],
    )
    publish_as(settings, code, receipt, headers={RECEIPT_TOKEN_HEADER: token} if token else None)


def procedures_service(settings: Settings, tmp_path: Path) -> Any:
    """``liaison procedures run`` as a process, once it consumes its inbox."""
    return running(
        settings,
        "procedures",
        "run",
        wait_queue="inbox.gs-procedures",
        log_path=str(tmp_path / "procedures.log"),
        env=procedures_env(settings),
    )
