"""Review digests: one message per reviewer per period.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsloop.store.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
At = opsloop.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "review_digests",
        sa.Column("id", Id, nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("period_start", At(), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.Column("sent_at", At(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_digests")),
        sa.UniqueConstraint(
            "recipient", "period_start", name=op.f("uq_review_digests_recipient_period_start")
        ),
    )


def downgrade() -> None:
    op.drop_table("review_digests")
