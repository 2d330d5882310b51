"""The hub's queues as values: figures, health, thresholds and the table operators read.

Pure: rows are built from what the management API or AMQP reported, thresholds
are checked and the table is rendered here; ``_collect`` does the I/O. The same
values feed ``liaison status``, ``liaison watch`` and the dashboard's
``/api/queues``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from schemas import wire

QueueKind = Literal["ingress", "inbox", "dead", "audit", "retry"]
#: Where the figures came from; ``amqp+management`` is the hub's own poller (exact
#: depths from AMQP, rates and unacked counts from the management API).
Source = Literal["management", "amqp", "amqp+management"]
BreachKind = Literal[
    "dead_letters",
    "stale_inbox",
    "router_down",
    "missing_queue",
    "acks_overdue",
    "questions_overdue",
]


@dataclass(frozen=True)
class HubQueue:
    """One queue the hub owns, and what it is for."""

    name: str
    kind: QueueKind


def hub_queues(
    participant_codes: Iterable[str], delays: Iterable[str] = tuple(wire.RETRY_DELAYS_MS)
) -> tuple[HubQueue, ...]:
    """Every hub queue in reading order: ingress, inboxes (both bands), dead letters, audit,
    retries.

    ``delays`` are the names of the retry delays the topology planned
    (``settings.retry_delays_ms``), one ``hub.retry.<name>`` queue each; last comes
    ``hub.retry.due``, which the retry relay consumes.
    """
    return (
        HubQueue(wire.INGRESS_QUEUE, "ingress"),
        # Each participant's two precedence bands: routine, then urgent.
        *(
            HubQueue(queue, "inbox")
            for code in participant_codes
            for queue in (wire.inbox_queue(code), wire.urgent_inbox_queue(code))
        ),
        HubQueue(wire.DEAD_QUEUE, "dead"),
        HubQueue(wire.AUDIT_QUEUE, "audit"),
        *(HubQueue(wire.retry_queue(delay), "retry") for delay in delays),
        HubQueue(wire.RETRY_DUE_QUEUE, "retry"),
    )


@dataclass(frozen=True)
class QueueRow:
    """The figures of one queue; ``None`` where the source cannot know them."""

    name: str
    kind: QueueKind
    exists: bool = True
    ready: int | None = None
    unacked: int | None = None
    consumers: int | None = None
    publish_rate: float | None = None
    deliver_rate: float | None = None
    #: Age of the head message, from its ``timestamp`` property; RabbitMQ reports it
    #: for classic queues only (not for quorum queues, see rabbitmq-server#6813).
    oldest_age_s: float | None = None

    @property
    def messages(self) -> int | None:
        """Ready plus unacknowledged, as far as known."""
        if self.ready is None:
            return None
        return self.ready + (self.unacked or 0)


@dataclass(frozen=True)
class Health:
    """Whether a hub process consumes its queue, and how far behind it is."""

    #: ``None`` when the source does not know yet (a queue with no statistics so far).
    alive: bool | None
    consumers: int | None
    lag: int | None


@dataclass(frozen=True)
class Breach:
    """A threshold crossed: ``liaison status`` exits 2 when there is at least one."""

    kind: BreachKind
    queue: str
    message: str


@dataclass(frozen=True)
class HubStatus:
    """Every hub queue at one moment, from one source."""

    source: Source
    vhost: str
    at: datetime
    rows: tuple[QueueRow, ...]
    #: Why the source is not the one asked for (the management API did not answer).
    note: str | None = None
    #: Acknowledgements past their deadline, one line each, from the procedures service's
    #: database (``None``: no procedures database here).
    acks_overdue: tuple[str, ...] | None = None
    acks_pending: int | None = None
    #: Parliamentary questions past their answer deadline, one line each (same source).
    questions_overdue: tuple[str, ...] | None = None
    questions_open: int | None = None

    def row(self, name: str) -> QueueRow | None:
        """The row of queue ``name``, if it is a hub queue."""
        return next((row for row in self.rows if row.name == name), None)

    @property
    def router(self) -> Health:
        """The router is alive when something consumes ``hub.ingress``; lag is its depth."""
        return _health(self.row(wire.INGRESS_QUEUE))

    @property
    def retry_relay(self) -> Health:
        """The retry relay (in ``liaison serve``) is alive when it consumes ``hub.retry.due``."""
        return _health(self.row(wire.RETRY_DUE_QUEUE))

    @property
    def audit_writer(self) -> Health:
        """The audit writer is alive when something consumes ``hub.audit``."""
        return _health(self.row(wire.AUDIT_QUEUE))


def _health(row: QueueRow | None) -> Health:
    if row is None or not row.exists:
        return Health(alive=False, consumers=None, lag=None)
    alive = None if row.consumers is None else row.consumers > 0
    return Health(alive=alive, consumers=row.consumers, lag=row.ready)


def rows_from_management(
    queues: Sequence[HubQueue], listed: Iterable[Mapping[str, Any]], *, now: float
) -> tuple[QueueRow, ...]:
    """Rows from ``GET /api/queues/<vhost>``; ``now`` is the epoch time for message ages."""
    by_name = {str(item.get("name")): item for item in listed}
    rows = []
    for queue in queues:
        item = by_name.get(queue.name)
        if item is None:
            rows.append(QueueRow(queue.name, queue.kind, exists=False))
            continue
        stats = item.get("message_stats") or {}
        head = item.get("head_message_timestamp")
        rows.append(
            QueueRow(
                queue.name,
                queue.kind,
                ready=_int(item.get("messages_ready")),
                unacked=_int(item.get("messages_unacknowledged")),
                consumers=_int(item.get("consumers")),
                publish_rate=_rate(stats, "publish_details"),
                deliver_rate=_rate(stats, "deliver_get_details"),
                oldest_age_s=max(0.0, now - float(head)) if isinstance(head, int | float) else None,
            )
        )
    return tuple(rows)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _rate(stats: Mapping[str, Any], key: str) -> float | None:
    details = stats.get(key)
    if not isinstance(details, Mapping):
        return None
    rate = details.get("rate")
    return float(rate) if isinstance(rate, int | float) else None


def merge_rows(
    exact: Sequence[QueueRow], detailed: Sequence[QueueRow] | None
) -> tuple[QueueRow, ...]:
    """Exact AMQP depths and consumers, completed with the management API's other figures."""
    if detailed is None:
        return tuple(exact)
    by_name = {row.name: row for row in detailed}
    merged = []
    for row in exact:
        extra = by_name.get(row.name)
        if extra is None or not row.exists:
            merged.append(row)
            continue
        merged.append(
            replace(
                row,
                unacked=extra.unacked,
                publish_rate=extra.publish_rate,
                deliver_rate=extra.deliver_rate,
                oldest_age_s=extra.oldest_age_s,
            )
        )
    return tuple(merged)


