"""Failures at the edge on the real broker: delayed retries, dead letters, duplicates, refusals.

The module's hub declares short delay queues (1 s, 2 s) and the consumers use
them; each test uses its own recipient so tests do not see each other's messages.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from consumers import Consumer, Outcome, RetryPolicy, SqliteStore
from liaison.adapters.management import Management
from liaison.core.events import body_id
from liaison.settings import Settings
from producers import Publisher, PublishError
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import Envelope
from schemas.examples import example_payload
from tests.conftest import Broker
from tests.integration.harness import blocking, depth, running, wait_for
from tests.integration.sdk_support import TEST_DELAYS_MS, hub_vhost, participant

FAST = RetryPolicy(tuple(TEST_DELAYS_MS))


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A hub with 1 s and 2 s delay queues and its router, for the whole module."""
    base: Path = tmp_path_factory.mktemp("sdk-retries")
    with (
        hub_vhost(broker, base, retry_delays_ms=TEST_DELAYS_MS) as settings,
        running(settings, "serve", log_path=str(base / "router.log")),
    ):
        yield settings


def _send_letter(settings: Settings, to: str, sender: str = "gs") -> Envelope[Letter]:
    letter = example_payload("correspondence.letter", 1)
    assert isinstance(letter, Letter)
    with Publisher(participant(settings, sender)) as publisher:
        return publisher.publish(letter, recipients=[to])


def _dead_letters(settings: Settings, message_id: Any, timeout: float = 15) -> list[Any]:
    """The dead letters of ``message_id`` (properties, body), taken from hub.dead."""
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    connection = blocking(settings.amqp_url)
    try:
        channel = connection.channel()
        while not found and time.monotonic() < deadline:
            method, properties, body = channel.basic_get(wire.DEAD_QUEUE)
            if method is None:
                time.sleep(0.2)
                continue
            channel.basic_ack(method.delivery_tag)
            if properties.message_id == str(message_id):
                found.append((properties, body))
    finally:
        connection.close()
    return found


def _relay_again(settings: Settings, envelope: Envelope[Any]) -> None:
    """What an operator's retry does: the hub's own user re-publishes the same bytes."""
    connection = blocking(settings.amqp_url)
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
                message_id=str(envelope.message_id),
                user_id=settings.hub_user,
                headers={
                    wire.H_RETRY_OF: str(envelope.message_id),
                    wire.H_ACTOR: "test-operator",
                    wire.H_OPERATION: str(uuid.uuid4()),
                },
            ),
            mandatory=True,
        )
    finally:
        connection.close()


def test_a_handler_failing_twice_is_retried_with_delays_and_takes_effect_once(
    hub: Settings,
) -> None:
    """Fail, wait 1 s, fail, wait 2 s, succeed: three attempts, one effect, no dead letter."""
    sent = _send_letter(hub, "gs-archives")
    attempts: list[float] = []
    effects: list[uuid.UUID] = []
    with Consumer(participant(hub, "gs-archives"), retry=FAST) as consumer:

        @consumer.handler(Letter)
        def file_letter(envelope: Envelope[Letter]) -> None:
            attempts.append(time.monotonic())
            if len(attempts) < 3:
                raise ConnectionError("registry database unavailable")
            effects.append(envelope.message_id)

        consumer.drain(timeout=30, until=lambda: bool(effects))
        consumer.drain(timeout=3)  # anything more that would come back
    assert effects == [sent.message_id]
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.9
    assert attempts[2] - attempts[1] >= 1.9
    assert consumer.counts[Outcome.RETRIED] == 2
    assert consumer.counts[Outcome.HANDLED] == 1
    assert _dead_letters(hub, sent.message_id, timeout=1) == []


def test_a_handler_that_always_fails_ends_in_dead_letters_with_its_error(hub: Settings) -> None:
    """After the last delay the message is parked: same bytes, error type and text in headers."""
    sent = _send_letter(hub, "gs-it")
    with Consumer(participant(hub, "gs-it"), retry=FAST) as consumer:

        def broken(envelope: Envelope[Any]) -> None:
            raise ValueError(f"cannot file {envelope.message_id}")

        consumer.register("correspondence.letter", broken)
        consumer.drain(timeout=30, until=lambda: consumer.counts[Outcome.PARKED] >= 1)
    assert consumer.counts[Outcome.RETRIED] == 2
    ((properties, body),) = _dead_letters(hub, sent.message_id)
    assert body == sent.encode()
    headers = properties.headers
    assert headers[wire.H_REASON] == "handler_error"
    assert headers[wire.H_ERROR_TYPE] == "ValueError"
    assert headers[wire.H_REASON_TEXT] == f"ValueError: cannot file {sent.message_id}"
    assert headers[wire.H_ATTEMPT] == 3
    assert headers[wire.H_RECIPIENT] == "gs-it"
    # The hub's relay forwarded it (RabbitMQ validated that), saying who parked it:
    # the participant its own validated user named.
    assert properties.user_id == hub.hub_user
    assert headers[wire.H_PARKED_BY] == "gs-it"


