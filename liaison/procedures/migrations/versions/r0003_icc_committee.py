"""The ICC's press releases; the committee's register and accounts.

Revision ID: 0003
Revises: 0002_h7
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002_h7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the releases and committee tables."""
    op.create_table(
        "icc_release",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("author", sa.String(40), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("languages", sa.String(40), nullable=False),
        sa.Column("embargo_until", sa.DateTime, nullable=True),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approved_by", sa.String(40), nullable=True),
        sa.Column("approved_at", sa.DateTime, nullable=True),
        sa.Column("publish_at", sa.DateTime, nullable=True),
        sa.Column("published_at", sa.DateTime, nullable=True),
        sa.Column("withdrawn_by", sa.String(40), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime, nullable=True),
        sa.Column("withdrawn_reason", sa.Text, nullable=True),
    )
    op.create_index("ix_icc_release_published_at", "icc_release", ["published_at"])
    op.create_table(
        "committee_meeting",
        sa.Column("reference", sa.String(64), primary_key=True),
        sa.Column("meeting_on", sa.Date, nullable=False, index=True),
        sa.Column("place", sa.Text, nullable=True),
        sa.Column("agenda", sa.Text, nullable=False),
        sa.Column("convened_key", sa.String(120), nullable=False),
        sa.Column("minutes_adopted_on", sa.Date, nullable=True),
        sa.Column("minutes_summary", sa.Text, nullable=True),
    )
    op.create_table(
        "committee_decision",
        sa.Column("reference", sa.String(64), primary_key=True),
        sa.Column("meeting_reference", sa.String(64), nullable=False, index=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("message_key", sa.String(120), nullable=False),
    )
    op.create_table(
        "committee_line",
        sa.Column("line", sa.String(32), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("budgeted", sa.String(24), nullable=False),
    )
    op.create_table(
        "committee_entry",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("line", sa.String(32), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("amount", sa.String(24), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("supporting_reference", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("overspend", sa.Boolean, nullable=False),
    )
    op.create_index("ix_committee_entry_line_year", "committee_entry", ["line", "year"])


def downgrade() -> None:
    """Drop the releases and committee tables."""
    op.drop_index("ix_committee_entry_line_year", "committee_entry")
    for table in ("committee_entry", "committee_line", "committee_decision", "committee_meeting"):
        op.drop_table(table)
    op.drop_index("ix_icc_release_published_at", "icc_release")
    op.drop_table("icc_release")
