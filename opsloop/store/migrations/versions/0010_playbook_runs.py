"""Runs of scheduled playbooks: (playbook, due time) claimed once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsloop.store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
At = opsloop.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "playbook_runs",
        sa.Column("id", Id, nullable=False),
        sa.Column("playbook_id", Id, nullable=False),
        sa.Column("due_at", At(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subjects", sa.Integer(), nullable=False),
        sa.Column("selected", sa.Integer(), nullable=False),
        sa.Column("decided", sa.Integer(), nullable=False),
        sa.Column("created_at", At(), nullable=False),
        sa.Column("finished_at", At(), nullable=True),
        sa.ForeignKeyConstraint(
            ["playbook_id"],
            ["playbooks.id"],
            name=op.f("fk_playbook_runs_playbook_id_playbooks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playbook_runs")),
        sa.UniqueConstraint(
            "playbook_id", "due_at", name=op.f("uq_playbook_runs_playbook_id_due_at")
        ),
    )


def downgrade() -> None:
    op.drop_table("playbook_runs")
