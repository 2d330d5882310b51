"""What the audit writer does with the ledger, without the broker: open it, record batches, sign.

The writer (:mod:`liaison.adapters.audit_writer`) consumes ``hub.audit`` and
acks; everything between a delivery's bytes and its ack is here, as file I/O
only:

- :func:`open_when_free` waits for the directory's writer lock, then opens the ledger;
- :func:`record_messages` decodes a batch of messages, appends their events with
  one fsync (skipping dedupe keys already recorded) and says which delivery tag
  may then be acked, handing every message that cannot be recorded to ``reject``
  first (its tag and why), so that the ack ``multiple=True`` never covers it;
- :class:`CheckpointSchedule` signs a checkpoint once enough records, or enough
  time, have gone unsigned.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.core.events import AuditEvent
from liaison.ledger.checkpoints import Checkpoint
from liaison.ledger.decode import decode_events
from liaison.ledger.records import RecordError
from liaison.ledger.store import Ledger, LedgerLockedError

#: One delivery: its tag on the channel and its body.
Delivery = tuple[int, bytes]

_LOCK_POLL_S = 0.2


def open_when_free(
    directory: Path,
    *,
    key: Ed25519PrivateKey,
    segment_bytes: int,
    stopping: threading.Event,
    on_wait: Callable[[str], None],
) -> Ledger | None:
    """The ledger in ``directory`` once no other writer holds its lock; ``None`` if
    ``stopping`` is set first. ``on_wait`` hears, once, why it waits."""
    waiting = False
    while not stopping.is_set():
        try:
            return Ledger.open(directory, key=key, segment_bytes=segment_bytes)
        except LedgerLockedError as exc:
            if not waiting:
                on_wait(str(exc))
                waiting = True
            stopping.wait(_LOCK_POLL_S)
    return None


@dataclass(frozen=True)
class Recorded:
    """What one batch came to once its events are on disk."""

    #: The last delivery tag whose events are recorded and synced (ack it with
    #: ``multiple=True``), or ``None`` when no message of the batch was recorded.
    ack: int | None
    messages: int = 0
    events: int = 0
    records: int = 0


def record_messages(
    ledger: Ledger, batch: Sequence[Delivery], reject: Callable[[int, str], None]
) -> Recorded:
    """Decode ``batch``, append its events with one fsync; ``reject`` each message that
    cannot be recorded (malformed, or an event with no canonical form) as it is found.

    A :class:`~liaison.ledger.store.LedgerError` (the disk refused) propagates: then
    nothing of the batch may be acked.
    """
    with _cycle_collector_paused():
        return _record(ledger, batch, reject)


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the duration (if it was on).

    A batch makes several containers per event (the parsed JSON, the events, the
    records), all alive until the batch is done and none in a reference cycle, so
    the collector ran every 700 of them for nothing: 8-10 us per routed message,
    against about 2 us for the one collection when it is back on. Reference
    counting frees everything as usual; a cycle made meanwhile waits for that
    collection.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _record(
    ledger: Ledger, batch: Sequence[Delivery], reject: Callable[[int, str], None]
) -> Recorded:
    decoded: list[tuple[int, list[AuditEvent]]] = []
    for tag, body in batch:
        try:
            decoded.append((tag, decode_events(body)))
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            # RecursionError: a body nested deeper than the parser's stack (only the
            # hub can publish to hub.audit, but a malformed message must not stop
            # the writer in a redelivery loop).
            reason = str(exc)[:300] or type(exc).__name__
            reject(tag, f"malformed audit message: {reason}")
    while decoded:
        events = [event for _, group in decoded for event in group]
        try:
            records = ledger.append(events)
        except RecordError as exc:
            # One event cannot be recorded: dead-letter its message, keep the rest.
            bad = _message_of(decoded, exc.dedupe_key)
            reject(bad, str(exc))
            decoded = [(tag, group) for tag, group in decoded if tag != bad]
            continue
        return Recorded(decoded[-1][0], len(decoded), len(events), len(records))
    return Recorded(None)


def _message_of(decoded: list[tuple[int, list[AuditEvent]]], dedupe_key: str | None) -> int:
    """The delivery tag of the message that carried the event ``dedupe_key``."""
    for tag, group in decoded:
        if any(event.dedupe_key == dedupe_key for event in group):
            return tag
    return decoded[0][0]


class CheckpointSchedule:
    """Sign when ``every`` records are unsigned, or any are and ``seconds`` have passed."""

    def __init__(
        self, *, every: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every = every
        self.seconds = seconds
        self._clock = clock
        self._last = clock()

    def sign_if_due(self, ledger: Ledger) -> Checkpoint | None:
        """The checkpoint signed now, or ``None`` (not due, or nothing new to sign)."""
        unsigned = ledger.unsigned
        due = unsigned >= self.every or (unsigned and self._clock() - self._last >= self.seconds)
        if not due:
            return None
        checkpoint = ledger.checkpoint()
        self._last = self._clock()
        return checkpoint
