"""The first schema: consumed ids, registry and its counters, acknowledgements, deadlines, outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "consumed",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "registry_counter",
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last", sa.Integer, nullable=False),
    )
    op.create_table(
        "registry",
        sa.Column("number", sa.String(80), primary_key=True),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("message_key", sa.String(120), nullable=False, unique=True),
        sa.Column("message_id", sa.String(36), nullable=False, index=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(40), nullable=False),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("classification", sa.String(16), nullable=False),
        sa.Column("registered_at", sa.DateTime, nullable=False),
        sa.Column("registered_on", sa.Date, nullable=False),
        sa.Column("sender_reference", sa.String(64), nullable=False),
        sa.Column("in_reply_to", sa.String(36), nullable=True),
        sa.Column("thread_reference", sa.String(64), nullable=True),
        sa.Column("answers_number", sa.String(80), nullable=True),
        sa.UniqueConstraint("year", "sequence", name="registry_year_sequence"),
    )
    op.create_table(
        "ack_watch",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("message_id", sa.String(36), nullable=False, index=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(40), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("receipt", sa.String(64), nullable=False),
        sa.Column("opened_at", sa.DateTime, nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("escalate_to", sa.Text, nullable=False),
    )
    op.create_table(
        "ack_expected",
        sa.Column("watch_key", sa.String(120), primary_key=True),
        sa.Column("recipient", sa.String(40), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("acknowledged_at", sa.DateTime, nullable=True),
        sa.Column("receipt_id", sa.String(36), nullable=True),
    )
    op.create_table(
        "deadline",
        sa.Column("id", sa.String(160), primary_key=True),
        sa.Column("procedure", sa.String(40), nullable=False),
        sa.Column("subject_key", sa.String(120), nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False, index=True),
        sa.Column("cancelled", sa.Boolean, nullable=False),
        sa.Column("fired_at", sa.DateTime, nullable=True),
        sa.Column("message_id", sa.String(36), nullable=True),
    )
    op.create_table(
        "outbox",
        sa.Column("message_id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(160), nullable=False, index=True),
        sa.Column("routing_key", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("sent_at", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    """Drop them all."""
    for name in (
        "outbox",
        "deadline",
        "ack_expected",
        "ack_watch",
        "registry",
        "registry_counter",
        "consumed",
    ):
        op.drop_table(name)
