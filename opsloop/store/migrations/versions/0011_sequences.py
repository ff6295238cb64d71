"""Sequences: a chosen option's steps, run one at a time.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import opsloop.store.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
At = opsloop.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "sequences",
        sa.Column("id", Id, nullable=False),
        sa.Column("decision_id", Id, nullable=False),
        sa.Column("playbook", sa.String(length=80), nullable=False),
        sa.Column("option", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("position", sa.String(length=200), nullable=True),
        sa.Column("plan", Json, nullable=False),
        sa.Column("next_at", At(), nullable=True),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("started_at", At(), nullable=False),
        sa.Column("updated_at", At(), nullable=False),
        sa.Column("ended_at", At(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_sequences_decision_id_decisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequences")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_sequences_decision_id")),
    )
    op.create_index(
        op.f("ix_sequences_subject_status"), "sequences", ["subject", "status"], unique=False
    )
    op.create_index(
        op.f("ix_sequences_status_next_at"), "sequences", ["status", "next_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sequences_status_next_at"), table_name="sequences")
    op.drop_index(op.f("ix_sequences_subject_status"), table_name="sequences")
    op.drop_table("sequences")
