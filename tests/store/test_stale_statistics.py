"""PostgreSQL lookups keep their plan when the planner's statistics are stale: a database
analyzed while empty, then loaded with 200,000 events and never analyzed again (autovacuum off,
as on the server this was found on). The duplicate check of a 1,000-event batch must read about
one index entry per key, not every event of the source (issue 12: a batch slowed from 0.25 s to
2 s over 100,000 events)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, text

from opsloop.store.database import Database
from opsloop.store.events import (
    TraitPatch,
    apply_patches,
    fetch_history,
    find_by_idempotency,
    get_profiles,
    touch_entities,
)
from tests.conftest import OpsFactory

pytestmark = pytest.mark.slow

LOADED = 200_000


def loaded_while_stale(pg_url: str, table: str, insert: str) -> Database:
    """The database with `table` analyzed while empty, autovacuum off, then `LOADED` rows put
    in by `insert` (an INSERT … SELECT over `generate_series(1, :n)`)."""
    db = Database(pg_url)
    with db.transaction() as tx:
        conn = tx.conn
        conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
        conn.execute(text(f"ANALYZE {table}"))  # the statistics now say: empty
        conn.execute(text(insert), {"n": LOADED})
    with db.read() as conn:
        assert conn.execute(
            text("SELECT reltuples <= 0 FROM pg_class WHERE relname = :table"), {"table": table}
        ).scalar_one(), "the statistics must still say the table is empty"
    return db


@pytest.fixture
def stale_db(pg_url: str) -> Iterator[Database]:
    db = loaded_while_stale(
        pg_url,
        "events",
        "INSERT INTO events (source, type, subject, occurred_at, received_at, payload, "
        "idempotency_key) SELECT 'api', 'page.viewed', 'visitor:' || n, now(), now(), "
        "'{}'::jsonb, 'bulk-' || n FROM generate_series(1, :n) AS n",
    )
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


@pytest.mark.parametrize("reserve", [None, {"events": 100, "decisions": 100}])
def test_the_duplicate_check_reads_one_row_per_key_whatever_the_statistics(
    stale_db: Database, reserve: dict[str, int] | None
) -> None:
    wanted = [("api", f"bulk-{n}") for n in range(1, LOADED, LOADED // 1000)]
    wanted += [("api", f"new-{n}") for n in range(100)]
    with stale_db.transaction() as tx:
        before = event_rows_read(tx.conn)
        found = find_by_idempotency(tx.conn, wanted, reserve=reserve)
        read = event_rows_read(tx.conn) - before
    assert len(found) == 1000
    assert found[("api", "bulk-1")] == 1
    assert read <= 2 * len(wanted), f"read {read} event rows for {len(wanted)} keys"


def test_a_batchs_history_reads_its_own_subjects_events_whatever_the_statistics(
    stale_db: Database,
) -> None:
    """The decisions of a 1,000-event batch read their subjects' history (and their aliases')
    in one statement: one index probe per subject, not a scan of the 200,000 events."""
    subjects = [f"visitor:{n}" for n in range(1, LOADED, LOADED // 1000)]
    with stale_db.transaction() as tx:
        before = event_rows_read(tx.conn)
        history = fetch_history(tx.conn, subjects, {"page.viewed"}, since=None, until=None)
        read = event_rows_read(tx.conn) - before
    assert len(history) == len(subjects) == 1000
    assert all(len(events) == 1 for events in history.values())
    assert read <= 2 * len(subjects), f"read {read} event rows for {len(subjects)} subjects"


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


@pytest.fixture
def stale_entities(pg_url: str) -> Iterator[Database]:
    db = loaded_while_stale(
        pg_url,
        "entities",
        "INSERT INTO entities (subject, kind, traits, first_seen_at, last_seen_at, updated_at) "
        "SELECT 'lead:' || n, 'lead', '{\"plan\": \"free\"}'::jsonb, now(), now(), now() "
        "FROM generate_series(1, :n) AS n",
    )
    yield db
    db.dispose()


def entity_rows_read(conn: Connection) -> int:
    row = conn.execute(
        text(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_xact_user_tables WHERE relname = 'entities'"
        )
    ).scalar_one()
    return int(row)


def test_a_batchs_trait_merge_reads_its_own_subjects_whatever_the_statistics(
    stale_entities: Database,
) -> None:
    """The batch path touches 1,000 subjects (an upsert returning their traits) and writes
    their merged traits back in one statement each; neither may scan the other 199,000."""
    now = datetime.now(UTC)
    subjects = [f"lead:{n}" for n in range(1, LOADED, LOADED // 1000)]
    with stale_entities.transaction() as tx:
        before = entity_rows_read(tx.conn)
        profiles = touch_entities(tx.conn, dict.fromkeys(subjects, (now, now)), now)
        patches = {s: [TraitPatch({"plan": "pro"}, "crm", trusted=True)] for s in subjects}
        apply_patches(tx.conn, profiles, patches, now, protected=())
        read = entity_rows_read(tx.conn) - before
    assert read <= 3 * len(subjects), f"read {read} entity rows for {len(subjects)} subjects"
    with stale_entities.read() as conn:
        after = get_profiles(conn, [subjects[0], subjects[-1], "lead:2"])
    assert after.traits[subjects[0]] == after.traits[subjects[-1]] == {"plan": "pro"}
    assert after.trusted[subjects[0]] == {"plan": "crm"}
    assert after.traits["lead:2"] == {"plan": "free"}, "a subject outside the batch is untouched"


def test_every_connection_runs_without_jit_compilation(pg_url: str) -> None:
    """With statistics that say the tables are empty, a batch's history read is estimated
    above PostgreSQL's JIT thresholds once `events` holds some 60,000 rows; compiling it took
    40-60 ms a batch. OpsLoop's short statements never gain from JIT, so it is off."""
    db = Database(pg_url)
    try:
        with db.read() as conn:
            assert conn.execute(text("SHOW jit")).scalar() == "off"
        with db.transaction() as tx:
            assert tx.conn.execute(text("SHOW jit")).scalar() == "off"
    finally:
        db.dispose()
