"""What a participant cannot do on the broker, beyond ``test_topology.py``'s checks.

Each test connects as a participant of the bundled directory with the password
``topology apply`` generated, and tries a way around the router: reading what is
not its own, speaking as someone else, publishing where only the hub publishes,
changing the topology, or leaving its vhost. ``test_topology.py`` already covers
allowed and forbidden ingress types, consuming another inbox with basic.consume,
basic.get on the audit queue, declaring a queue or exchange, publishing to the
deliver/audit/dead/retry-delay exchanges and parking into another inbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pika
import pika.exceptions
import pytest

from liaison.credentials import participant_url
from liaison.settings import Settings
from schemas import wire
from schemas.examples import example_envelope

CODE = "emb-berlin"
OTHER = "gs"


def refused(action: Callable[[], Any]) -> int:
    """The reply code of the channel error ``action`` provokes."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        action()
    return int(caught.value.reply_code)


@pytest.fixture
def berlin(hub_settings: Settings) -> Iterator[pika.BlockingConnection]:
    """A connection as the embassy in Berlin, with its generated credentials."""
    connection = pika.BlockingConnection(pika.URLParameters(participant_url(hub_settings, CODE)))
    yield connection
    if connection.is_open:
        connection.close()


def confirming(connection: pika.BlockingConnection) -> Any:
    """A fresh channel in confirm mode (a refused publish then raises at once)."""
    channel = connection.channel()
    channel.confirm_delivery()
    return channel


def cable(sender: str = CODE) -> bytes:
    """A valid cable from ``sender`` to gs."""
    return example_envelope("mission.cable", 2, sender=sender, recipients=(OTHER,)).encode()


class TestIdentity:
    def test_user_id_of_another_participant(
        self, hub_settings: Settings, berlin: pika.BlockingConnection
    ) -> None:
        """A publish whose user_id names another participant is refused by RabbitMQ (406), so no envelope can claim that participant's identity."""
        channel = confirming(berlin)
        props = pika.BasicProperties(user_id=hub_settings.user_for(OTHER))
        code = refused(
            lambda: channel.basic_publish(
                wire.INGRESS_EXCHANGE, "mission.cable", cable(OTHER), props
            )
        )
        assert code == 406

    def test_user_id_of_the_hub(
        self, hub_settings: Settings, berlin: pika.BlockingConnection
    ) -> None:
        """A participant cannot pose as the hub's own user, the one relay the router trusts (406)."""
        channel = confirming(berlin)
        props = pika.BasicProperties(user_id=hub_settings.hub_user, headers={wire.H_REPLAY_OF: "x"})
        code = refused(
            lambda: channel.basic_publish(wire.INGRESS_EXCHANGE, "mission.cable", cable(), props)
        )
        assert code == 406

    def test_own_user_id_is_accepted(
        self, hub_settings: Settings, berlin: pika.BlockingConnection
    ) -> None:
        """The control: its own user_id on an allowed type is confirmed."""
        channel = confirming(berlin)
        props = pika.BasicProperties(user_id=hub_settings.user_for(CODE))
        channel.basic_publish(wire.INGRESS_EXCHANGE, "mission.cable", cable(), props)


