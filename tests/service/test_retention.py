"""Retention on SQLite and PostgreSQL: old events nothing needs are purged in audited batches
while everything a decision, an outcome or an active playbook's features still reads stays;
quarantined bodies, failed jobs, expired sessions and old failed sign-ins go; a new SQLite
file gives the room back; `db_stats` shows every table."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from opsloop.core.errors import NotFound, Unauthorized
from opsloop.service import OpsLoop
from opsloop.store import quarantine as quarantine_store
from opsloop.store.schema import audit, events, metadata
from tests.conftest import Clock, OpsFactory, lead_playbook

START = Clock().now + timedelta(days=100)


def send(
    ops: OpsLoop, clock: Clock, days_ago: float, type_: str, subject: str, **extra: Any
) -> None:
    """An event that occurs, and arrives, `days_ago` days before START (send them in order)."""
    clock.now = START - timedelta(days=days_ago)
    body = {"type": type_, "subject": subject, "occurred_at": clock.now.isoformat(), **extra}
    ops.ingest.body(json.dumps(body).encode())


def kept(ops: OpsLoop) -> list[tuple[str, str, int]]:
    """(subject, type, days before START) of every stored event."""
    with ops.db.read() as conn:
        rows = conn.execute(sa.select(events.c.subject, events.c.type, events.c.occurred_at))
        return sorted((s, t, round((START - at).total_seconds() / 86400)) for s, t, at in rows)


@pytest.fixture
def ops(make_ops: OpsFactory, database_url: str, clock: Clock) -> OpsLoop:
    return make_ops(database_url, playbooks=[lead_playbook()], retain_events_days=30)


def test_old_events_nothing_needs_are_purged_and_the_rest_kept(ops: OpsLoop, clock: Clock) -> None:
    send(ops, clock, 60, "page.viewed", "lead:1", payload={"path": "/"})
    send(ops, clock, 50, "page.viewed", "lead:1", payload={"path": "/blog"})
    send(ops, clock, 50, "newsletter.opened", "lead:1")
    send(ops, clock, 48, "page.viewed", "lead:1", payload={"path": "/pricing"})
    send(ops, clock, 45, "lead.created", "lead:1", traits={"email": "a@example.com"})
    send(ops, clock, 40, "deal.won", "lead:1", payload={"amount": 5000})
    send(ops, clock, 39, "page.viewed", "visitor:9f3", payload={"path": "/"})
    send(ops, clock, 38, "page.viewed", "visitor:9f3", payload={"path": "/pricing"})
    send(ops, clock, 10, "page.viewed", "lead:2", payload={"path": "/"})
    clock.now = START

    purged = ops.purge(actor="test")

    assert purged.events == 5  # a visitor's views too: the playbook decides on leads only
    assert purged.profiles == 1  # the visitor's profile, empty now; the leads' stay
    with pytest.raises(NotFound):
        ops.ingest.get_entity("visitor:9f3")
    assert ops.ingest.get_entity("lead:2")["subject"] == "lead:2"
    assert kept(ops) == [
        ("lead:1", "deal.won", 40),  # the decision's outcome
        ("lead:1", "lead.created", 45),  # the decision's trigger
        ("lead:1", "page.viewed", 48),  # the newest view: days_since_last_visit reads it
        ("lead:2", "page.viewed", 10),  # younger than 30 days
    ]
    assert purged.events_before == START - timedelta(days=30)
    assert purged.kept == [
        "the newest page.viewed of each lead: feature days_since_last_visit of playbook "
        "lead-qualification reads it"
    ]
    with ops.db.read() as conn:
        purges = conn.execute(
            sa.select(audit.c.actor, audit.c.detail)
            .where(audit.c.verb == "ledger.purged")
            .order_by(audit.c.id)
        ).all()
    assert [(actor, detail) for actor, detail in purges] == [  # counts, never the rows
        ("test", {"events": 5, "before": purged.events_before.isoformat()}),
        ("test", {"profiles": 1, "before": purged.events_before.isoformat()}),
    ]
    decision = ops.decide.list_decisions(subject="lead:1")[0]
    assert ops.decide.decision_detail(decision["id"])["trigger"]["type"] == "lead.created"
    assert ops.verify_ledger().intact
    assert ops.purge(actor="test").events == 0  # nothing more to let go


def test_a_feature_window_longer_than_the_setting_keeps_its_events(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook()], retain_events_days=7)
    for days_ago in (40, 20, 1):
        send(ops, clock, days_ago, "page.viewed", "lead:5", payload={"path": "/pricing"})
    clock.now = START

    purged = ops.purge(actor="test")

    assert kept(ops) == [("lead:5", "page.viewed", 1), ("lead:5", "page.viewed", 20)]
    assert purged.events_before == START - timedelta(days=30)
    assert (
        "events of the last 30 days: feature pricing_views_30d of playbook lead-qualification "
        "reads them"
    ) in purged.kept


def test_nothing_is_purged_without_an_event_retention_setting(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook()])
    send(ops, clock, 90, "newsletter.opened", "lead:1")
    clock.now = START

    purged = ops.purge(actor="test")

    assert (purged.events, purged.deleted) == (0, 0)
    assert kept(ops) == [("lead:1", "newsletter.opened", 90)]


def test_bodies_of_quarantined_items_dealt_with_are_emptied_and_held_ones_kept(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, retain_signal_bodies_days=7)
    held = ops.ingest.quarantine(source="api", body=b'{"type": 1}', error=ValueError("bad type"))
    done = ops.ingest.quarantine(source="api", body=b'{"type": 2}', error=ValueError("bad type"))
    with ops.db.transaction() as tx:
        assert quarantine_store.mark_replayed(tx.conn, done)
    clock.advance(days=8)

    purged = ops.purge(actor="test")

    assert purged.signal_bodies == 1
    emptied = ops.ingest.get_quarantined(done)
    assert (emptied["body"], emptied["body_truncated"], emptied["reason"]) == (
        "",
        True,
        ops.ingest.get_quarantined(held)["reason"],
    )
    assert ops.ingest.get_quarantined(held)["body"] == '{"type": 1}'


def test_failed_jobs_go_after_thirty_days_by_default(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url)

    def explode(jobs: list[Any]) -> None:
        raise RuntimeError("boom")

    ops.runtime.register("test.explode", explode, max_attempts=1)
    with ops.db.transaction() as tx:
        ops.runtime.enqueue(tx, "test.explode", [({}, None)])
    ops.run_jobs()
    assert len(ops.runtime.failed_jobs()) == 1  # type: ignore[attr-defined]

    clock.advance(days=29)
    assert ops.purge(actor="test").failed_jobs == 0
    clock.advance(days=2)
    assert ops.purge(actor="test").failed_jobs == 1
    assert ops.runtime.failed_jobs() == []  # type: ignore[attr-defined]


def test_expired_sessions_and_old_failed_sign_ins_go(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url)
    ops.accounts.create_first_owner("ana@example.com", "correct horse battery")
    ops.accounts.sign_in("ana@example.com", "correct horse battery", ip="10.0.0.1")
    with pytest.raises(Unauthorized):
        ops.accounts.sign_in("ana@example.com", "wrong", ip="10.0.0.2")
    clock.advance(days=15)  # past session_days (14) and the sign-in window

    purged = ops.purge(actor="test")

    assert (purged.expired_sessions, purged.login_failures) == (1, 1)
    stats = {size.name: size.rows for size in ops.db_stats().tables}
    assert (stats["sessions"], stats["login_failures"]) == (0, 0)


def test_the_retention_job_runs_on_its_schedule(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, retain_events_days=30)
    clock.now = START
    ops.run_jobs()  # the schedules start, each with a first run
    send(ops, clock, 90, "newsletter.opened", "lead:1")
    clock.now = START + timedelta(minutes=59)
    ops.run_jobs()
    assert kept(ops) == [("lead:1", "newsletter.opened", 90)]

    clock.now = START + timedelta(minutes=61)
    ops.run_jobs()

    assert kept(ops) == []


def test_db_stats_shows_every_table_and_the_retention_in_force(ops: OpsLoop, clock: Clock) -> None:
    send(ops, clock, 1, "lead.created", "lead:1", traits={"email": "a@example.com"})

    stats = ops.db_stats()

    sizes = {size.name: size for size in stats.tables}
    assert set(sizes) == set(metadata.tables)
    assert (sizes["decisions"].rows, sizes["events"].rows) == (1, 1)
    assert sizes["decisions"].table_bytes
    assert sizes["events"].index_bytes
    assert stats.retention["retain_events_days"] == 30
    assert stats.retention["retain_failed_jobs_days"] == 30
    assert stats.retention["retain_llm_cache_days"] is None
    assert stats.file_bytes
    if stats.backend == "sqlite":
        assert stats.auto_vacuum == "incremental"
        assert stats.wal_bytes is not None


def test_a_new_sqlite_file_gives_the_room_back_after_a_purge(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock
) -> None:
    ops = make_ops(sqlite_url, retain_events_days=30)
    clock.now = START - timedelta(days=90)
    for batch in range(6):
        ops.ingest.body(
            json.dumps(
                {
                    "events": [
                        {
                            "type": "newsletter.opened",
                            "subject": f"lead:{batch}-{n}",
                            "payload": {"note": "x" * 2000},
                        }
                        for n in range(500)
                    ]
                }
            ).encode()
        )
    ops.db.checkpoint()  # the events are in the database file itself
    path = Path(ops.db.url.database or "")
    before = path.stat().st_size
    clock.now = START

    purged = ops.purge(actor="test")

    assert purged.events == 3000
    assert purged.vacuumed_pages > 0
    assert purged.wal_emptied is True
    assert path.stat().st_size < before / 4
    assert ops.db_stats().free_bytes == 0


def test_db_vacuum_lets_an_older_sqlite_file_shrink(make_ops: OpsFactory, tmp_path: Path) -> None:
    path = tmp_path / "older.db"
    conn = sqlite3.connect(path)  # a file made before retention: no auto_vacuum
    conn.execute("CREATE TABLE made_by_an_older_version (x)")
    conn.close()
    ops = make_ops(f"sqlite:///{path}")
    assert ops.db_stats().auto_vacuum == "none"

    after = ops.vacuum_db()

    assert after.auto_vacuum == "incremental"
