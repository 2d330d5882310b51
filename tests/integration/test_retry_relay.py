"""Retries and parks go through the hub's retry relay: the side doors of issue 11 stay shut.

Every attacker here is a participant with its own generated credentials, speaking
plain pika as the README's wire contract tells it to (no SDK). The module's hub
runs ``liaison serve`` (router and retry relay) and the audit writer, with short
delay queues; each test uses its own participants so they do not see each other's
messages. Negative assertions wait for a barrier, never a fixed sleep: the
attacker's own copy (one dead-lettering makes every copy at once), or a canary
routed after the fact (the router handles ``hub.ingress`` in order).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from consumers import Consumer, Outcome, RetryPolicy
from liaison.credentials import participant_url
from liaison.directory import load_directory
from liaison.ledger.query import history
from liaison.settings import Settings
from liaison.topology import RETRY_DELAY_EXCHANGE, apply, diff
from schemas import wire
from schemas.envelope import Envelope
from schemas.examples import example_envelope
from schemas.types import Payload
from tests.conftest import Broker
from tests.integration.console import cli
from tests.integration.harness import blocking, depth, publish_as, running, take, wait_for
from tests.integration.sdk_support import TEST_DELAYS_MS, hub_vhost, participant


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A hub with 1 s and 2 s delay queues, its router and relay, and the audit writer."""
    base: Path = tmp_path_factory.mktemp("retry-relay")
    with (
        hub_vhost(broker, base, retry_delays_ms=TEST_DELAYS_MS) as settings,
        running(settings, "serve", log_path=str(base / "serve.log")),
        running(
            settings,
            "audit",
            "run",
            wait_queue=wire.AUDIT_QUEUE,
            log_path=str(base / "audit.log"),
        ),
    ):
        wait_for(lambda: _consumers(settings, wire.RETRY_DUE_QUEUE) > 0, what="the retry relay")
        yield settings


def _consumers(settings: Settings, queue: str) -> int:
    connection = blocking(settings.amqp_url)
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    finally:
        connection.close()


def _forged(sender: str, recipients: tuple[str, ...] = ("dir-political",)) -> Envelope[Payload]:
    return example_envelope("correspondence.letter", 1, sender=sender, recipients=recipients)


