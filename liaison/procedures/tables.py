"""The procedures database's tables, as SQLAlchemy Core metadata.

Times are stored as naive UTC (both SQLite and PostgreSQL compare them the same
way); :func:`naive` and :func:`aware` convert at the boundary. The schema itself
is created and changed only by the Alembic migrations in ``migrations/``; this
module describes the latest revision for queries.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

#: Every delivered copy applied, by ``sender/message_id``: the exactly-once guard.
consumed = Table(
    "consumed",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

#: The last registry sequence of each calendar year (row locked while allocating).
registry_counter = Table(
    "registry_counter",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("last", Integer, nullable=False),
)

#: The correspondence register.
registry = Table(
    "registry",
    metadata,
    Column("number", String(80), primary_key=True),
    Column("year", Integer, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("message_key", String(120), nullable=False, unique=True),
    Column("message_id", String(36), nullable=False, index=True),
    Column("type", String(64), nullable=False),
    Column("sender", String(40), nullable=False),
    Column("recipients", Text, nullable=False),  # space-separated codes
    Column("subject", Text, nullable=False),
    Column("classification", String(16), nullable=False),
    Column("registered_at", DateTime, nullable=False),
    Column("registered_on", Date, nullable=False),
    Column("sender_reference", String(64), nullable=False),
    Column("in_reply_to", String(36), nullable=True),
    Column("thread_reference", String(64), nullable=True),
    Column("answers_number", String(80), nullable=True),
    UniqueConstraint("year", "sequence", name="registry_year_sequence"),
)

#: Acknowledgements being chased, one per watched message.
ack_watch = Table(
    "ack_watch",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("message_id", String(36), nullable=False, index=True),
    Column("type", String(64), nullable=False),
    Column("sender", String(40), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("receipt", String(64), nullable=False),
    Column("opened_at", DateTime, nullable=False),
    Column("due_at", DateTime, nullable=False),
    Column("escalate_to", Text, nullable=False),  # space-separated codes
)

#: Who each watched message waits on; ``acknowledged_at`` set when their receipt came.
ack_expected = Table(
    "ack_expected",
    metadata,
    Column("watch_key", String(120), primary_key=True),
    Column("recipient", String(40), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("acknowledged_at", DateTime, nullable=True),
    Column("receipt_id", String(36), nullable=True),
)

#: Durable deadlines: fired once (``fired_at``), or cancelled when no longer needed.
deadline = Table(
    "deadline",
    metadata,
    Column("id", String(160), primary_key=True),
    Column("procedure", String(40), nullable=False),
    Column("subject_key", String(120), nullable=False),
    Column("due_at", DateTime, nullable=False, index=True),
    Column("cancelled", Boolean, nullable=False, default=False),
    Column("fired_at", DateTime, nullable=True),
    Column("message_id", String(36), nullable=True),
)

#: Messages to send, written in the transaction that decided them; ``sent_at`` once confirmed.
outbox = Table(
    "outbox",
    metadata,
    Column("message_id", String(36), primary_key=True),
    Column("source", String(160), nullable=False, index=True),
    Column("routing_key", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("headers", Text, nullable=False),  # JSON object
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime, nullable=True),
)

#: The ICC's press releases: draft → approved → published, or withdrawn (``releases.py``).
icc_release = Table(
    "icc_release",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("message_id", String(36), nullable=False),
    Column("author", String(40), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("languages", String(40), nullable=False),  # space-separated codes
    Column("embargo_until", DateTime, nullable=True),
    Column("received_at", DateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("approved_by", String(40), nullable=True),
    Column("approved_at", DateTime, nullable=True),
    Column("publish_at", DateTime, nullable=True),
    Column("published_at", DateTime, nullable=True, index=True),
    Column("withdrawn_by", String(40), nullable=True),
    Column("withdrawn_at", DateTime, nullable=True),
    Column("withdrawn_reason", Text, nullable=True),
)

#: The committee's meetings (``committee.py``); agenda as a JSON list.
committee_meeting = Table(
    "committee_meeting",
    metadata,
    Column("reference", String(64), primary_key=True),
    Column("meeting_on", Date, nullable=False, index=True),
    Column("place", Text, nullable=True),
    Column("agenda", Text, nullable=False),
    Column("convened_key", String(120), nullable=False),
    Column("minutes_adopted_on", Date, nullable=True),
    Column("minutes_summary", Text, nullable=True),
)

#: The committee's decisions.
committee_decision = Table(
    "committee_decision",
    metadata,
    Column("reference", String(64), primary_key=True),
    Column("meeting_reference", String(64), nullable=False, index=True),
    Column("text", Text, nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    Column("message_key", String(120), nullable=False),
)

#: Budget lines per year; amounts are exact decimal text (SQLite has no exact numeric).
committee_line = Table(
    "committee_line",
    metadata,
    Column("line", String(32), primary_key=True),
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("label", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("budgeted", String(24), nullable=False),
)

#: Commitments and payments as booked, by the message that booked them.
committee_entry = Table(
    "committee_entry",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("line", String(32), nullable=False),
    Column("year", Integer, nullable=False),
    Column("reference", String(64), nullable=False),
    Column("amount", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("supporting_reference", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("overspend", Boolean, nullable=False),
)


#: Treaty files: the columns lists filter on, and the whole file as JSON (``document``).
treaty_file = Table(
    "treaty_file",
    metadata,
    Column("reference", String(64), primary_key=True),
    Column("step", String(40), nullable=True),  # NULL: signed, not yet submitted
    Column("since", DateTime, nullable=False),
    Column("waiting_on", Text, nullable=False),  # space-separated codes
    Column("missing", Integer, nullable=False),
    Column("anomalies", Integer, nullable=False),
    Column("document", Text, nullable=False),
)

#: Parliamentary questions, one case each; ``answered_at`` NULL while open.
question_case = Table(
    "question_case",
    metadata,
    Column("number", String(64), primary_key=True),
    Column("assigned_to", String(40), nullable=False, index=True),
    Column("deadline", Date, nullable=False),
    Column("due_at", DateTime, nullable=False, index=True),
    Column("answered_at", DateTime, nullable=True),
    Column("days_late", Integer, nullable=True),
    Column("document", Text, nullable=False),
)


def naive(moment: datetime) -> datetime:
    """UTC without tzinfo, as stored."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def aware(moment: datetime) -> datetime:
    """A stored time back as an aware UTC datetime."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


__all__ = [
    "ack_expected",
    "ack_watch",
    "aware",
    "committee_decision",
    "committee_entry",
    "committee_line",
    "committee_meeting",
    "consumed",
    "deadline",
    "icc_release",
    "metadata",
    "naive",
    "outbox",
    "question_case",
    "registry",
    "registry_counter",
    "treaty_file",
]
