"""The router's two windows: the ids it routed lately, and the ingress tags it may ack."""

from __future__ import annotations

from collections import OrderedDict


class IdWindow:
    """The ids of the last ``size`` messages the router routed, each with its owner.

    The owner is ``"<sender>:<content tag>"``: who sent the id first, and which
    bytes. A message is claimed when it is *decided* (routed), not when its
    confirms come back, so a second message with the same id arriving while the
    first is still in flight is already seen. A claim whose message goes back to
    the broker unacked (requeued, connection lost) is released, or the redelivery
    of the message itself would be dropped as its own duplicate.
    """

    __slots__ = ("_owners", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._owners: OrderedDict[str, str] = OrderedDict()

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._owners

    def __len__(self) -> int:
        return len(self._owners)

    def owner(self, message_id: str) -> str | None:
        """Who routed ``message_id`` (``sender:tag``), or ``None`` if it is not in the window."""
        return self._owners.get(message_id)

    def claim(self, message_id: str, owner: str) -> None:
        """Remember ``message_id`` as ``owner``'s, forgetting the oldest beyond the bound."""
        if self._size <= 0:
            return
        owners = self._owners
        owners[message_id] = owner
        if len(owners) > self._size:
            owners.popitem(last=False)

    def release(self, message_id: str) -> None:
        """Forget a claim whose message was handed back to the broker undecided."""
        self._owners.pop(message_id, None)


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
