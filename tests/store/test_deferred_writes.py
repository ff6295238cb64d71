"""PostgreSQL: writes deferred to a transaction's next round trip (`Tx.defer`). One that locks
a row other writers lock too (`shared`, a source's daily counter) goes ahead of the others,
so a writer's last round trip takes its shared locks as soon as it arrives, and the next
writer's, sent a moment later, queues behind them instead of reaching the ledger's head first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from opsloop.store.database import Database


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    with database.transaction() as tx:
        tx.conn.execute(text("CREATE TABLE written (n serial PRIMARY KEY, what text)"))
    yield database
    database.dispose()


def test_shared_writes_go_first_in_the_order_they_came(db: Database) -> None:
    insert = "INSERT INTO written (what) VALUES (%s)"
    with db.transaction() as tx:
        tx.defer(insert, ("decision 1",))
        tx.defer(insert, ("counter a",), shared=True)
        tx.defer(insert, ("decision 2",))
        tx.defer(insert, ("counter b",), shared=True)
    with db.read() as conn:
        order = list(conn.execute(text("SELECT what FROM written ORDER BY n")).scalars())
    assert order == ["counter a", "counter b", "decision 1", "decision 2"]


def test_after_a_round_trip_the_next_shared_write_leads_again(db: Database) -> None:
    insert = "INSERT INTO written (what) VALUES (%s)"
    with db.transaction() as tx:
        tx.defer(insert, ("first trip",), shared=True)
        tx.flush()
        tx.defer(insert, ("decision",))
        tx.defer(insert, ("counter",), shared=True)
    with db.read() as conn:
        order = list(conn.execute(text("SELECT what FROM written ORDER BY n")).scalars())
    assert order == ["first trip", "counter", "decision"]
