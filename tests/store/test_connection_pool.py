"""A pooled PostgreSQL connection that died while idle (the server restarted, an admin ended
it) is replaced before a statement runs on it: the next request works, nobody sees an error."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from opsloop.store import database
from opsloop.store.database import Database


def test_a_connection_killed_while_idle_is_replaced_on_checkout(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(pg_url, pool_size=1)
    try:
        with db.read() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        killer = Database(pg_url)
        try:
            with killer.transaction() as tx:
                ended = tx.conn.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": first}
                ).scalar_one()
            assert ended
        finally:
            killer.dispose()
        monkeypatch.setattr(database, "PING_AFTER", 0.0)  # the connection has been idle enough
        with db.read() as conn:
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
        with db.transaction() as tx:  # and the replacement holds a normal transaction
            assert tx.conn.execute(text("SELECT 1")).scalar_one() == 1
        with db.snapshot() as conn:
            assert conn.execute(text("SHOW transaction_isolation")).scalar() == "repeatable read"
    finally:
        db.dispose()