def test_a_type_without_handler_and_garbage_are_parked_not_fatal(hub: Settings) -> None:
    """The consumer survives input it cannot take: both land in dead letters with a reason."""
    note = example_payload("correspondence.note", 1)
    with Publisher(participant(hub, "gs")) as publisher:
        sent = publisher.publish(note, recipients=["gs-icc"])
    icc = participant(hub, "gs-icc")
    garbage_id = str(uuid.uuid4())
    with Publisher(icc) as own:
        # Only the participant itself can put bytes in its inbox past the router:
        # through its own delay queue.
        own.publish_bytes(
            b"{garbage",
            exchange=wire.RETRY_EXCHANGE,
            routing_key="gs-icc",
            properties={"user_id": icc.rabbit_user, "message_id": garbage_id},
            headers={wire.H_DELAY: "1s"},
        )
    with Consumer(icc, retry=FAST) as consumer:
        consumer.register("correspondence.letter", lambda envelope: None)
        consumer.drain(timeout=20, until=lambda: consumer.counts[Outcome.PARKED] >= 2)
    ((no_handler, _),) = _dead_letters(hub, sent.message_id)
    assert no_handler.headers[wire.H_REASON] == "no_handler"
    # Filed under the body's digest: the relay takes ids from bodies, never properties.
    ((garbage, body),) = _dead_letters(hub, body_id(b"{garbage"))
    assert garbage.headers[wire.H_REASON] == "not_json"
    assert body == b"{garbage"


def test_a_duplicate_is_not_processed_twice_even_after_a_restart(
    hub: Settings, tmp_path: Path
) -> None:
    """Operator retries deliver the same message again: the SQLite store keeps the effect single."""
    sent = _send_letter(hub, "dir-admin")
    effects: list[uuid.UUID] = []
    store_path = tmp_path / "processed.db"

    def consumer_with(store: SqliteStore) -> Consumer:
        consumer = Consumer(participant(hub, "dir-admin"), store=store)
        consumer.register("correspondence.letter", lambda e: effects.append(e.message_id))
        return consumer

    with SqliteStore(store_path) as store, consumer_with(store) as first:
        first.drain(timeout=20, until=lambda: bool(effects))
        _relay_again(hub, sent)  # a redelivery while running
        first.drain(timeout=20, until=lambda: first.counts[Outcome.DUPLICATE] >= 1)
    _relay_again(hub, sent)  # and one after the consumer went away
    with SqliteStore(store_path) as store, consumer_with(store) as second:
        second.drain(timeout=20, until=lambda: second.counts[Outcome.DUPLICATE] >= 1)
    assert effects == [sent.message_id]
    assert second.counts[Outcome.HANDLED] == 0


def test_refused_and_unroutable_publishes_raise_clear_errors(hub: Settings) -> None:
    """A type the directory forbids (403) and a message no queue takes both raise PublishError."""
    gs = participant(hub, "gs")
    with Publisher(gs) as publisher:
        with pytest.raises(PublishError) as refused:
            publisher.publish(example_payload("ona.report", 1), recipients=["gs"])
        assert refused.value.type == "ona.report"
        assert "403" in str(refused.value)
        assert "may_send" in str(refused.value)
        with pytest.raises(PublishError) as unroutable:
            publisher.publish_bytes(
                b"{}",
                exchange=wire.RETRY_EXCHANGE,
                routing_key="gs",
                properties={"user_id": gs.rabbit_user, "type": "correspondence.letter"},
                headers={wire.H_DELAY: "7s"},  # no such delay queue
            )
        assert unroutable.value.cause == "unroutable"
        # The same publisher carries on after both.
        publisher.publish(example_payload("correspondence.letter", 1), recipients=["gs-archives"])


def test_a_lost_connection_is_retried_with_the_same_message_id(hub: Settings) -> None:
    """The broker drops the publisher's connection; the next publish reconnects, id unchanged."""
    gs = participant(hub, "gs")
    letter = example_payload("correspondence.letter", 1)
    with Publisher(gs, interval_start=0.1) as publisher:
        publisher.publish(letter, recipients=["dir-defence"])  # connected
        envelope = publisher.build(letter, recipients=["dir-defence"])
        with Management(hub) as api:
            wait_for(lambda: api.close_connections(user=gs.rabbit_user) > 0, what="a closed conn")
        sent = publisher.publish_envelope(envelope)
    assert sent.message_id == envelope.message_id
    got: list[uuid.UUID] = []
    with Consumer(participant(hub, "dir-defence")) as consumer:
        consumer.register("correspondence.letter", lambda e: got.append(e.message_id))
        consumer.drain(timeout=20, until=lambda: envelope.message_id in got)
        consumer.drain(timeout=1)
    assert got.count(envelope.message_id) == 1
    assert len(got) == 2


def test_parking_reaches_dead_letters_only(hub: Settings) -> None:
    """x-liaison-delay: dead on liaison.retry reaches hub.dead (which participants cannot
    publish to) through the hub's relay and no delay queue: x- headers take part in the
    match (all-with-x)."""
    council = participant(hub, "council")
    message_id = str(uuid.uuid4())
    with Publisher(council) as publisher:
        publisher.publish_bytes(
            b'{"parked": true}',
            exchange=wire.RETRY_EXCHANGE,
            routing_key="council",
            properties={"user_id": council.rabbit_user, "message_id": message_id},
            headers={wire.H_DELAY: "dead", wire.H_REASON: "handler_error"},
        )
    assert [depth(hub, wire.retry_queue(delay)) for delay in TEST_DELAYS_MS] == [0, 0]
    # Filed under the body's digest: the body carries no message id of its own.
    ((properties, body),) = _dead_letters(hub, body_id(b'{"parked": true}'))
    assert body == b'{"parked": true}'
    assert properties.user_id == hub.hub_user
    assert properties.headers[wire.H_PARKED_BY] == "council"