def fill_gaps(rows: Sequence[QueueRow], exact: Sequence[QueueRow]) -> tuple[QueueRow, ...]:
    """Management rows whose depth or consumers are unknown yet, completed from AMQP.

    The management API reports a new queue's figures only after its first
    statistics tick (up to 5 s); meanwhile a passive declare knows them.
    """
    by_name = {row.name: row for row in exact}
    filled = []
    for row in rows:
        known = by_name.get(row.name)
        if row.exists and known is not None and (row.ready is None or row.consumers is None):
            filled.append(replace(row, ready=known.ready, consumers=known.consumers))
        else:
            filled.append(row)
    return tuple(filled)


def has_gaps(rows: Iterable[QueueRow]) -> bool:
    """Whether an existing queue's depth or consumers are unknown."""
    return any(row.exists and (row.ready is None or row.consumers is None) for row in rows)


def evaluate(status: HubStatus, *, max_age_s: float) -> list[Breach]:
    """The thresholds crossed: dead letters, stale inboxes, no router, missing queues."""
    breaches: list[Breach] = []
    for row in status.rows:
        if not row.exists:
            breaches.append(Breach("missing_queue", row.name, f"{row.name} does not exist"))
            continue
        if row.kind == "dead" and row.messages:
            breaches.append(
                Breach("dead_letters", row.name, f"{row.messages} dead letter(s) in {row.name}")
            )
        age = row.oldest_age_s
        if row.kind == "inbox" and row.ready and age is not None and age > max_age_s:
            breaches.append(
                Breach(
                    "stale_inbox",
                    row.name,
                    f"oldest message in {row.name} is {format_age(age)} old "
                    f"(limit {format_age(max_age_s)})",
                )
            )
    if status.router.alive is False:
        breaches.append(
            Breach("router_down", wire.INGRESS_QUEUE, f"no router consumes {wire.INGRESS_QUEUE}")
        )
    breaches.extend(
        Breach("acks_overdue", "procedures", f"acknowledgement overdue: {line}")
        for line in status.acks_overdue or ()
    )
    breaches.extend(
        Breach("questions_overdue", "procedures", f"parliamentary question overdue: {line}")
        for line in status.questions_overdue or ()
    )
    return breaches


