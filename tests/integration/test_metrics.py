"""``liaison serve``'s web server on the real broker: /metrics, health, the JSON API, retry."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from liaison.adapters.management import Management, q
from liaison.directory import load_directory
from liaison.settings import Settings
from liaison.topology import apply
from schemas import wire
from schemas.examples import example_envelope
from tests.integration.console import Hub, delete_queue, serving
from tests.integration.harness import depth, publish_as, wait_for

LETTER = "correspondence.letter"
SERIES = (
    "liaison_messages_received",
    "liaison_messages_routed",
    "liaison_messages_rejected",
    "liaison_deliveries",
    "liaison_routing_seconds",
    "liaison_confirms_in_flight",
    "liaison_audit_lag_messages",
    "liaison_queue_depth",
)


def scrape(hub: Hub) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = hub.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(hub: Hub, name: str, **labels: str) -> float:
    return scrape(hub).get((name, frozenset(labels.items())), 0.0)


def letter(sender: str = "gs", recipient: str = "gs-archives"):  # type: ignore[no-untyped-def]
    return example_envelope(LETTER, 1, sender=sender, recipients=(recipient,))


class TestMetrics:
    def test_series_change_with_traffic(self, hub_settings: Settings, tmp_path: Path) -> None:
        """Received, routed, rejected (by reason), deliveries and timings follow the traffic."""
        s = hub_settings
        with serving(s, tmp_path) as hub:
            names = {
                family.name for family in text_string_to_metric_families(hub.get("/metrics").text)
            }
            assert set(SERIES) <= names
            assert value(hub, "liaison_messages_received_total", type=LETTER, sender="gs") == 0

            for _ in range(2):
                publish_as(s, "gs", letter())
            publish_as(s, "gs", b"{not json", routing_key=LETTER)
            publish_as(s, "gs", letter(recipient="atlantis"))

            wait_for(lambda: value(hub, "liaison_routing_seconds_count") == 4, what="4 timings")
            assert value(hub, "liaison_messages_received_total", type=LETTER, sender="gs") == 3
            assert value(hub, "liaison_messages_routed_total", type=LETTER, sender="gs") == 2
            assert value(hub, "liaison_deliveries_total", recipient="gs-archives") == 2
            assert (
                value(
                    hub,
                    "liaison_messages_rejected_total",
                    type=LETTER,
                    sender="gs",
                    reason="unknown_recipient",
                )
                == 1
            )
            assert (
                value(
                    hub,
                    "liaison_messages_rejected_total",
                    type="unknown",
                    sender="unknown",
                    reason="not_json",
                )
                == 1
            )
            wait_for(
                lambda: value(hub, "liaison_queue_depth", queue="inbox.gs-archives") == 2,
                what="the inbox depth gauge",
            )
            wait_for(
                lambda: value(hub, "liaison_audit_lag_messages") == depth(s, wire.AUDIT_QUEUE) > 0,
                what="the audit lag gauge",
            )
            assert value(hub, "liaison_queue_depth", queue="hub.dead") == 2
            assert value(hub, "liaison_confirms_in_flight") == 0

            traffic = hub.get("/api/traffic").json()
            tallies = {i["code"]: i for i in traffic["institutions"]}
            assert tallies["gs"]["sent"] == 3 and tallies["gs-archives"]["delivered"] == 2
            assert sum(point[1] for point in traffic["series"]) == 4
            queues = hub.get("/api/queues").json()
            assert queues["router_ready"] is True and queues["error"] is None
            assert {q["name"]: q["ready"] for q in queues["queues"]}["inbox.gs-archives"] == 2
            dead = hub.get("/api/dead-letters").json()
            assert dead["total"] == 2
            assert {d["reason"] for d in dead["dead_letters"]} == {"not_json", "unknown_recipient"}
            assert depth(s, wire.DEAD_QUEUE) == 2  # reading took nothing away


def close_router_connection(settings: Settings) -> None:
    """Close the router's connection from the broker's side (the management API)."""
    with Management(settings) as api:

        def router_connections() -> list[str]:
            listed = api.request("GET", f"/vhosts/{q(settings.vhost)}/connections") or []
            return [
                c["name"]
                for c in listed
                if c.get("client_properties", {}).get("connection_name") == "liaison-router"
            ]

        # The management API lists a connection only after its first statistics tick.
        wait_for(lambda: bool(router_connections()), what="the router's connection")
        for name in router_connections():
            api.request("DELETE", f"/connections/{q(name)}")


class TestHealth:
    def test_ready_only_while_consuming(self, hub_settings: Settings, tmp_path: Path) -> None:
        """/healthz is 200 throughout; /readyz is 503 while the router cannot consume, 200 again after."""
        s = hub_settings
        with serving(s, tmp_path) as hub:
            assert hub.get("/healthz").status_code == 200
            assert hub.get("/readyz").status_code == 200
            # Deleting its queue cancels the router's consumer; its reconnections then
            # fail until the topology is back.
            delete_queue(s, wire.INGRESS_QUEUE)
            wait_for(lambda: hub.get("/readyz").status_code == 503, what="/readyz 503")
            assert hub.get("/healthz").status_code == 200
            apply(s, load_directory(None))
            wait_for(lambda: hub.get("/readyz").status_code == 200, what="/readyz 200 again")


class TestRetryEndpoint:
    def test_retry_needs_the_token_and_uses_the_dlq_path(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """Without the token: 403. With it: the dead letter goes through the router to its inbox."""
        s = hub_settings
        delete_queue(s, wire.inbox_queue("gs-archives"))
        message = letter()
        with serving(s, tmp_path, LIAISON_OPERATOR_TOKEN="s3cret") as hub:
            publish_as(s, "gs", message)
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 1, what="the unroutable letter")
            apply(s, load_directory(None))
            body = {"message_ids": [str(message.message_id)], "operator": "dora"}
            url = hub.url + "/api/dead-letters/retry"
            assert httpx.post(url, json=body).status_code == 403
            wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 403
            done = httpx.post(
                url, json=body, headers={"Authorization": "Bearer s3cret"}, timeout=30
            )
            assert done.status_code == 200, done.text
            assert done.json()["retried"] == [str(message.message_id)]
            assert done.json()["not_found"] == []
            wait_for(lambda: depth(s, wire.inbox_queue("gs-archives")) == 1, what="delivery")
            assert depth(s, wire.DEAD_QUEUE) == 0
