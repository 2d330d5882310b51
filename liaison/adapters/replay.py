"""Replaying messages from the audit log through the hub, each marked as a replay.

The stored envelope is re-published unchanged (its signature stays valid) to
``liaison.ingress`` as the hub's own user, with headers saying which message it
replays, who asked, the operation's id, and optionally the one recipient it is
for. The router trusts the hub's user as a relay, routes the replay and audits
it as ``replayed`` with the actor's name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pika

from liaison.adapters.connections import connection_parameters
from liaison.adapters.pipelined import publish_pipelined
from liaison.core.relay import Relay, request_headers
from liaison.ledger.records import Record, ts_seconds
from liaison.settings import Settings
from schemas import wire
from schemas.envelope import canonical_json


@dataclass(frozen=True)
class Replay:
    """One planned re-publication."""

    message_id: str
    type: str
    sender: str
    recipients: tuple[str, ...]
    body: bytes
    headers: dict[str, Any]
    #: When the hub first received the message (its first ``received`` record), carried
    #: on as the AMQP ``timestamp``: the replayed copies are dated by it, not the replay.
    timestamp: int | None = None


def plan_replays(records: Iterable[Record], *, actor: str, to: str | None = None) -> list[Replay]:
    """The replays for ``records`` (those carrying an envelope), to ``to`` or their recipients."""
    plans: list[Replay] = []
    for record in records:
        envelope = record.envelope
        if envelope is None or not isinstance(envelope.get("type"), str):
            continue
        headers = request_headers(
            Relay.REPLAY,
            record.message_id,
            actor=actor,
            operation=uuid.uuid4().hex,
            to=(to,) if to is not None else None,
        )
        recipients = (to,) if to else tuple(envelope.get("recipients", ()))
        plans.append(
            Replay(
                message_id=record.message_id,
                type=envelope["type"],
                sender=str(envelope.get("sender", "?")),
                recipients=recipients,
                body=canonical_json(envelope),
                headers=headers,
                timestamp=ts_seconds(record.ts),
            )
        )
    return plans


def publish_replays(settings: Settings, replays: list[Replay]) -> float:
    """Publish ``replays`` to ingress as the hub's user, with confirms; seconds taken."""
    messages = [
        (
            replay.type,
            replay.body,
            pika.BasicProperties(
                content_type=wire.CONTENT_TYPE,
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=replay.message_id,
                type=replay.type,
                user_id=settings.hub_user,
                headers=replay.headers,
                timestamp=replay.timestamp,
            ),
        )
        for replay in replays
    ]
    return publish_pipelined(
        connection_parameters(settings, name="liaison-replay"), wire.INGRESS_EXCHANGE, messages
    )
