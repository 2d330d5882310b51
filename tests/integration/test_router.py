"""The router as a real process on the real broker: delivery, refusal, stop, reconnection."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from urllib.parse import quote

import pika

from liaison.adapters.management import Management
from liaison.credentials import participant_url
from liaison.settings import Settings
from schemas import wire
from schemas.errors import ReasonCode
from schemas.examples import example_envelope
from schemas.types import Precedence
from tests.integration.harness import (
    blocking,
    depth,
    preload,
    publish_as,
    running,
    settle_depths,
    take,
    wait_for,
)

#: Messages waiting in ingress before the router starts: about a second of routing here.
PRELOADED = 8_000


def letter(sender: str = "gs", *recipients: str):  # type: ignore[no-untyped-def]
    return example_envelope(
        "correspondence.letter", 1, sender=sender, recipients=recipients or ("gs-archives",)
    )


class TestRouting:
    def test_valid_and_invalid_messages(self, hub_settings: Settings, tmp_path: Path) -> None:
        """Valid messages reach their inboxes untouched; invalid ones land in dead letters with reasons; the router keeps going."""
        s = hub_settings
        with running(s, "serve", log_path=str(tmp_path / "router.log")) as router:
            ok = letter("gs", "gs-archives")
            publish_as(s, "gs", ok)
            publish_as(s, "gs", b"{not json", routing_key="correspondence.letter")
            spoof = letter("gs-legal", "gs-archives")
            publish_as(s, "gs", spoof)  # gs publishing a letter claiming to be gs-legal
            after = letter("gs", "gs-archives")
            publish_as(s, "gs", after)
            inbox = take(s, wire.inbox_queue("gs-archives"), 2)
            assert [body for _p, body in inbox] == [ok.encode(), after.encode()]
            props = inbox[0][0]
            assert props.message_id == str(ok.message_id)
            assert props.type == "correspondence.letter"
            dead = take(s, wire.DEAD_QUEUE, 2)
            reasons = sorted(p.headers[wire.H_REASON] for p, _b in dead)
            assert reasons == sorted([ReasonCode.NOT_JSON.value, ReasonCode.SENDER_MISMATCH.value])
            spoofed = next(p for p, _b in dead if p.headers[wire.H_REASON] == "sender_mismatch")
            assert "gs-legal" in spoofed.headers[wire.H_REASON_TEXT]
            # Audit events: one batch or more, with every outcome.
            wait_for(lambda: depth(s, wire.AUDIT_QUEUE) >= 1, what="audit events")
            assert router.popen.poll() is None
            assert router.stop() == 0
        audit = take(s, wire.AUDIT_QUEUE, depth(s, wire.AUDIT_QUEUE))
        events = [e for _p, body in audit for e in json.loads(body)["events"]]
        kinds = {(e["message_id"], e["event"]) for e in events}
        assert (str(ok.message_id), "delivered") in kinds
        assert (str(spoof.message_id), "rejected") in kinds
        assert sum(1 for e in events if e["event"] == "received") == 4

    def test_a_message_id_that_is_not_utf8_is_dead_lettered_and_routing_goes_on(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """An AMQP message_id of bytes that are not UTF-8 once crashed the router's
        frame writer on every redelivery, stopping all routing: now a dead letter."""
        s = hub_settings
        log = tmp_path / "router.log"
        with running(s, "serve", log_path=str(log)) as router:
            connection = blocking(participant_url(s, "gs"))
            try:
                channel = connection.channel()
                channel.confirm_delivery()
                channel.basic_publish(
                    wire.INGRESS_EXCHANGE,
                    "correspondence.letter",
                    b"{not json",
                    pika.BasicProperties(
                        delivery_mode=2, user_id=s.user_for("gs"), message_id=b"\xff\xfe-evil"
                    ),
                    mandatory=True,
                )
            finally:
                connection.close()
            after = letter("gs", "gs-archives")
            publish_as(s, "gs", after)
            ((_p, body),) = take(s, wire.inbox_queue("gs-archives"), 1)
            assert body == after.encode()
            ((props, _b),) = take(s, wire.DEAD_QUEUE, 1)
            assert props.headers[wire.H_REASON] == ReasonCode.NOT_JSON.value
            assert props.message_id == "\\xff\\xfe-evil"
            assert router.popen.poll() is None
            assert router.stop() == 0
        assert "connection_lost" not in log.read_text()

    def test_rule_copies_and_logs_are_bound(self, hub_settings: Settings, tmp_path: Path) -> None:
        """A FLASH cable reaches its recipient and the duty officer; rejections are logged as JSON with the message id."""
        s = hub_settings
        log = tmp_path / "router.log"
        with running(s, "serve", log_path=str(log)) as router:
            cable = example_envelope(
                "mission.cable",
                2,
                sender="emb-berlin",
                recipients=("gs",),
                precedence=Precedence.FLASH,
            )
            publish_as(s, "emb-berlin", cable)
            # FLASH: both copies travel in the urgent band, none in the routine one.
            take(s, wire.urgent_inbox_queue("gs"), 1)
            take(s, wire.urgent_inbox_queue("duty-officer"), 1)
            assert depth(s, wire.inbox_queue("gs")) == 0
            bad = letter("gs", "atlantis")
            publish_as(s, "gs", bad)
            take(s, wire.DEAD_QUEUE, 1)
            router.stop()
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        rejected = [line for line in lines if line.get("event") == "router.rejected"]
        assert rejected and rejected[0]["message_id"] == str(bad.message_id)
        assert rejected[0]["type"] == "correspondence.letter"

    def test_unroutable_delivery_is_dead_lettered(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """When a recipient's inbox is missing on the broker the copy goes to dead letters as unroutable."""
        s = hub_settings
        connection = pika.BlockingConnection(pika.URLParameters(s.amqp_url))
        connection.channel().queue_delete(wire.inbox_queue("gs-archives"))
        connection.close()
        with running(s, "serve", log_path=str(tmp_path / "router.log")):
            publish_as(s, "gs", letter("gs", "gs-archives"))
            ((props, _body),) = take(s, wire.DEAD_QUEUE, 1)
            assert props.headers[wire.H_REASON] == ReasonCode.UNROUTABLE.value
            assert props.headers[wire.H_RECIPIENT] == "gs-archives"