class TestReading:
    @pytest.mark.parametrize(
        "queue",
        [
            wire.inbox_queue(OTHER),
            wire.urgent_inbox_queue(OTHER),
            wire.INGRESS_QUEUE,
            wire.DEAD_QUEUE,
            wire.AUDIT_QUEUE,
        ],
    )
    def test_cannot_get_from_queues_not_its_own(
        self, berlin: pika.BlockingConnection, queue: str
    ) -> None:
        """basic.get on another inbox, the ingress queue (everyone's traffic), dead letters or the audit queue: 403."""
        assert refused(lambda: berlin.channel().basic_get(queue)) == 403

    @pytest.mark.parametrize("queue", wire.inbox_queues(CODE))
    def test_can_read_its_own_two_bands(self, berlin: pika.BlockingConnection, queue: str) -> None:
        """basic.get on its own routine and urgent inboxes is allowed (both empty here)."""
        method, _props, _body = berlin.channel().basic_get(queue)
        assert method is None

    @pytest.mark.parametrize("queue", [wire.INGRESS_QUEUE, wire.DEAD_QUEUE])
    def test_cannot_consume_hub_queues(self, berlin: pika.BlockingConnection, queue: str) -> None:
        """basic.consume on the ingress queue or the dead letters: 403."""
        assert refused(lambda: berlin.channel().basic_consume(queue, lambda *_: None)) == 403

    def test_cannot_purge_another_inbox(self, berlin: pika.BlockingConnection) -> None:
        """Purging another participant's inbox (destroying its mail unread): 403."""
        assert refused(lambda: berlin.channel().queue_purge(wire.inbox_queue(OTHER))) == 403

    @pytest.mark.parametrize("queue", wire.inbox_queues(CODE))
    def test_cannot_bind_its_inbox_to_ingress(
        self, berlin: pika.BlockingConnection, queue: str
    ) -> None:
        """Binding its own inbox to liaison.ingress with '#' (a copy of everyone's traffic): 403."""
        channel = berlin.channel()
        code = refused(lambda: channel.queue_bind(queue, wire.INGRESS_EXCHANGE, "#"))
        assert code == 403

    def test_cannot_bind_exchanges(self, berlin: pika.BlockingConnection) -> None:
        """Binding liaison.deliver to liaison.ingress (exchange to exchange): 403."""
        channel = berlin.channel()
        code = refused(
            lambda: channel.exchange_bind(wire.DELIVER_EXCHANGE, wire.INGRESS_EXCHANGE, "#")
        )
        assert code == 403


class TestPublishing:
    @pytest.mark.parametrize(
        ("exchange", "routing_key"),
        [
            ("", wire.inbox_queue(OTHER)),  # the default exchange: straight into an inbox
            ("", wire.urgent_inbox_queue(OTHER)),
            ("", wire.INGRESS_QUEUE),
            ("amq.direct", OTHER),
            ("amq.topic", "mission.cable"),
            ("amq.fanout", ""),
            ("amq.headers", ""),
        ],
    )
    def test_cannot_publish_to_builtin_exchanges(
        self, berlin: pika.BlockingConnection, exchange: str, routing_key: str
    ) -> None:
        """The default and amq.* exchanges, a way into any queue past the router: 403."""
        channel = confirming(berlin)
        assert refused(lambda: channel.basic_publish(exchange, routing_key, cable())) == 403


class TestTopology:
    @pytest.mark.parametrize(
        "queue",
        [
            wire.inbox_queue(CODE),
            wire.urgent_inbox_queue(CODE),
            wire.inbox_queue(OTHER),
            wire.INGRESS_QUEUE,
        ],
    )
    def test_cannot_delete_queues(self, berlin: pika.BlockingConnection, queue: str) -> None:
        """Deleting any queue, its own inbox included: 403."""
        assert refused(lambda: berlin.channel().queue_delete(queue)) == 403

    @pytest.mark.parametrize("exchange", [wire.INGRESS_EXCHANGE, wire.DELIVER_EXCHANGE])
    def test_cannot_delete_exchanges(self, berlin: pika.BlockingConnection, exchange: str) -> None:
        """Deleting the hub's exchanges: 403."""
        assert refused(lambda: berlin.channel().exchange_delete(exchange)) == 403

    def test_cannot_declare_a_server_named_queue(self, berlin: pika.BlockingConnection) -> None:
        """Even an exclusive, server-named queue (a private tap) cannot be declared: 403."""
        assert refused(lambda: berlin.channel().queue_declare("", exclusive=True)) == 403


class TestOutsideItsVhost:
    def test_cannot_open_another_vhost(self, hub_settings: Settings) -> None:
        """Its credentials do not open the default vhost '/'."""
        parts = urlsplit(participant_url(hub_settings, CODE))
        elsewhere = urlunsplit((parts.scheme, parts.netloc, "/%2F", "", ""))
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(pika.URLParameters(elsewhere))

    def test_cannot_use_the_management_api(self, hub_settings: Settings) -> None:
        """Its credentials are refused by the management API (no management tag): 401."""
        parts = urlsplit(participant_url(hub_settings, CODE))
        response = httpx.get(
            hub_settings.management_url.rstrip("/") + "/api/queues",
            auth=(hub_settings.user_for(CODE), parts.password or ""),
            timeout=10,
        )
        assert response.status_code == 401
