"""PostgreSQL: a last write sent with its COMMIT fails `opsloop_guard` when it cannot do its
work (the ledger's head moved on). What the database's log shows then must say what happened
and that it is expected, not "division by zero"."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from opsloop.store.database import GUARD_FAILED, Database


@pytest.fixture
def driver(pg_url: str) -> Iterator[psycopg.Connection]:
    db = Database(pg_url)
    db.migrate()
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        yield raw
        raw.rollback()
    db.dispose()


def test_a_guard_that_holds_lets_the_statement_run(driver: psycopg.Connection) -> None:
    assert driver.execute("SELECT opsloop_guard(true, 'never said')").fetchone() == (True,)


def test_a_failed_guard_says_what_happened_and_that_it_is_expected(
    driver: psycopg.Connection,
) -> None:
    with pytest.raises(psycopg.Error) as failed:
        driver.execute("SELECT opsloop_guard(false, 'the head of the audit ledger moved on')")
    error = failed.value
    assert error.sqlstate == GUARD_FAILED
    assert error.diag.message_primary == "opsloop: the head of the audit ledger moved on"
    assert error.diag.message_hint is not None
    assert "Expected" in error.diag.message_hint
    assert "Not a fault" in error.diag.message_hint
