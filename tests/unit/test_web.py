"""The hub's web side without a broker: metrics, traffic, and the HTTP routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from liaison.core.decide import Decision, Outgoing
from liaison.ops import DeadLetterQueue, hub_queues
from liaison.settings import Settings
from liaison.web import DeadLetterCache, HubMetrics, MetricsObserver, QueuePoller, TrafficLog
from liaison.web.server import WebApp
from schemas import wire
from schemas.errors import ReasonCode

LETTER = "correspondence.letter"


def delivery(code: str) -> Outgoing:
    return Outgoing(wire.DELIVER_EXCHANGE, code, b"{}", {}, "m", LETTER)


def dead(reason: str) -> Outgoing:
    return Outgoing(wire.DEAD_EXCHANGE, LETTER, b"{}", {wire.H_REASON: reason}, "m", LETTER)


def decision(
    *,
    type_: str | None = LETTER,
    sender: str | None = "gs",
    to: tuple[str, ...] = ("gs-archives",),
    refused: tuple[str, ...] = (),
    reason: ReasonCode | None = None,
) -> Decision:
    return Decision(
        "m",
        type_,
        sender,
        tuple(delivery(code) for code in to),
        tuple(dead(r) for r in refused),
        (),
        routed=bool(to),
        reason=reason,
    )


def samples(metrics: HubMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: HubMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def observer() -> MetricsObserver:
    return MetricsObserver(
        HubMetrics(), types=[LETTER], participants=["gs", "gs-archives", "gs-legal"]
    )


class TestMetricsObserver:
    def test_routed_message_counts(self, observer: MetricsObserver) -> None:
        """A routed message counts as received, routed, one delivery per recipient, and a timing."""
        observer(decision(to=("gs-archives", "gs-legal")), 0.004)
        m = observer.metrics
        assert value(m, "liaison_messages_received_total", type=LETTER, sender="gs") == 1
        assert value(m, "liaison_messages_routed_total", type=LETTER, sender="gs") == 1
        assert value(m, "liaison_deliveries_total", recipient="gs-legal") == 1
        assert value(m, "liaison_routing_seconds_count") == 1
        assert value(m, "liaison_routing_seconds_bucket", le="0.005") == 1

    def test_refusals_count_by_reason(self, observer: MetricsObserver) -> None:
        """A refused message and a refused copy both count as rejections with their reason."""
        observer(decision(to=(), reason=ReasonCode.TYPE_NOT_ALLOWED), 0.01)
        observer(decision(refused=("recipient_clearance",)), 0.01)
        m = observer.metrics
        assert (
            value(
                m,
                "liaison_messages_rejected_total",
                type=LETTER,
                sender="gs",
                reason="type_not_allowed",
            )
            == 1
        )
        assert (
            value(
                m,
                "liaison_messages_rejected_total",
                type=LETTER,
                sender="gs",
                reason="recipient_clearance",
            )
            == 1
        )
        assert value(m, "liaison_messages_routed_total", type=LETTER, sender="gs") == 1

    def test_labels_are_bounded(self, observer: MetricsObserver) -> None:
        """Types, senders and reasons outside the registry and directory become 'unknown'."""
        observer(decision(type_="made.up", sender="atlantis", to=("nowhere",)), 0.01)
        observer(decision(type_=None, sender=None, to=(), reason=ReasonCode.NOT_JSON), 0.01)
        m = observer.metrics
        assert value(m, "liaison_messages_received_total", type="unknown", sender="unknown") == 2
        assert value(m, "liaison_deliveries_total", recipient="unknown") == 1
        assert (
            value(
                m,
                "liaison_messages_rejected_total",
                type="unknown",
                sender="unknown",
                reason="not_json",
            )
            == 1
        )

    def test_impersonated_sender_is_not_blamed(self, observer: MetricsObserver) -> None:
        """A sender_mismatch is counted under 'unknown', not under the name the spoof used."""
        observer(decision(sender="gs-legal", to=(), reason=ReasonCode.SENDER_MISMATCH), 0.01)
        m = observer.metrics
        assert value(m, "liaison_messages_received_total", type=LETTER, sender="gs-legal") == 0
        assert value(m, "liaison_messages_received_total", type=LETTER, sender="unknown") == 1

    def test_never_raises(self, observer: MetricsObserver) -> None:
        """A failure inside the observer is logged, never raised into the router's loop."""
        observer.traffic = None  # type: ignore[assignment]
        observer(decision(), 0.01)

    def test_depths_and_in_flight_gauges(self, observer: MetricsObserver) -> None:
        """The poller's depths fill the queue gauge and the audit lag; in-flight is read live."""
        m = observer.metrics
        m.set_depths({wire.AUDIT_QUEUE: 7, "inbox.gs": 2, "inbox.gs-legal": None})
        in_flight = [3]
        m.track_in_flight(lambda: in_flight[0])
        assert value(m, "liaison_audit_lag_messages") == 7
        assert value(m, "liaison_queue_depth", queue="inbox.gs") == 2
        assert value(m, "liaison_confirms_in_flight") == 3
        in_flight[0] = 0
        assert value(m, "liaison_confirms_in_flight") == 0

    def test_private_registry(self) -> None:
        """Two hubs in one process do not collide: nothing goes to the global registry."""
        HubMetrics()
        HubMetrics()


