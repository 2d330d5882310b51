"""The releases' rows, read and written inside the store's transactions (SQLAlchemy Core).

The store calls :func:`consume` for a release-family copy and :func:`fire` for a
``release`` deadline, in the transaction that records the copy (or claims the
deadline); what to send goes to the same outbox as every other procedure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update

from liaison.procedures import core, releases
from liaison.procedures import tables as t
from schemas.envelope import Envelope
from schemas.types import Payload

ToOutbox = Callable[[Connection, core.Outgoing, str], None]
_TIMES = (
    "embargo_until",
    "received_at",
    "approved_at",
    "publish_at",
    "published_at",
    "withdrawn_at",
)


def load(db: Connection, key: str) -> releases.Release | None:
    """The release ``key`` as stored, if any."""
    row = db.execute(select(t.icc_release).where(t.icc_release.c.key == key)).one_or_none()
    return None if row is None else from_row(row._mapping)


def from_row(row: Any) -> releases.Release:
    """A stored row as a Release."""
    values = dict(row)
    for name in _TIMES:
        if values[name] is not None:
            values[name] = t.aware(values[name])
    values["languages"] = tuple(values["languages"].split())
    return releases.Release(**values)


def consume(
    db: Connection,
    policy: core.Policy,
    envelope: Envelope[Payload],
    *,
    stamp: datetime,
    to_outbox: ToOutbox,
    source: str,
) -> releases.ReleaseEffects:
    """Fold one release-family copy and apply its effects in ``db``'s transaction."""
    current = load(db, releases.subject_key(envelope))
    effects = releases.fold(policy, current, envelope, stamp=stamp)
    apply(db, effects, to_outbox=to_outbox, source=source)
    return effects


def consume_again(
    db: Connection,
    policy: core.Policy,
    envelope: Envelope[Payload],
    *,
    stamp: datetime,
    to_outbox: ToOutbox,
    source: str,
) -> bool:
    """A draft under an already consumed (author, id): refuse it if its words differ.

    The consumed-key row makes any copy under a known key a redelivery; for a draft
    that is checked, not assumed: other words under the id of a held release are
    refused to their sender (the held release stands). True when refused.
    """
    if envelope.type != releases.DRAFT_TYPE:
        return False
    current = load(db, releases.subject_key(envelope))
    if current is None:
        return False
    effects = releases.fold(policy, current, envelope, stamp=stamp)
    for message in effects.messages:
        to_outbox(db, message, source)
    return effects.refused is not None


def fire(
    db: Connection,
    policy: core.Policy,
    deadline: core.Deadline,
    *,
    stamp: datetime,
    to_outbox: ToOutbox,
) -> bool:
    """The embargo of a claimed deadline fell: publish, unless withdrawn meanwhile."""
    current = load(db, deadline.subject_key)
    if current is None:
        return False
    effects = releases.publish(policy, current, stamp=stamp)
    if not effects.messages:
        return False
    message_id = str(effects.messages[0].envelope.message_id)
    db.execute(
        update(t.deadline).where(t.deadline.c.id == deadline.id).values(message_id=message_id)
    )
    apply(db, effects, to_outbox=to_outbox, source=deadline.id)
    return True


def apply(
    db: Connection, effects: releases.ReleaseEffects, *, to_outbox: ToOutbox, source: str
) -> None:
    """Write the release row, its deadline, cancellations and messages."""
    if effects.release is not None:
        release = effects.release
        values: dict[str, Any] = {
            name: getattr(release, name) for name in (c.name for c in t.icc_release.columns)
        }
        values["languages"] = " ".join(release.languages)
        for name in _TIMES:
            if values[name] is not None:
                values[name] = t.naive(values[name])
        db.execute(delete(t.icc_release).where(t.icc_release.c.key == release.key))
        db.execute(t.icc_release.insert(), values)
    if effects.deadline is not None:
        d = effects.deadline
        db.execute(
            t.deadline.insert().values(
                id=d.id,
                procedure=d.procedure,
                subject_key=d.subject_key,
                due_at=t.naive(d.due_at),
                cancelled=False,
            )
        )
    for deadline_id in effects.cancel:
        db.execute(
            update(t.deadline)
            .where(and_(t.deadline.c.id == deadline_id, t.deadline.c.fired_at.is_(None)))
            .values(cancelled=True)
        )
    for message in effects.messages:
        to_outbox(db, message, source)


def public(db: Connection, *, limit: int = 100) -> list[releases.Release]:
    """The releases ever published (withdrawn ones too: the feed shows them withdrawn)."""
    rows = db.execute(
        select(t.icc_release)
        .where(t.icc_release.c.published_at.is_not(None))
        .order_by(t.icc_release.c.published_at.desc(), t.icc_release.c.key)
        .limit(limit)
    ).all()
    return [from_row(row._mapping) for row in rows]


__all__ = ["apply", "consume", "consume_again", "fire", "from_row", "load", "public"]
