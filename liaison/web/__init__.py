"""The hub's web side: Prometheus metrics, health checks, the operator dashboard.

- ``metrics``: the collectors and the router's observer that feeds them;
- ``traffic``: recent traffic for the dashboard;
- ``poller``: queue depths read in the background;
- ``server``: the HTTP server and its routes; ``static/`` the dashboard itself.

``start_web`` is the one place that wires them, called by ``liaison serve``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from liaison.ops import DeadLetterQueue, hub_queues
from liaison.settings import Settings
from liaison.web.metrics import HubMetrics, MetricsObserver
from liaison.web.poller import QueuePoller
from liaison.web.public import PublicFeed
from liaison.web.server import DeadLetterCache, WebApp, WebServer, dead_depth
from liaison.web.traffic import TrafficLog

if TYPE_CHECKING:
    from liaison.adapters.pika_router import Router


def start_web(settings: Settings, router: Router, observer: MetricsObserver) -> WebServer | None:
    """Serve metrics, health and the dashboard for ``router``; ``None`` when ``http_port`` is 0."""
    if settings.http_port == 0:
        return None
    metrics = observer.metrics
    metrics.track_in_flight(lambda: router.stats.in_flight)
    queues = hub_queues(observer.participants, settings.retry_delays_ms)
    poller = QueuePoller(settings, queues, metrics)
    app = WebApp(
        settings,
        metrics=metrics,
        traffic=observer.traffic,
        poller=poller,
        dead_letters=DeadLetterCache(DeadLetterQueue(settings), dead_depth(poller)),
        ready=router.consuming.is_set,
        public_feed=PublicFeed(settings),
    )
    server = WebServer(app, poller, host=settings.http_host, port=settings.http_port)
    server.start()
    return server


__all__ = [
    "DeadLetterCache",
    "HubMetrics",
    "MetricsObserver",
    "QueuePoller",
    "TrafficLog",
    "WebApp",
    "WebServer",
    "start_web",
]