class TestTrafficLog:
    def test_series_covers_the_window_per_second(self) -> None:
        """The series has one point per second of the window, oldest first, zeros included."""
        clock = Clock()
        log = TrafficLog(participants=["gs", "gs-archives"], window_s=10, clock=clock)
        log.record(decision())
        clock.now += 2
        log.record(decision())
        log.record(decision(to=(), reason=ReasonCode.NOT_JSON))
        snap = log.snapshot()
        assert len(snap["series"]) == 10
        assert snap["series"][-1][1:] == [2, 1, 1]
        assert snap["series"][-3][1:] == [1, 1, 0]
        assert snap["total_5m"] == 3

    def test_old_seconds_leave_the_window(self) -> None:
        """Traffic older than the window is forgotten."""
        clock = Clock()
        log = TrafficLog(window_s=10, clock=clock)
        log.record(decision())
        clock.now += 30
        assert log.snapshot()["total_5m"] == 0

    def test_institutions_and_recent(self) -> None:
        """Senders and recipients are tallied; the newest message comes first."""
        log = TrafficLog(participants=["gs", "gs-archives"], clock=Clock())
        log.record(decision())
        log.record(decision(sender="gs-archives", to=("gs",)))
        log.record(decision(sender="gs-legal", to=(), reason=ReasonCode.SENDER_MISMATCH))
        snap = log.snapshot()
        tallies = {
            i["code"]: (i["sent"], i["delivered"], i["rejected"]) for i in snap["institutions"]
        }
        assert tallies == {"gs": (1, 1, 0), "gs-archives": (1, 1, 0), "unknown": (1, 0, 1)}
        assert snap["recent"][0]["outcome"] == "rejected: sender_mismatch"
        assert snap["recent"][-1]["recipients"] == ["gs-archives"]


@pytest.fixture
def app(tmp_path: Path) -> tuple[WebApp, dict[str, bool]]:
    settings = Settings(
        amqp_url="amqp://guest:guest@127.0.0.1:1/none",
        management_url="http://127.0.0.1:1",
        operator_token="s3cret",
        credentials_dir=tmp_path,
    )
    metrics = HubMetrics()
    poller = QueuePoller(settings, hub_queues(["gs"]), metrics)
    state = {"ready": False}
    web = WebApp(
        settings,
        metrics=metrics,
        traffic=TrafficLog(),
        poller=poller,
        dead_letters=DeadLetterCache(DeadLetterQueue(settings), lambda: None),
        ready=lambda: state["ready"],
    )
    return web, state


def call(app: WebApp, path: str, method: str = "GET", body: Any = None, **headers: str) -> Any:
    raw = b"" if body is None else json.dumps(body).encode()
    return app.handle(method, path, {k.lower(): v for k, v in headers.items()}, raw)


