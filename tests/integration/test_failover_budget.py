"""Connection losses do not use up a message's delivery budget on the hub's own queues.

RabbitMQ 3.10 counts a delivery returned because its consumer's connection went away
like a failed one (``x-delivery-count``), and dead-letters past ``x-delivery-limit``.
The router and the audit writer hold up to ``prefetch`` messages unacked, so every node
failover returns all of them once: the cluster proof lost audit batches and ingress
messages that way. Here a consumer takes a message and loses its connection more times
than a participant inbox's limit allows; the hub must still route or record it.
"""

from __future__ import annotations

from pathlib import Path

import pika

from liaison.core.events import EventKind, encode_batch, make_event
from liaison.ledger.query import iter_records
from liaison.settings import Settings
from schemas import wire
from schemas.examples import example_envelope
from tests.integration.harness import blocking, depth, preload, running, take, wait_for


def lose_connection_holding(settings: Settings, queue: str, times: int) -> int:
    """Take the head of ``queue`` as the hub, then drop the connection unacked, ``times`` times.

    Returns the ``x-delivery-count`` the broker put on the last delivery.
    """
    count = 0
    for _ in range(times):
        connection = blocking(settings.amqp_url)
        channel = connection.channel()
        method, props, _body = next(channel.consume(queue, inactivity_timeout=10.0))
        assert method is not None, f"{queue} is empty: the message was dead-lettered"
        count = int((props.headers or {}).get("x-delivery-count", 0))
        connection.close()  # unacked: back to the queue, its delivery count one higher
    return count


def test_ingress_message_survives_more_connection_losses_than_an_inbox_limit(
    hub_settings: Settings, tmp_path: Path
) -> None:
    """A letter whose router connection dropped delivery_limit+2 times is still routed, not dead-lettered."""
    s = hub_settings
    message = example_envelope("correspondence.letter", 1, sender="gs", recipients=("gs-archives",))
    preload(s, "gs", [message])
    losses = s.delivery_limit + 2
    assert lose_connection_holding(s, wire.INGRESS_QUEUE, losses) == losses - 1
    with running(s, "serve", log_path=str(tmp_path / "router.log")):
        inbox = take(s, wire.inbox_queue("gs-archives"), 1)
    assert inbox[0][1] == message.encode()
    assert depth(s, wire.DEAD_QUEUE) == 0


def test_audit_batch_survives_more_connection_losses_than_an_inbox_limit(
    hub_settings: Settings, tmp_path: Path
) -> None:
    """An audit batch whose writer connection dropped delivery_limit+2 times is still recorded."""
    s = hub_settings
    event = make_event(
        EventKind.RECEIVED,
        "failover-budget-1",
        type="correspondence.letter",
        sender="gs",
        recipients=("gs-archives",),
    )
    connection = blocking(s.amqp_url)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            wire.AUDIT_EXCHANGE,
            "",
            encode_batch([event]),
            pika.BasicProperties(
                delivery_mode=2, content_type="application/json", user_id=s.hub_user
            ),
        )
    finally:
        connection.close()
    losses = s.delivery_limit + 2
    assert lose_connection_holding(s, wire.AUDIT_QUEUE, losses) == losses - 1
    with running(
        s, "audit", "run", wait_queue=wire.AUDIT_QUEUE, log_path=str(tmp_path / "writer.log")
    ):
        wait_for(
            lambda: any(r.message_id == "failover-budget-1" for r in iter_records(s.audit_dir)),
            what="the audit record of the batch",
        )
    assert depth(s, wire.DEAD_QUEUE) == 0
