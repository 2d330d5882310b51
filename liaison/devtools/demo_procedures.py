"""The procedures part of ``liaison demo``: a letter registered, a FLASH cable chased.

Runs inside the demo's running hub (router and audit writer up): migrates the
procedures database, starts ``liaison procedures run`` as a process, then

1. the General Secretariat writes to the Palace: the letter gets the year's next
   registry number and a ``receipt.registered`` comes back to the sender;
2. the embassy in Paris sends a FLASH cable to three recipients; two acknowledge,
   the third does not, and at the (shortened) deadline one escalation reaches the
   duty officer and the embassy, naming the one who did not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pika

from liaison.adapters.connections import connection_parameters
from liaison.credentials import participant_url
from liaison.errors import BrokerError
from liaison.procedures.calendar import Duration
from liaison.procedures.core import RECEIPT_TOKEN_HEADER
from liaison.settings import Settings
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import Envelope, new_envelope
from schemas.examples import example_payload
from schemas.receipts import ReceiptReceived
from schemas.types import Payload, Precedence

Echo = Callable[[str], None]

DEMO_ACKS = """# Written by `liaison demo`: the bundled rules, with a FLASH deadline short enough
# to watch it pass.
[[ack]]
name = "flash-cables"
types = ["mission.cable"]
precedence = ["FLASH"]
receipt = "receipt.received"
within = "{within}"

[[ack]]
name = "letters-to-the-institutions"
types = ["correspondence.*"]
recipients = ["palace", "chamber", "council"]
receipt = "receipt.registered"
within = "2 working days"
"""


def demo_settings(settings: Settings, ack_deadline: str) -> Settings:
    """The demo's procedures settings: its own acks file with the short FLASH deadline."""
    Duration.parse(ack_deadline)  # a ConfigError naming the mistake, before anything starts
    state = settings.audit_dir.parent
    state.mkdir(parents=True, exist_ok=True)
    acks = state / "demo-acks.toml"
    acks.write_text(DEMO_ACKS.format(within=ack_deadline), encoding="utf-8")
    url = settings.procedures_database_url or f"sqlite:///{state / 'procedures.sqlite3'}"
    return settings.replace(procedures_database_url=url, acks_path=acks, procedures_sweep_s=1.0)


def env_names() -> tuple[str, ...]:
    """The settings a procedures process of the demo needs besides the hub's."""
    return ("procedures_database_url", "acks_path", "procedures_sweep_s", "registry_prefix")


def _publish(settings: Settings, sender: str, envelope: Envelope[Any], headers: Any = None) -> None:
    params = connection_parameters(settings, participant_url(settings, sender), name="liaison-demo")
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            wire.INGRESS_EXCHANGE,
            envelope.type,
            envelope.encode(),
            pika.BasicProperties(
                content_type=wire.CONTENT_TYPE,
                delivery_mode=2,
                user_id=settings.user_for(sender),
                headers=headers,
            ),
            mandatory=True,
        )
    finally:
        connection.close()


def _take(
    settings: Settings, code: str, accept: Callable[[dict[str, Any]], bool], timeout: float
) -> tuple[pika.spec.BasicProperties, dict[str, Any]]:
    """The first message in ``code``'s inboxes that ``accept``s (others are consumed too).

    The urgent band first, as every consumer reads them.
    """
    params = connection_parameters(settings, participant_url(settings, code), name="liaison-demo")
    connection = pika.BlockingConnection(params)
    deadline = time.monotonic() + timeout
    try:
        channel = connection.channel()
        while time.monotonic() < deadline:
            for queue in wire.inbox_queues(code):
                method, props, body = channel.basic_get(queue, auto_ack=True)
                if method is not None:
                    break
            if method is None:
                time.sleep(0.2)
                continue
            data = json.loads(body)
            if accept(data):
                return props, data
    finally:
        connection.close()
    raise BrokerError(
        f"demo: nothing awaited arrived in inbox.{code}[.urgent] within {timeout:.0f} s"
    )


def run_procedures_demo(settings: Settings, echo: Echo, *, ack_deadline: str) -> None:
    """The two scenes above, printed as they happen."""
    echo("\nThe procedures service (registry, acknowledgements chased):")
    letter = new_envelope(
        Letter(
            registry_reference="SG/2026/0412",
            subject="Visite d'État au Japon: projet de programme",
            body="Monsieur le Maréchal, j'ai l'honneur de vous transmettre le projet ...",
            addressee="Maréchal de la Cour",
            signatory="Le Secrétaire général",
        ),
        sender="gs",
        recipients=("palace",),
    )
    _publish(settings, "gs", letter)
    _, receipt = _take(
        settings,
        "gs",
        lambda d: (
            d["type"] == "receipt.registered"
            and d["payload"]["original_message_id"] == str(letter.message_id)
        ),
        timeout=60,
    )
    number = receipt["payload"]["registry_number"]
    echo(f"  letter gs → palace registered as {number}; receipt.registered back at gs")
    echo(f"  (`liaison registry show {number}`; the Palace has 2 working days to register it)")

    cable = new_envelope(
        example_payload("mission.cable", 2),
        sender="emb-paris",
        recipients=("dir-political", "gs", "dir-european"),
        precedence=Precedence.FLASH,
    )
    _publish(settings, "emb-paris", cable)
    for code in ("dir-political", "gs"):
        props, copy = _take(
            settings, code, lambda d: d["message_id"] == str(cable.message_id), timeout=60
        )
        token = (props.headers or {}).get(RECEIPT_TOKEN_HEADER)
        ack: Envelope[Payload] = new_envelope(
            ReceiptReceived(original_message_id=cable.message_id, received_at=datetime.now(UTC)),
            sender=code,
            recipients=(copy["sender"],),
            causation_id=cable.message_id,
        )
        _publish(settings, code, ack, {RECEIPT_TOKEN_HEADER: token} if token else None)
    echo(
        f"  FLASH cable emb-paris → dir-political, gs, dir-european; dir-political and gs "
        f"acknowledge; deadline {ack_deadline}"
    )
    _, escalation = _take(
        settings,
        "duty-officer",
        lambda d: (
            d["type"] == "procedure.escalation"
            and d["payload"]["subject_message_id"] == str(cable.message_id)
        ),
        timeout=120,
    )
    waiting = ", ".join(escalation["payload"]["waiting_on"])
    echo(f"  escalation to duty-officer and emb-paris: no receipt.received from {waiting}")


__all__ = ["demo_settings", "env_names", "run_procedures_demo"]
