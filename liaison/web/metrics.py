"""The hub's Prometheus metrics, on a private registry, fed by the router's observer.

The observer runs once per message on the router's I/O loop, which pipelines
tens of thousands of messages a second: there it only bumps plain integers in
dicts (no prometheus_client lock, no label lookup), and a custom collector turns
them into counters and a histogram when Prometheus scrapes. The router's loop is
the only writer; a scrape copies each dict (``dict.copy`` is atomic under the
GIL) before reading it.

Label values are bounded: types come from the schema registry, senders and
recipients from the directory, reasons from ``ReasonCode``; anything else is
counted as ``unknown``, so a flood of made-up values cannot grow the series.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator

import structlog
from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from liaison.core.decide import Decision, RoutingContext
from liaison.web.traffic import TrafficLog, proven_sender
from schemas import wire
from schemas.errors import ReasonCode

log = structlog.get_logger("liaison.web")

UNKNOWN = "unknown"
#: Arrival to ack: milliseconds when the broker is idle, seconds under load.
ROUTING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

__all__ = ["PROMETHEUS_CONTENT_TYPE", "HubMetrics", "MetricsObserver"]


class Tallies:
    """Raw counts written by the router's loop only; exported by :class:`_TallyCollector`."""

    def __init__(self) -> None:
        self.received: dict[tuple[str, str], int] = {}
        self.routed: dict[tuple[str, str], int] = {}
        self.rejected: dict[tuple[str, str, str], int] = {}
        self.deliveries: dict[str, int] = {}
        #: Per-bucket (not cumulative) counts, one more than the bounds for +Inf.
        self.buckets = [0] * (len(ROUTING_BUCKETS) + 1)
        self.seconds_sum = 0.0


