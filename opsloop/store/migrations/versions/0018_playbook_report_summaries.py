"""A playbook's own weekly report (`report: to:`) keeps its summary too: report summaries are
kept per week and report, '' being the business's report.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 00:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table to change its primary key.
    with op.batch_alter_table("report_summaries") as batch:
        batch.add_column(
            sa.Column("scope", sa.String(length=80), nullable=False, server_default="")
        )
        batch.drop_constraint("pk_report_summaries", type_="primary")
        batch.create_primary_key("pk_report_summaries", ["week", "scope"])


def downgrade() -> None:
    op.execute("DELETE FROM report_summaries WHERE scope <> ''")
    with op.batch_alter_table("report_summaries") as batch:
        batch.drop_constraint("pk_report_summaries", type_="primary")
        batch.create_primary_key("pk_report_summaries", ["week"])
        batch.drop_column("scope")
