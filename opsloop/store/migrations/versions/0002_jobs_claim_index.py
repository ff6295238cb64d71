"""Index jobs by (status, id) for claims that walk the queue in order.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_status_run_at_id"))
        batch_op.create_index(batch_op.f("ix_jobs_status_id"), ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_status_id"))
        batch_op.create_index(
            batch_op.f("ix_jobs_status_run_at_id"), ["status", "run_at", "id"], unique=False
        )
