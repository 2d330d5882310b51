"""The router's bookkeeping, kept apart from its I/O: acks, the duplicate window, counters."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


class DedupeWindow:
    """The last ``size`` routed message keys, oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str) -> None:
        """Remember ``key``, forgetting the oldest beyond the bound."""
        if self._size <= 0:
            return
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)


class AckTracker:
    """Turns ingress messages finishing out of order into few acks.

    Delivery tags on a channel count up from 1. Everything up to the highest tag
    below which all messages are finished is acked with one ``multiple`` ack;
    finished messages stuck behind a slow one are acked one by one once too
    many wait, so a single slow message never holds the prefetch window.
    """

    def __init__(self, max_waiting: int = 256) -> None:
        self._floor = 0  # every tag <= floor is settled
        self._ackable_floor = 0  # highest settled tag <= floor that was not nacked
        self._done: dict[int, bool] = {}  # finished above the floor: tag -> needs ack
        self._max_waiting = max_waiting

    def finish(self, tag: int, *, ack: bool = True) -> list[tuple[int, bool]]:
        """Record ``tag`` as settled (``ack=False``: it was nacked); the acks to send now."""
        self._done[tag] = ack
        acks: list[tuple[int, bool]] = []
        advanced = False
        while self._floor + 1 in self._done:
            self._floor += 1
            if self._done.pop(self._floor):
                self._ackable_floor = self._floor
                advanced = True
        if advanced:
            acks.append((self._ackable_floor, True))
        if len(self._done) > self._max_waiting:
            acks.extend((t, False) for t, needs in sorted(self._done.items()) if needs)
            self._done = dict.fromkeys(self._done, False)
        return acks


@dataclass
class RouterStats:
    """Counters the router keeps; metrics and the benchmark read them."""

    received: int = 0
    routed: int = 0
    rejected: int = 0
    duplicates: int = 0
    deliveries: int = 0
    unroutable: int = 0
    republished: int = 0
    reconnects: int = 0
    in_flight: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
