"""Weekly report summaries: the language model's paragraph kept with the week it was sent for;
and a playbook's own weekly report (`report: to:`) claimed apart from the business's.

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
    # '' for the business's report, else the playbook's name: one row per recipient, week and
    # report. Batch mode: SQLite rebuilds the table to change its unique constraint.
    with op.batch_alter_table("weekly_reports") as batch:
        batch.add_column(
            sa.Column("scope", sa.String(length=80), nullable=False, server_default="")
        )
        batch.drop_constraint("uq_weekly_reports_recipient_week", type_="unique")
        batch.create_unique_constraint(
            "uq_weekly_reports_recipient_week_scope", ["recipient", "week", "scope"]
        )


def downgrade() -> None:
    with op.batch_alter_table("weekly_reports") as batch:
        batch.drop_constraint("uq_weekly_reports_recipient_week_scope", type_="unique")
        batch.create_unique_constraint("uq_weekly_reports_recipient_week", ["recipient", "week"])
        batch.drop_column("scope")
    op.drop_table("report_summaries")
