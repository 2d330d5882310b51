"""Treaty files and parliamentary question cases.

Revision ID: 0002_h7
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_h7"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the treaty_file and question_case tables."""
    op.create_table(
        "treaty_file",
        sa.Column("reference", sa.String(64), primary_key=True),
        sa.Column("step", sa.String(40), nullable=True),
        sa.Column("since", sa.DateTime, nullable=False),
        sa.Column("waiting_on", sa.Text, nullable=False),
        sa.Column("missing", sa.Integer, nullable=False),
        sa.Column("anomalies", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_table(
        "question_case",
        sa.Column("number", sa.String(64), primary_key=True),
        sa.Column("assigned_to", sa.String(40), nullable=False, index=True),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False, index=True),
        sa.Column("answered_at", sa.DateTime, nullable=True),
        sa.Column("days_late", sa.Integer, nullable=True),
        sa.Column("document", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("question_case")
    op.drop_table("treaty_file")
