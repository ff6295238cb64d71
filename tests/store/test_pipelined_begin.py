"""PostgreSQL: a transaction whose first statement goes through `Tx.pipelined()` sends its
BEGIN in that round trip (the connection runs in autocommit meanwhile). It must stay one
transaction all through, roll back whole, and hand the pool a connection that begins its own
transactions again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from opsloop.store.database import Database


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url, pool_size=1)  # one connection: the next user gets the same
    with database.transaction() as tx:
        tx.conn.execute(text("CREATE TABLE notes (id int PRIMARY KEY)"))
    yield database
    database.dispose()


def _notes(db: Database) -> list[int]:
    with db.read() as conn:
        return list(conn.execute(text("SELECT id FROM notes ORDER BY id")).scalars())


class UseCaseFailed(RuntimeError):
    pass


def _insert_and_fail(db: Database, note: int, *, pipelined_first: bool) -> None:
    """A transaction that inserts `note` (first through the pipeline, or through SQLAlchemy
    only) and then fails."""
    with db.transaction() as tx:
        if pipelined_first:
            with tx.pipelined() as driver:
                driver.execute("INSERT INTO notes VALUES (%s)", (note,))
            tx.conn.execute(text("INSERT INTO notes VALUES (:n)"), {"n": note + 1})
        else:
            tx.conn.execute(text("INSERT INTO notes VALUES (:n)"), {"n": note})
            driver = tx.conn.connection.driver_connection
            assert driver is not None
            assert driver.autocommit is False
        raise UseCaseFailed


def test_the_pipelined_first_statement_and_the_rest_are_one_transaction(db: Database) -> None:
    with db.transaction() as tx:
        with tx.pipelined() as driver:
            first = driver.execute("SELECT pg_current_xact_id()::text")
            driver.execute("INSERT INTO notes VALUES (1)")
        later = tx.conn.execute(text("SELECT pg_current_xact_id()::text")).scalar_one()
        tx.conn.execute(text("INSERT INTO notes VALUES (2)"))
        assert first.fetchone() == (later,)
    assert _notes(db) == [1, 2]


def test_a_failure_after_the_pipelined_begin_undoes_everything(db: Database) -> None:
    with pytest.raises(UseCaseFailed):
        _insert_and_fail(db, 1, pipelined_first=True)
    assert _notes(db) == []


def test_the_next_user_of_the_connection_gets_ordinary_transactions(db: Database) -> None:
    with db.transaction() as tx, tx.pipelined() as driver:
        driver.execute("INSERT INTO notes VALUES (1)")
    # The same pooled connection, used through SQLAlchemy only: its insert must be undone.
    with pytest.raises(UseCaseFailed):
        _insert_and_fail(db, 2, pipelined_first=False)
    assert _notes(db) == [1]


def _lose_the_connection(db: Database, killer: Database) -> None:
    with db.transaction() as tx:
        with tx.pipelined() as driver:
            pid = driver.execute("SELECT pg_backend_pid()")
        with killer.transaction() as other:
            other.conn.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": pid.fetchone()[0]}
            )
        tx.conn.execute(text("INSERT INTO notes VALUES (1)"))


def test_a_connection_lost_mid_transaction_is_not_handed_on(db: Database, pg_url: str) -> None:
    killer = Database(pg_url)
    try:
        with pytest.raises(OperationalError, match="terminat"):
            _lose_the_connection(db, killer)
    finally:
        killer.dispose()
    with pytest.raises(UseCaseFailed):
        _insert_and_fail(db, 2, pipelined_first=False)
    assert _notes(db) == []
