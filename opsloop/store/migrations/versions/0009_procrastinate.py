"""Procrastinate's tables on PostgreSQL, and the last error of each job it gave up on.

On PostgreSQL the jobs run on Procrastinate (opsloop/runtime/procrastinate.py). Its schema is
applied here, from the installed package's `schema.sql`, so that `opsloop migrate` is the one
step that makes a database ready; `procrastinate schema --apply` is never needed. The package
is pinned to one minor version (pyproject.toml): a newer one brings its own migration files,
which a later revision here applies.

`job_errors` keeps the error of every failed attempt's job, by Procrastinate's job id, since
Procrastinate keeps only the status. SQLite gets the table too, unused, so both databases have
the same tables under OpsLoop's names.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import opsloop.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_errors",
        sa.Column("job_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("at", opsloop.store.types.UtcDateTime(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        from procrastinate.schema import SchemaManager

        # Straight to psycopg, without parameters: the schema's PL/pgSQL has `%` and `:` in it.
        driver = op.get_bind().connection.driver_connection
        assert driver is not None
        driver.execute(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("procrastinate_events", "procrastinate_periodic_defers"):
            op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
        op.execute("DROP TABLE IF EXISTS procrastinate_jobs CASCADE")
        op.execute("DROP TABLE IF EXISTS procrastinate_workers CASCADE")
    op.drop_table("job_errors")
