"""PostgreSQL: `opsloop_guard(ok, what)`, the guard of a transaction's last write.

A last write sent with its COMMIT (the audit append, `store/ledger.py`) must fail when it
cannot do its work, so that the COMMIT does not go through without it; the transaction then
goes back to before it and takes the locking path (`Tx.commit_pipelined`). It failed by
dividing by zero, which left "ERROR: division by zero" in the server's log whenever two
writers raced for the ledger's head. The guard says what happened instead, with its own
SQLSTATE (OL001) and a hint that it is expected. SQLite has no last writes: nothing to add.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 13:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

GUARD = """
CREATE OR REPLACE FUNCTION opsloop_guard(ok boolean, what text) RETURNS boolean
LANGUAGE plpgsql AS $guard$
BEGIN
    IF ok THEN
        RETURN true;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'OL001',
        MESSAGE = 'opsloop: ' || what,
        HINT = 'Expected now and then when OpsLoop writers race: the transaction goes back to '
            'before this statement and writes on its locking path instead. Not a fault.';
END
$guard$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(GUARD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS opsloop_guard(boolean, text)")