def park_plain(
    settings: Settings,
    code: str,
    body: bytes,
    *,
    delay: str,
    with_user_id: bool,
    headers: dict[str, Any] | None = None,
) -> None:
    """What the README tells a plain-pika participant to do to retry later, plus extras."""
    connection = pika.BlockingConnection(pika.URLParameters(participant_url(settings, code)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            wire.RETRY_EXCHANGE,
            code,  # the only routing key its topic permission allows
            body,
            pika.BasicProperties(
                content_type=wire.CONTENT_TYPE,
                delivery_mode=2,
                user_id=settings.user_for(code) if with_user_id else None,
                headers={wire.H_DELAY: delay, **(headers or {})},
            ),
            mandatory=True,
        )
    finally:
        connection.close()


def _take_dead(settings: Settings, body: bytes) -> tuple[Any, bytes]:
    """Wait for the one dead letter with ``body`` and take it (leaving nothing else behind)."""
    wait_for(lambda: depth(settings, wire.DEAD_QUEUE) >= 1, what="a dead letter")
    ((properties, found),) = take(settings, wire.DEAD_QUEUE, 1)
    assert found == body
    return properties, found


def _canary(settings: Settings, to: str) -> bytes:
    """Route a valid letter to ``to`` through the router and wait for it: a barrier."""
    canary = example_envelope("correspondence.letter", 1, sender="gs", recipients=(to,))
    publish_as(settings, "gs", canary)
    wait_for(lambda: depth(settings, wire.inbox_queue(to)) >= 1, what=f"the canary in {to}")
    return canary.encode()


class TestDefect1CopiesIntoOtherInboxes:
    """CC/BCC on a parked message reach no other inbox, with or without user_id."""

    @pytest.mark.parametrize(
        ("header", "attacker", "victim"),
        [("CC", "dir-admin", "gs-archives"), ("BCC", "dir-consular", "gs-legal")],
    )
    def test_with_user_id_the_retry_comes_back_to_the_attacker_alone(
        self, hub: Settings, header: str, attacker: str, victim: str
    ) -> None:
        """Its own inbox gets its copy back, as the hub; the inbox named in CC/BCC stays empty."""
        body = _forged("gs-legal", (victim,)).encode()
        park_plain(hub, attacker, body, delay="1s", with_user_id=True, headers={header: [victim]})
        own = wire.inbox_queue(attacker)
        # One dead-lettering makes every copy at once: once the attacker's is there, a
        # copy for the victim would be too.
        wait_for(lambda: depth(hub, own) >= 1, what="the attacker's own retry")
        assert depth(hub, wire.inbox_queue(victim)) == 0
        ((properties, found),) = take(hub, own, 1)
        assert found == body
        # The wire contract: deliveries carry the hub's user; the headers are the hub's.
        assert properties.user_id == hub.hub_user
        assert properties.headers == {wire.H_OWN_RETRY: attacker, wire.H_ATTEMPT: 0}

    @pytest.mark.parametrize(
        ("header", "attacker", "victim"),
        [("CC", "dir-defence", "gs-archives"), ("BCC", "dir-economic", "gs-legal")],
    )
    def test_without_user_id_nothing_is_delivered_anywhere(
        self, hub: Settings, header: str, attacker: str, victim: str
    ) -> None:
        """No user_id: the relay cannot tell whose it is; a hub dead letter with the reason."""
        body = _forged("gs-legal", (victim,)).encode()
        park_plain(hub, attacker, body, delay="1s", with_user_id=False, headers={header: [victim]})

        def landed() -> bool:
            return any(
                depth(hub, queue) > 0
                for queue in (wire.DEAD_QUEUE, wire.inbox_queue(attacker), wire.inbox_queue(victim))
            )

        wait_for(landed, what="the parked message to land somewhere")
        assert depth(hub, wire.inbox_queue(victim)) == 0
        assert depth(hub, wire.inbox_queue(attacker)) == 0
        properties, _ = _take_dead(hub, body)
        assert properties.user_id == hub.hub_user
        assert properties.headers[wire.H_REASON] == "sender_mismatch"
        assert properties.headers[wire.H_ORIGINAL_EXCHANGE] == wire.RETRY_EXCHANGE
        assert "CC" not in properties.headers and "BCC" not in properties.headers


class TestDefect2LaunderingThroughAnOperator:
    """A forged park (sender gs-legal, forged x-death) is neither shown as gs-legal's nor relayed."""

    @pytest.mark.parametrize(
        ("attacker", "with_user_id"), [("gs-it", False), ("dir-cooperation", True)]
    )
    def test_dlq_retry_refuses_a_forged_park(
        self, hub: Settings, attacker: str, with_user_id: bool
    ) -> None:
        """`dlq list` does not name gs-legal as sender; `dlq retry` refuses with a reason, and
        dir-political gets nothing (checked after a canary routed behind it)."""
        forged = _forged("gs-legal", ("dir-political",))
        body = forged.encode()
        park_plain(
            hub,
            attacker,
            body,
            delay="dead",
            with_user_id=with_user_id,
            headers={
                wire.H_REASON: "delivery_limit",
                "x-death": [
                    {
                        "queue": "inbox.dir-political",
                        "reason": "delivery_limit",
                        "count": 5,
                        "exchange": wire.DELIVER_EXCHANGE,
                        "routing-keys": ["dir-political"],
                    }
                ],
                wire.H_ORIGINAL_USER: hub.user_for("gs-legal"),
                wire.H_ORIGINAL_EXCHANGE: wire.DELIVER_EXCHANGE,
            },
        )
        message_id = str(forged.message_id)
        wait_for(lambda: depth(hub, wire.DEAD_QUEUE) >= 1, what="the park in hub.dead")

        listed = cli(hub, "dlq", "list", "--json")
        assert listed.code == 0, listed.err
        (item,) = listed.json()["dead_letters"]
        assert item["message_id"] == message_id
        assert item["sender"] != "gs-legal"
        assert item["claimed_sender"] == "gs-legal"
        table = cli(hub, "dlq", "list").out
        (row,) = [line for line in table.splitlines() if line.startswith(message_id)]
        assert "gs-legal" not in row

        retried = cli(hub, "dlq", "retry", message_id, "--operator", "eve")
        assert retried.code == 1
        assert f"not retried {message_id}: " in retried.err
        assert "cannot prove that 'gs-legal' sent it" in retried.err
        assert depth(hub, wire.DEAD_QUEUE) == 1  # left where it was

        canary = _canary(hub, "dir-political")
        got = take(hub, wire.inbox_queue("dir-political"), depth(hub, "inbox.dir-political"))
        assert [found for _p, found in got] == [canary]
        take(hub, wire.DEAD_QUEUE, 1)


class TestConsumers:
    def test_a_give_up_is_in_the_messages_audit_history(self, hub: Settings) -> None:
        """A consumer parks a message it cannot handle: `audit show` ends with `parked`."""
        sent = example_envelope(
            "correspondence.letter", 1, sender="gs", recipients=("dir-european",)
        )
        publish_as(hub, "gs", sent)
        with Consumer(participant(hub, "dir-european"), retry=RetryPolicy(())) as consumer:

            def broken(envelope: Envelope[Any]) -> None:
                raise RuntimeError("registry offline")

            consumer.register("correspondence.letter", broken)
            consumer.drain(timeout=20, until=lambda: consumer.counts[Outcome.PARKED] >= 1)
        message_id = str(sent.message_id)

        def recorded() -> list[str]:
            # What `liaison audit show` prints: by event time (the router's batch may
            # reach the ledger after the relay's `parked`).
            return [r.event for r in history(hub.audit_dir, message_id)]

        wait_for(lambda: "parked" in recorded(), what="the parked record")
        assert recorded()[-1] == "parked"
        shown = cli(hub, "audit", "show", message_id)
        assert shown.code == 0, shown.err
        (line,) = [line for line in shown.out.splitlines() if " parked " in line]
        assert "dir-european" in line
        assert "handler_error" in line and "registry offline" in line
        properties, _ = _take_dead(hub, sent.encode())
        assert properties.headers[wire.H_PARKED_BY] == "dir-european"

    def test_a_copy_not_from_the_hub_is_refused_and_parked(self, hub: Settings) -> None:
        """A copy in the inbox without the hub's user_id is not handled: parked as not_from_hub."""
        stray = example_envelope("correspondence.letter", 1, sender="gs", recipients=("ona",))
        connection = blocking(hub.amqp_url)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            # As if a broker side door had put it there: no user_id, straight to deliver.
            channel.basic_publish(
                wire.DELIVER_EXCHANGE,
                "ona",
                stray.encode(),
                pika.BasicProperties(content_type=wire.CONTENT_TYPE, delivery_mode=2),
                mandatory=True,
            )
        finally:
            connection.close()
        handled: list[Any] = []
        with Consumer(participant(hub, "ona")) as consumer:
            consumer.register("correspondence.letter", handled.append)
            consumer.drain(timeout=20, until=lambda: consumer.counts[Outcome.PARKED] >= 1)
        assert handled == []
        assert depth(hub, wire.inbox_queue("ona")) == 0
        properties, _ = _take_dead(hub, stray.encode())
        assert properties.headers[wire.H_REASON] == "not_from_hub"
        assert properties.headers[wire.H_PARKED_BY] == "ona"


def test_a_participant_can_read_the_depth_of_any_queue(hub: Settings) -> None:
    """Known limit (README): a passive queue.declare needs no permission on RabbitMQ 3.10,
    so a participant that may declare nothing still reads another inbox's depth and
    hub.dead's. If RabbitMQ ever refuses it, this fails and the README must change."""
    victim = wire.inbox_queue("palace")
    publish_as(hub, "gs", _forged("gs", ("palace",)))
    wait_for(lambda: depth(hub, victim) >= 1, what="a letter for the palace")
    connection = pika.BlockingConnection(pika.URLParameters(participant_url(hub, "chamber")))
    try:
        channel = connection.channel()
        assert channel.queue_declare(victim, passive=True).method.message_count == 1
        assert channel.queue_declare(wire.DEAD_QUEUE, passive=True).method.message_count == 0
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare("inbox.chamber-extra", durable=True)
        assert refused.value.reply_code == 403
    finally:
        if connection.is_open:
            connection.close()
    take(hub, victim, 1)


class TestApplyOnABrokerWithTheOldTopology:
    """`topology apply` moves a broker from the old retry topology to the relay's."""

    def test_apply_retires_the_park_binding_and_recreates_empty_delay_queues(
        self, settings: Settings
    ) -> None:
        """The old park binding is removed; an empty delay queue still dead-lettering to
        liaison.deliver is recreated; one holding messages is reported, left alone."""
        directory = load_directory(None)
        apply(settings, directory)
        park = {"x-match": "all-with-x", wire.H_DELAY: "dead"}
        connection = blocking(settings.amqp_url)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for delay in ("5s", "30s"):
                name = wire.retry_queue(delay)
                channel.queue_delete(name)
                old = {
                    "x-queue-type": "quorum",
                    "x-delivery-limit": settings.delivery_limit,
                    "x-dead-letter-exchange": wire.DELIVER_EXCHANGE,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                    "x-message-ttl": settings.retry_delays_ms[delay],
                }
                channel.queue_declare(name, durable=True, arguments=old)
                channel.queue_bind(
                    name,
                    RETRY_DELAY_EXCHANGE,
                    routing_key="",
                    arguments={"x-match": "all-with-x", wire.H_DELAY: delay},
                )
            channel.exchange_bind(
                wire.DEAD_EXCHANGE, RETRY_DELAY_EXCHANGE, routing_key="", arguments=park
            )
            # A retry waiting in the 30 s queue: deleting it would lose the message.
            channel.basic_publish(
                wire.RETRY_EXCHANGE,
                "gs",
                b"{}",
                pika.BasicProperties(headers={wire.H_DELAY: "30s"}),
                mandatory=True,
            )
        finally:
            connection.close()

        report = apply(settings, directory)
        assert any(
            line.startswith("remove retired binding liaison.retry.delay -> exchange liaison.dead")
            for line in report.changes
        ), report.changes
        assert any(
            line.startswith(f"recreate empty queue {wire.retry_queue('5s')}")
            for line in report.changes
        ), report.changes
        (left,) = report.unresolved
        assert left.name == wire.retry_queue("30s")
        assert "holding 1 message(s)" in left.detail
        assert not report.extra

        remaining = [str(d) for d in diff(settings, directory)]
        assert len(remaining) == 1 and remaining[0].startswith("changed queue hub.retry.30s")
        # The side door is shut: a park reaches the relay's queue, not hub.dead.
        park_plain(settings, "gs-it", b"{}", delay="dead", with_user_id=True)
        wait_for(lambda: depth(settings, wire.RETRY_DUE_QUEUE) == 1, what="the park at the relay")
        assert depth(settings, wire.DEAD_QUEUE) == 0
        # And the recreated 5 s queue feeds the relay too.
        park_plain(settings, "gs-it", b"[]", delay="5s", with_user_id=True)
        assert depth(settings, wire.retry_queue("5s")) == 1
