"""PostgreSQL lookups keep their plan when the planner's statistics are stale: a database
analyzed while empty, then loaded with 200,000 events and never analyzed again (autovacuum off,
as on the server this was found on). The duplicate check of a 1,000-event batch must read about
one index entry per key, not every event of the source (issue 12: a batch slowed from 0.25 s to
2 s over 100,000 events)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text

from opsloop.store.database import Database
from opsloop.store.events import find_by_idempotency
from tests.conftest import OpsFactory

pytestmark = pytest.mark.slow

LOADED = 200_000


@pytest.fixture
def stale_db(pg_url: str) -> Iterator[Database]:
    db = Database(pg_url)
    with db.transaction() as tx:
        conn = tx.conn
        conn.execute(text("ALTER TABLE events SET (autovacuum_enabled = false)"))
        conn.execute(text("ANALYZE events"))  # the statistics now say: empty
        conn.execute(
            text(
                "INSERT INTO events (source, type, subject, occurred_at, received_at, payload, "
                "idempotency_key) SELECT 'api', 'page.viewed', 'visitor:' || n, now(), now(), "
                "'{}'::jsonb, 'bulk-' || n FROM generate_series(1, :n) AS n"
            ),
            {"n": LOADED},
        )
    with db.read() as conn:
        assert conn.execute(
            text("SELECT reltuples <= 0 FROM pg_class WHERE relname = 'events'")
        ).scalar_one(), "the statistics must still say the table is empty"
    yield db
    db.dispose()


def event_rows_read(conn: Connection) -> int:
    """Rows of `events` this transaction has read, by index or by scan."""
    row = conn.execute(
        text(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_xact_user_tables WHERE relname = 'events'"
        )
    ).scalar_one()
    return int(row)


def test_the_duplicate_check_reads_one_row_per_key_whatever_the_statistics(
    stale_db: Database,
) -> None:
    wanted = [("api", f"bulk-{n}") for n in range(1, LOADED, LOADED // 1000)]
    wanted += [("api", f"new-{n}") for n in range(100)]
    with stale_db.transaction() as tx:
        before = event_rows_read(tx.conn)
        found = find_by_idempotency(tx.conn, wanted)
        read = event_rows_read(tx.conn) - before
    assert len(found) == 1000
    assert read <= 2 * len(wanted), f"read {read} event rows for {len(wanted)} keys"


def test_a_batch_over_two_hundred_thousand_events_stores_the_new_and_spots_the_repeats(
    stale_db: Database, pg_url: str, make_ops: OpsFactory
) -> None:
    ops = make_ops(pg_url)
    repeats = [
        {"type": "page.viewed", "subject": f"visitor:{n}", "idempotency_key": f"bulk-{n}"}
        for n in range(1, 500_001, 1000)
        if n <= LOADED
    ]
    fresh = [
        {"type": "lead.created", "subject": f"lead:{n}", "idempotency_key": f"lead-{n}"}
        for n in range(1000 - len(repeats))
    ]
    answer = ops.ingest.body(json.dumps({"events": repeats + fresh}).encode())
    statuses = [accepted.status for accepted in answer.accepted]
    assert statuses.count("duplicate") == len(repeats) == 200
    assert statuses.count("created") == len(fresh) == 800


def test_every_connection_plans_for_the_tables_as_they_are_now(pg_url: str) -> None:
    """psycopg prepares a statement after its fifth run; a generic plan kept from when a table
    was nearly empty scanned it whole once it had grown (batches fell to 150 events/s). Every
    connection of OpsLoop's asks PostgreSQL for a plan made at each run instead."""
    db = Database(pg_url)
    try:
        with db.read() as conn:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    finally:
        db.dispose()