def warnings(status: HubStatus) -> list[str]:
    """Worth knowing but not a breach: no audit writer or no retry relay (messages wait)."""
    found = []
    writer = status.audit_writer
    if writer.alive is False and status.row(wire.AUDIT_QUEUE) is not None:
        found.append(f"no audit writer consumes {wire.AUDIT_QUEUE} ({writer.lag or 0} waiting)")
    relay = status.retry_relay
    if relay.alive is False and status.row(wire.RETRY_DUE_QUEUE) is not None:
        found.append(f"no retry relay consumes {wire.RETRY_DUE_QUEUE} ({relay.lag or 0} waiting)")
    if status.note:
        found.append(status.note)
    return found


def status_json(status: HubStatus, *, max_age_s: float) -> dict[str, Any]:
    """The status as JSON data (``liaison status --json`` and ``/api/queues``)."""
    breaches = evaluate(status, max_age_s=max_age_s)
    return {
        "source": status.source,
        "vhost": status.vhost,
        "at": status.at.isoformat(),
        "ok": not breaches,
        "queues": [
            {
                "name": row.name,
                "kind": row.kind,
                "exists": row.exists,
                "ready": row.ready,
                "unacked": row.unacked,
                "consumers": row.consumers,
                "publish_rate": row.publish_rate,
                "deliver_rate": row.deliver_rate,
                "oldest_age_s": row.oldest_age_s,
            }
            for row in status.rows
        ],
        "router": vars(status.router),
        "audit_writer": vars(status.audit_writer),
        "breaches": [vars(breach) for breach in breaches],
        "warnings": warnings(status),
        "max_age_s": max_age_s,
        "acks": None
        if status.acks_overdue is None
        else {"pending": status.acks_pending, "overdue": len(status.acks_overdue)},
        "questions": None
        if status.questions_overdue is None
        else {"open": status.questions_open, "overdue": len(status.questions_overdue)},
    }


def format_age(seconds: float | None) -> str:
    """``-`` when unknown, else the largest two units: ``42s``, ``3m05s``, ``2h10m``, ``3d04h``."""
    if seconds is None:
        return "-"
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{total // 86400}d{total % 86400 // 3600:02d}h"


def _figure(value: int | None, exists: bool) -> str:
    if not exists:
        return "missing"
    return "?" if value is None else str(value)


def _per_second(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1f}"


_HEADER = ("QUEUE", "READY", "UNACKED", "CONSUMERS", "IN/S", "OUT/S", "OLDEST")


def render_table(status: HubStatus, *, max_age_s: float) -> str:
    """The status as the text operators read: the queue table, health, then the breaches."""
    cells = [_HEADER]
    for row in status.rows:
        cells.append(
            (
                row.name,
                _figure(row.ready, row.exists),
                _figure(row.unacked, row.exists) if row.unacked is not None else "-",
                _figure(row.consumers, row.exists),
                _per_second(row.publish_rate),
                _per_second(row.deliver_rate),
                format_age(row.oldest_age_s),
            )
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(_HEADER))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in cells
    ]
    router, writer = status.router, status.audit_writer
    lines += [
        "",
        f"router:       {_health_text(router)}",
        f"audit writer: {_health_text(writer)}",
        f"source:       {status.source} (vhost {status.vhost}, {status.at:%Y-%m-%d %H:%M:%S %Z})",
    ]
    if status.acks_overdue is not None:
        lines.append(
            f"acks:         {status.acks_pending} awaited, {len(status.acks_overdue)} overdue"
        )
    if status.questions_overdue is not None:
        lines.append(
            f"questions:    {status.questions_open} open, {len(status.questions_overdue)} overdue"
        )
    lines += [f"warning: {text}" for text in warnings(status)]
    breaches = evaluate(status, max_age_s=max_age_s)
    if breaches:
        lines.append(f"BREACHES ({len(breaches)}):")
        lines += [f"  - {breach.message}" for breach in breaches]
    else:
        lines.append("OK: no threshold breached")
    return "\n".join(lines)


def _health_text(health: Health) -> str:
    state = {True: "alive", False: "DOWN", None: "unknown"}[health.alive]
    consumers = "?" if health.consumers is None else str(health.consumers)
    lag = "?" if health.lag is None else str(health.lag)
    return f"{state} ({consumers} consumer(s)), lag {lag}"
