"""Questions: every question asked of the operations chat, who asked it, how it was answered
(the router or the language model), the tools it used and the records it cited, and the
model's cost.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import opsloop.store.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
At = opsloop.store.types.UtcDateTime
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", Id, nullable=False),
        sa.Column("asked_at", At(), nullable=False),
        sa.Column("asked_by", sa.String(length=320), nullable=False),
        sa.Column("permission", sa.String(length=16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("tools", Json, nullable=False),
        sa.Column("citations", Json, nullable=False),
        sa.Column("llm_calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questions")),
    )
    op.create_index(op.f("ix_questions_asked_by"), "questions", ["asked_by"])


def downgrade() -> None:
    op.drop_index(op.f("ix_questions_asked_by"), table_name="questions")
    op.drop_table("questions")