class TestLifecycle:
    def test_sigterm_drains_in_flight_and_exits_zero(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """SIGTERM mid-stream, thousands waiting: exit 0; every message delivered once or still in ingress, none lost or doubled."""
        s = hub_settings
        inbox = wire.inbox_queue("gs-archives")
        sent = preload(s, "gs", [letter("gs", "gs-archives") for _ in range(PRELOADED)])
        with running(s, "serve", log_path=str(tmp_path / "router.log")) as router:
            # Signal as soon as routing is under way: a prefetch window of messages is
            # in flight (decided, publishing, awaiting confirms) and thousands still wait.
            wait_for(lambda: depth(s, inbox) > 0, what="the first deliveries")
            assert router.stop(signal.SIGTERM) == 0, router.log()[-3000:]
            log_text = router.log()
        final = settle_depths(s, [wire.INGRESS_QUEUE, inbox, wire.DEAD_QUEUE])
        assert final[wire.INGRESS_QUEUE] > 0, "the router finished everything before the signal"
        assert final[inbox] > 0
        assert final[wire.DEAD_QUEUE] == 0
        assert final[inbox] + final[wire.INGRESS_QUEUE] == len(sent)
        delivered = [props.message_id for props, _ in take(s, inbox, final[inbox])]
        waiting = [
            props.message_id for props, _ in take(s, wire.INGRESS_QUEUE, final[wire.INGRESS_QUEUE])
        ]
        assert len(set(delivered)) == len(delivered), "a message was delivered twice"
        assert not set(delivered) & set(waiting), "a delivered message was also left in ingress"
        assert set(delivered) | set(waiting) == sent
        assert "router.stop_with_in_flight" not in log_text

    def test_reconnects_after_connections_are_closed(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """After the broker closes its connection the router comes back and loses nothing."""
        s = hub_settings
        with running(s, "serve", log_path=str(tmp_path / "router.log")) as router:
            publish_as(s, "gs", letter("gs", "gs-archives"))
            take(s, wire.inbox_queue("gs-archives"), 1)
            with Management(s) as api:

                def router_connections() -> list[str]:
                    listed = api.request("GET", f"/vhosts/{s.vhost}/connections") or []
                    return [
                        c["name"]
                        for c in listed
                        if c.get("client_properties", {}).get("connection_name") == "liaison-router"
                    ]

                # The management API lists a connection only after its first stats tick.
                wait_for(lambda: bool(router_connections()), what="the router's connection")
                names = router_connections()
                for name in names:
                    api.request("DELETE", f"/connections/{quote(name, safe='')}")
            assert len(names) == 1
            time.sleep(0.5)
            message = letter("gs", "gs-archives")
            publish_as(s, "gs", message)
            ((_p, body),) = take(s, wire.inbox_queue("gs-archives"), 1, timeout=30)
            assert body == message.encode()
            assert router.popen.poll() is None
            assert "router.reconnecting" in router.log()


def test_ingress_queue_deleted_and_restored(hub_settings: Settings, tmp_path: Path) -> None:
    """When hub.ingress is deleted the router notices and comes back once the topology is re-applied."""
    from liaison.directory import load_directory
    from liaison.topology import apply

    s = hub_settings
    with running(s, "serve", log_path=str(tmp_path / "router.log")) as router:
        connection = pika.BlockingConnection(pika.URLParameters(s.amqp_url))
        connection.channel().queue_delete(wire.INGRESS_QUEUE)
        connection.close()
        wait_for(lambda: "router.consumer_cancelled" in router.log(), what="the cancel")
        apply(s, load_directory(None))
        message = letter("gs", "gs-archives")
        publish_as(s, "gs", message)
        ((_p, body),) = take(s, wire.inbox_queue("gs-archives"), 1, timeout=30)
        assert body == message.encode()
        assert router.popen.poll() is None
