"""Settings saved in the browser: SMTP, chat channels, the language model.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsloop.store.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

At = opsloop.store.types.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "settings_values",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", At(), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings_values")),
    )


def downgrade() -> None:
    op.drop_table("settings_values")
