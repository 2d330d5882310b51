"""Reading the ledger: records one at a time, filters, one message's history.

Everything here streams: records are parsed lazily, segment by segment, and a
cheap byte search skips lines that cannot match before any JSON is parsed.
Nothing is checked here; ``verify.py`` is the place for that.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from liaison.core import dedupe
from liaison.ledger.records import Record, format_ts
from liaison.ledger.segments import LineReader, list_segments


@dataclass(frozen=True, slots=True)
class Filter:
    """Which records to keep; every given criterion must hold (``None`` means any).

    ``since`` is inclusive and ``until`` exclusive, compared with the record's ``ts``.
    """

    since: datetime | None = None
    until: datetime | None = None
    sender: str | None = None
    recipient: str | None = None
    type: str | None = None
    event: str | None = None
    message_id: str | None = None
    #: Only records that carry the full envelope (what a replay needs).
    with_envelope: bool = False

    def needles(self) -> list[bytes]:
        """Byte strings every matching line must contain (a prefilter, not the test)."""
        found: list[bytes] = []
        for name, value in (
            ("message_id", self.message_id),
            ("sender", self.sender),
            ("type", self.type),
            ("event", self.event),
        ):
            if value is not None:
                found.append(f'"{name}":{_json(value)}'.encode())
        if self.recipient is not None:
            found.append(_json(self.recipient).encode())
        return found

    def matches(self, record: Record) -> bool:
        """Whether ``record`` meets every criterion."""
        if self.since is not None and record.ts < format_ts(self.since):
            return False
        if self.until is not None and record.ts >= format_ts(self.until):
            return False
        return (
            (self.message_id is None or record.message_id == self.message_id)
            and (self.sender is None or record.sender == self.sender)
            and (self.recipient is None or self.recipient in record.recipients)
            and (self.type is None or record.type == self.type)
            and (self.event is None or record.event == self.event)
            and (not self.with_envelope or record.envelope is not None)
        )


def _json(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def iter_lines(directory: Path) -> Iterator[bytes]:
    """Every complete record line of ``directory``, in order (a torn final line is skipped)."""
    for segment in list_segments(directory):
        yield from LineReader(segment)


def iter_records(directory: Path) -> Iterator[Record]:
    """Every record of ``directory``, in order."""
    for line in iter_lines(directory):
        yield Record.from_line(line)


def search(directory: Path, where: Filter) -> Iterator[Record]:
    """The records of ``directory`` that match ``where``, in order."""
    needles = where.needles()
    for line in iter_lines(directory):
        if all(needle in line for needle in needles):
            record = Record.from_line(line)
            if where.matches(record):
                yield record


def history(directory: Path, message_id: str) -> list[Record]:
    """One message's timeline: every record about ``message_id``, by the time each
    thing happened, ties in log order.

    Log order alone is the order records reached the writer, and two publishers race
    there: the router's ``received``/``routed``/``delivered`` travel in an audit batch
    that may wait a few milliseconds for company, while a consumer that gave up at
    once has its ``parked`` recorded through the retry relay first. Each record's
    time is when its event happened (the router's three share the decision's time).
    """
    records = list(search(directory, Filter(message_id=message_id)))
    return sorted(records, key=lambda record: (record.ts, record.seq))


def replay_selection(directory: Path, where: Filter) -> Iterator[Record]:
    """For replays: the first record carrying the envelope of each matching routed message.

    Each message appears once (its earliest record with an envelope), in log order,
    so a replay resends every selected message exactly once. Only envelopes the
    router *routed* qualify: a refused message's envelope is in the ledger too (its
    ``received`` record), with whatever sender its body claimed, and replaying it as
    the hub would deliver a refused forgery with the hub's authority. A ``received``
    record qualifies when a ``routed`` record names the same message id, sender and
    content (the middle of their dedupe keys, see ``liaison.core.outcomes``).
    """
    routed_only = Filter(
        event="routed", sender=where.sender, type=where.type, message_id=where.message_id
    )
    routed = {dedupe.message_of(record.dedupe_key) for record in search(directory, routed_only)}
    seen: set[str] = set()
    for record in search(directory, replace(where, with_envelope=True)):
        if record.message_id not in seen and dedupe.message_of(record.dedupe_key) in routed:
            seen.add(record.message_id)
            yield record
