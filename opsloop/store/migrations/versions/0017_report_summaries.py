"""Weekly report summaries: the language model's paragraph kept with the week it was sent for.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 21:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsloop.store.types

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

At = opsloop.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "report_summaries",
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("written_at", At(), nullable=False),
        sa.PrimaryKeyConstraint("week", name=op.f("pk_report_summaries")),
    )


def downgrade() -> None:
    op.drop_table("report_summaries")
