"""Documents and their passages, for answers with citations.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsloop.store.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
At = opsloop.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", Id, nullable=False),
        sa.Column("collection", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", At(), nullable=False),
        sa.Column("updated_at", At(), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("collection", "name", name=op.f("uq_documents_collection_name")),
    )
    op.create_table(
        "document_passages",
        sa.Column("id", Id, nullable=False),
        sa.Column("document_id", Id, nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("heading", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_passages_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_passages")),
        sa.UniqueConstraint(
            "document_id", "ordinal", name=op.f("uq_document_passages_document_id_ordinal")
        ),
    )


def downgrade() -> None:
    op.drop_table("document_passages")
    op.drop_table("documents")
