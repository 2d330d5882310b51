"""The ICC's press releases (draft, approved, published, withdrawn).

Revision ID: 0002_h8
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_h8"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the releases table."""
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


def downgrade() -> None:
    """Drop the releases table."""
    op.drop_index("ix_icc_release_published_at", "icc_release")
    op.drop_table("icc_release")
