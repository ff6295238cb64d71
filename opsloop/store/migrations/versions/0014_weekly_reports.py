"""Weekly reports: one email per recipient per ISO week.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsloop.store.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
At = opsloop.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "weekly_reports",
        sa.Column("id", Id, nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("sent_at", At(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weekly_reports")),
        sa.UniqueConstraint("recipient", "week", name=op.f("uq_weekly_reports_recipient_week")),
    )


def downgrade() -> None:
    op.drop_table("weekly_reports")