class TestRoutes:
    def test_health_and_readiness(self, app: tuple[WebApp, dict[str, bool]]) -> None:
        """/healthz answers 200 always; /readyz 503 until the router consumes, then 200."""
        web, state = app
        assert call(web, "/healthz").status == 200
        assert call(web, "/readyz").status == 503
        state["ready"] = True
        assert call(web, "/readyz").status == 200

    def test_metrics_and_dashboard(self, app: tuple[WebApp, dict[str, bool]]) -> None:
        """/metrics is Prometheus text; / is the dashboard, with a strict CSP; assets are served."""
        web, _ = app
        metrics = call(web, "/metrics")
        assert metrics.content_type.startswith("text/plain")
        assert b"liaison_audit_lag_messages" in metrics.body
        page = call(web, "/")
        assert page.status == 200 and b'<table id="queues">' in page.body
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert call(web, "/static/app.js").content_type.startswith("text/javascript")
        assert call(web, "/static/style.css").status == 200
        assert call(web, "/static/../server.py").status == 404

    def test_unknown_path_and_method(self, app: tuple[WebApp, dict[str, bool]]) -> None:
        """Unknown paths are 404, writes elsewhere than the retry endpoint 405."""
        web, _ = app
        assert call(web, "/nope").status == 404
        assert call(web, "/api/queues", "DELETE").status == 405

    def test_queues_report_the_poll_error(self, app: tuple[WebApp, dict[str, bool]]) -> None:
        """Before a successful poll /api/queues says so instead of showing zeros."""
        web, _ = app
        data = json.loads(call(web, "/api/queues").body)
        assert data["error"] == "not read yet" and data["queues"] == []
        assert data["router_ready"] is False

    def test_retry_needs_the_token(self, app: tuple[WebApp, dict[str, bool]]) -> None:
        """Without the bearer token, or with a wrong one, the retry is refused with 403."""
        web, _ = app
        body = {"message_ids": ["m"], "operator": "alice"}
        path = "/api/dead-letters/retry"
        assert call(web, path, "POST", body).status == 403
        assert call(web, path, "POST", body, Authorization="Bearer wrong").status == 403
        assert call(web, path, "POST", body, Authorization="s3cret").status == 403

    def test_retry_refused_when_no_token_is_configured(self, tmp_path: Path) -> None:
        """With no operator token configured the endpoint is closed, even to an empty token."""
        settings = Settings(operator_token=None, credentials_dir=tmp_path)
        metrics = HubMetrics()
        web = WebApp(
            settings,
            metrics=metrics,
            traffic=TrafficLog(),
            poller=QueuePoller(settings, (), metrics),
            dead_letters=DeadLetterCache(DeadLetterQueue(settings), lambda: None),
            ready=lambda: True,
        )
        body = {"message_ids": ["m"], "operator": "alice"}
        response = call(web, "/api/dead-letters/retry", "POST", body, Authorization="Bearer ")
        assert response.status == 403

    @pytest.mark.parametrize(
        "body",
        [
            {"operator": "alice"},
            {"message_ids": [], "operator": "alice"},
            {"message_ids": [1], "operator": "alice"},
            {"message_ids": ["m"]},
            {"message_ids": ["m"], "operator": "  "},
            ["m"],
        ],
    )
    def test_retry_validates_its_body(self, app: tuple[WebApp, dict[str, bool]], body: Any) -> None:
        """With the token, a malformed request is a 400 that touches nothing."""
        web, _ = app
        path = "/api/dead-letters/retry"
        assert call(web, path, "POST", body, Authorization="Bearer s3cret").status == 400

    def test_broker_errors_are_502(self, app: tuple[WebApp, dict[str, bool]]) -> None:
        """When the broker cannot be reached the dead-letter view says so with a 502."""
        web, _ = app
        response = call(web, "/api/dead-letters")
        assert response.status == 502
        assert "broker" in json.loads(response.body)["error"]