class _TallyCollector(Collector):
    """Exports :class:`Tallies` as Prometheus counters and a histogram at scrape time."""

    def __init__(self, tallies: Tallies) -> None:
        self._t = tallies

    def collect(self) -> Iterator[Metric]:
        t = self._t
        by_message = ["type", "sender"]
        families = (
            (
                "liaison_messages_received",
                "Ingress messages the router decided on and acked.",
                by_message,
                t.received.copy(),
            ),
            (
                "liaison_messages_routed",
                "Messages routed to at least one inbox.",
                by_message,
                t.routed.copy(),
            ),
            (
                "liaison_messages_rejected",
                "Refusals: whole messages, or one recipient's copy (reason recipient_clearance).",
                [*by_message, "reason"],
                t.rejected.copy(),
            ),
        )
        for name, documentation, labels, counts in families:
            family = CounterMetricFamily(name, documentation, labels=labels)
            for key, count in sorted(counts.items()):
                family.add_metric(list(key), count)
            yield family
        deliveries = CounterMetricFamily(
            "liaison_deliveries",
            "Copies published to liaison.deliver, by recipient.",
            labels=["recipient"],
        )
        for recipient, count in sorted(t.deliveries.copy().items()):
            deliveries.add_metric([recipient], count)
        yield deliveries
        per_bucket, total = list(t.buckets), t.seconds_sum
        cumulative, running = [], 0
        for bound, count in zip((*ROUTING_BUCKETS, float("inf")), per_bucket, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        yield HistogramMetricFamily(
            "liaison_routing_seconds",
            "From arrival on hub.ingress to its ack (all confirms in).",
            buckets=cumulative,
            sum_value=total,
        )


class HubMetrics:
    """Every series the hub exports, registered on its own ``CollectorRegistry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tallies = Tallies()
        self.registry.register(_TallyCollector(self.tallies))
        self.confirms_in_flight = Gauge(
            "liaison_confirms_in_flight",
            "Ingress messages whose publishes await the broker's confirms.",
            registry=self.registry,
        )
        self.audit_lag = Gauge(
            "liaison_audit_lag_messages",
            "Audit events waiting in hub.audit for the writer.",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "liaison_queue_depth",
            "Ready messages per hub queue.",
            ["queue"],
            registry=self.registry,
        )

        self.acks_pending = Gauge(
            "liaison_acks_pending",
            "Messages waiting for at least one acknowledgement (procedures service).",
            registry=self.registry,
        )
        self.acks_overdue = Gauge(
            "liaison_acks_overdue",
            "Of those, the ones past their deadline.",
            registry=self.registry,
        )
        self.questions_open = Gauge(
            "liaison_questions_open",
            "Parliamentary questions not yet answered (procedures service).",
            registry=self.registry,
        )
        self.questions_overdue = Gauge(
            "liaison_questions_overdue",
            "Of those, the ones past their answer deadline.",
            registry=self.registry,
        )
        self.treaty_files = Gauge(
            "liaison_treaty_files",
            "Treaty files by the step they are at and who they wait on.",
            ["step", "waiting_on"],
            registry=self.registry,
        )

    def track_in_flight(self, read: Callable[[], float]) -> None:
        """Read the confirms-in-flight gauge from ``read`` at every scrape."""
        self.confirms_in_flight.set_function(read)

    def set_depths(self, depths: dict[str, int | None]) -> None:
        """Queue depths from the poller; the audit lag is the audit queue's."""
        for queue, depth in depths.items():
            if depth is not None:
                self.queue_depth.labels(queue=queue).set(depth)
        audit = depths.get(wire.AUDIT_QUEUE)
        if audit is not None:
            self.audit_lag.set(audit)

    def render(self) -> bytes:
        """The Prometheus text exposition of every series."""
        return generate_latest(self.registry)


class MetricsObserver:
    """The router's observer: counts each acked message and records it for the dashboard.

    It runs on the router's I/O loop, so it must be quick and must never raise.
    """

    def __init__(
        self,
        metrics: HubMetrics,
        *,
        types: Iterable[str],
        participants: Iterable[str],
        traffic: TrafficLog | None = None,
    ) -> None:
        codes = tuple(participants)
        #: Participant codes in directory order (the dashboard lists inboxes in this order).
        self.participants = codes
        self.metrics = metrics
        self.traffic = traffic if traffic is not None else TrafficLog(participants=codes)
        self._types = frozenset(types)
        self._participants = frozenset(codes)
        self._reasons = frozenset(code.value for code in ReasonCode)

    @classmethod
    def for_context(cls, context: RoutingContext) -> MetricsObserver:
        """An observer whose labels are bounded by the context's registry and directory."""
        return cls(
            HubMetrics(), types=context.registry.types(), participants=context.directory.codes()
        )

    def __call__(self, decision: Decision, seconds: float) -> None:
        try:
            self._count(decision, seconds)
            self.traffic.record(decision)
        except Exception:  # a metrics bug must never stop the router
            log.exception("metrics.observer_failed", message_id=decision.message_id)

    def _count(self, decision: Decision, seconds: float) -> None:
        t = self.metrics.tallies
        type_ = decision.type if decision.type in self._types else UNKNOWN
        claimed = proven_sender(decision)
        sender = claimed if claimed in self._participants else UNKNOWN
        key = (type_, sender)
        t.received[key] = t.received.get(key, 0) + 1
        t.buckets[bisect_left(ROUTING_BUCKETS, seconds)] += 1
        t.seconds_sum += seconds
        if decision.reason is not None:
            self._reject(key, decision.reason.value)
            return
        for dead in decision.dead_letters:  # one recipient's copy refused, the rest routed
            self._reject(key, dead.headers.get(wire.H_REASON))
        if decision.deliveries:
            t.routed[key] = t.routed.get(key, 0) + 1
        for out in decision.deliveries:
            code = wire.delivery_recipient(out.routing_key)  # either precedence band
            recipient = code if code in self._participants else UNKNOWN
            t.deliveries[recipient] = t.deliveries.get(recipient, 0) + 1

    def _reject(self, key: tuple[str, str], value: object) -> None:
        t = self.metrics.tallies
        text = str(value) if value is not None else ""
        full = (*key, text if text in self._reasons else UNKNOWN)
        t.rejected[full] = t.rejected.get(full, 0) + 1
