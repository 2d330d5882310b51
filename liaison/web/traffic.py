"""Recent traffic for the dashboard: a per-second throughput series and tallies per institution.

Fed by the router's observer (on the router's I/O thread) and read by the web
server's threads, hence the lock. Memory is bounded: one bucket per second of
the window, one tally per participant, a fixed number of recent messages.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from liaison.core.decide import Decision
from schemas import wire
from schemas.errors import ReasonCode

UNKNOWN = "unknown"


def proven_sender(decision: Decision) -> str | None:
    """The envelope's sender, unless the router found it was not who published it.

    On ``sender_mismatch`` the envelope names someone else than the RabbitMQ user
    that published it: counting it under that name would blame the impersonated.
    """
    return None if decision.reason is ReasonCode.SENDER_MISMATCH else decision.sender


@dataclass
class _Bucket:
    received: int = 0
    routed: int = 0
    rejected: int = 0


@dataclass
class _Tally:
    sent: int = 0
    delivered: int = 0
    rejected: int = 0
    last_seen: float | None = None


class TrafficLog:
    """What the router did over the last ``window_s`` seconds, by second and by institution."""

    def __init__(
        self,
        *,
        participants: Iterable[str] = (),
        window_s: int = 300,
        recent: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.participants = frozenset(participants)
        self._window = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[int, _Bucket] = {}
        self._tallies: dict[str, _Tally] = {}
        self._recent: deque[tuple[float, Decision]] = deque(maxlen=recent)
        self._started = clock()

    def _code(self, code: str | None) -> str:
        return code if code is not None and code in self.participants else UNKNOWN

    def record(self, decision: Decision) -> None:
        """Count one message the router has acked (on the router's loop: kept cheap)."""
        now = self._clock()
        second = int(now)
        refused = decision.reason is not None or bool(decision.dead_letters)
        with self._lock:
            bucket = self._buckets.get(second)
            if bucket is None:
                bucket = self._buckets[second] = _Bucket()
                self._prune(second)
            bucket.received += 1
            bucket.routed += 1 if decision.deliveries else 0
            bucket.rejected += 1 if refused else 0
            sender = self._tally(self._code(proven_sender(decision)))
            sender.sent += 1
            sender.rejected += 1 if refused else 0
            sender.last_seen = now
            for out in decision.deliveries:
                recipient = self._tally(self._code(wire.delivery_recipient(out.routing_key)))
                recipient.delivered += 1
                recipient.last_seen = now
            # Formatted only when the dashboard asks: the decision is immutable.
            self._recent.appendleft((now, decision))

    def _tally(self, code: str) -> _Tally:
        tally = self._tallies.get(code)
        if tally is None:
            tally = self._tallies[code] = _Tally()
        return tally

    def _prune(self, second: int) -> None:
        oldest = second - self._window
        for key in [key for key in self._buckets if key <= oldest]:
            del self._buckets[key]

    def _describe(self, at: float, decision: Decision) -> dict[str, Any]:
        return {
            "at": datetime.fromtimestamp(at, UTC).isoformat(),
            "message_id": decision.message_id,
            "type": decision.type,
            "sender": self._code(proven_sender(decision)),
            "recipients": [wire.delivery_recipient(out.routing_key) for out in decision.deliveries],
            "outcome": _outcome(decision),
        }

    def snapshot(self) -> dict[str, Any]:
        """JSON data for ``/api/traffic``: series (oldest first), rates, institutions, recent."""
        now = self._clock()
        second = int(now)
        with self._lock:
            self._prune(second)
            series = []
            for t in range(second - self._window + 1, second + 1):
                bucket = self._buckets.get(t) or _Bucket()
                series.append([t, bucket.received, bucket.routed, bucket.rejected])
            institutions = [
                {
                    "code": code,
                    "sent": tally.sent,
                    "delivered": tally.delivered,
                    "rejected": tally.rejected,
                    "last_seen": (
                        datetime.fromtimestamp(tally.last_seen, UTC).isoformat()
                        if tally.last_seen is not None
                        else None
                    ),
                }
                for code, tally in sorted(self._tallies.items())
            ]
            recent = [self._describe(at, decision) for at, decision in self._recent]
        # The current second is still filling up: rates use the complete ones before it.
        last_minute = [row[1] for row in series[-61:-1]]
        return {
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "window_s": self._window,
            "columns": ["t", "received", "routed", "rejected"],
            "series": series,
            "rate_1m": sum(last_minute) / max(1, min(60, int(now - self._started))),
            "total_5m": sum(row[1] for row in series),
            "institutions": institutions,
            "recent": recent,
        }


def _outcome(decision: Decision) -> str:
    """In words, what became of the message."""
    if decision.reason is not None:
        return f"rejected: {decision.reason.value}"
    if decision.deliveries and decision.dead_letters:
        return "routed, some copies refused"
    if decision.deliveries:
        return "routed"
    if decision.dead_letters:
        return "refused for every recipient"
    return "duplicate, dropped"
