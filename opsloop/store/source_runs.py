"""Runs of pulled sources (one row per sync or backfill), and the sources' checkpoints."""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from opsloop.store.database import Database
from opsloop.store.schema import source_runs, sources

COUNTERS = ("rows_in", "events_stored", "duplicates", "rejected", "ignored")


def lock_source(conn: Connection, name: str) -> dict[str, Any] | None:
    """The source's row, locked until the transaction ends (PostgreSQL; a SQLite write
    transaction holds the whole database already), so two claims cannot interleave."""
    row = conn.execute(select(sources).where(sources.c.name == name).with_for_update()).first()
    return dict(row._mapping) if row else None


def running(conn: Connection, source: str) -> list[dict[str, Any]]:
    query = (
        select(source_runs)
        .where(source_runs.c.source == source, source_runs.c.status == "running")
        .order_by(source_runs.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def start_run(
    conn: Connection,
    *,
    source: str,
    mode: str,
    at: datetime,
    checkpoint: dict[str, Any] | None,
) -> int:
    new_id: int = conn.execute(
        insert(source_runs).returning(source_runs.c.id),
        {
            "source": source,
            "mode": mode,
            "status": "running",
            "started_at": at,
            "heartbeat_at": at,
            **dict.fromkeys(COUNTERS, 0),
            "checkpoint_before": checkpoint,
            "checkpoint_after": checkpoint,
        },
    ).scalar_one()
    return new_id


def update_run(conn: Connection, run_id: int, **values: Any) -> None:
    conn.execute(update(source_runs).where(source_runs.c.id == run_id).values(**values))


def fail_running(conn: Connection, run_ids: list[int], *, at: datetime, error: str) -> int:
    """Mark runs that are still `running` as failed (their worker is gone)."""
    if not run_ids:
        return 0
    statement = (
        update(source_runs)
        .where(source_runs.c.id.in_(run_ids), source_runs.c.status == "running")
        .values(status="failed", finished_at=at, error=error)
    )
    return conn.execute(statement).rowcount


def get_run(conn: Connection, run_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(source_runs).where(source_runs.c.id == run_id)).first()
    return dict(row._mapping) if row else None


def recent_runs(conn: Connection, source: str, *, limit: int) -> list[dict[str, Any]]:
    query = (
        select(source_runs)
        .where(source_runs.c.source == source)
        .order_by(source_runs.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def save_checkpoint(
    conn: Connection, source: str, checkpoint: dict[str, Any] | None, *, at: datetime
) -> None:
    conn.execute(
        update(sources)
        .where(sources.c.name == source)
        .values(checkpoint=checkpoint, checkpoint_at=at)
    )


def set_next_sync(conn: Connection, source: str, at: datetime | None) -> None:
    conn.execute(update(sources).where(sources.c.name == source).values(next_sync_at=at))


def claim_due(conn: Connection, source: str, *, seen: datetime, next_at: datetime) -> bool:
    """Move a due source's next sync on, if no other process did since it was read: the one
    whose update counts enqueues the sync."""
    statement = (
        update(sources)
        .where(
            sources.c.name == source,
            sources.c.enabled.is_(True),
            sources.c.next_sync_at == seen,
        )
        .values(next_sync_at=next_at)
    )
    return conn.execute(statement).rowcount == 1


_MEMORY_LOCKS: dict[str, threading.Lock] = {}


@contextmanager
def run_lock(db: Database, source: str) -> Iterator[bool]:
    """Hold the source's run lock for the block; yields False when someone else holds it.

    PostgreSQL: a session advisory lock; a SQLite file: an flock on a file beside it. Either
    way the lock goes when its holder does — PostgreSQL drops a dead client's session, the
    kernel a dead process's file locks — so a sync killed mid-run never blocks the next one,
    however recent its last heartbeat."""
    if not db.is_sqlite:
        key = int.from_bytes(
            hashlib.sha256(f"opsloop.sync:{source}".encode()).digest()[:8], "big", signed=True
        )
        with db.engine.connect() as conn:
            held = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
            conn.commit()
            if not held:
                yield False
                return
            try:
                yield True
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()
        return
    database = db.url.database or ""
    if database in ("", ":memory:"):  # one process: a thread lock is enough
        lock = _MEMORY_LOCKS.setdefault(source, threading.Lock())
        if not lock.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            lock.release()
        return
    path = Path(database)
    with (path.parent / f"{path.name}.sync-{source}.lock").open("a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
