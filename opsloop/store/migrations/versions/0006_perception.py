"""Perception: source definitions, their runs and daily counters, contracts, identities.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import opsloop.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
At = opsloop.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", Id, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", At(), nullable=False),
        sa.Column("updated_at", At(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("checkpoint", Json, nullable=True),
        sa.Column("checkpoint_at", At(), nullable=True),
        sa.Column("next_sync_at", At(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_sources_name")),
    )
    op.create_table(
        "source_runs",
        sa.Column("id", Id, nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", At(), nullable=False),
        sa.Column("finished_at", At(), nullable=True),
        sa.Column("heartbeat_at", At(), nullable=False),
        sa.Column("rows_in", sa.Integer(), nullable=False),
        sa.Column("events_stored", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("ignored", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("checkpoint_before", Json, nullable=True),
        sa.Column("checkpoint_after", Json, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_runs")),
    )
    with op.batch_alter_table("source_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_runs_source_id"), ["source", "id"], unique=False
        )
    op.create_table(
        "source_stats",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("ignored", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source", "day", name=op.f("pk_source_stats")),
    )
    op.create_table(
        "contracts",
        sa.Column("id", Id, nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("applied_at", At(), nullable=False),
        sa.Column("applied_by", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
        sa.UniqueConstraint("event_type", "version", name=op.f("uq_contracts_event_type_version")),
    )
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_active"), ["active"], unique=False)
    op.create_table(
        "identities",
        sa.Column("alias", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("linked_at", At(), nullable=False),
        sa.PrimaryKeyConstraint("alias", name=op.f("pk_identities")),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identities_subject"), ["subject"], unique=False)


def downgrade() -> None:
    for table in ("identities", "contracts", "source_stats", "source_runs", "sources"):
        op.drop_table(table)
