"""Retention: what the ledger lets go of, and giving the room back.

A periodic job (every `retention_interval_minutes`, and `opsloop db purge` on demand):

1. deletes what the retention settings let go, a few hundred rows per transaction, each
   transaction audited with its count (`ledger.purged`): old events that no decision or
   outcome refers to and no active playbook's features still read (then the profiles left
   with no traits, no events and no decision), the raw bodies of
   quarantined items already replayed or discarded, background jobs that gave up, cached
   language-model answers, expired sessions and failed sign-ins past their window;
2. on SQLite, gives free pages back to the file system (`PRAGMA incremental_vacuum`, in
   short transactions) and copies the WAL into the database file, emptying the WAL
   (`PRAGMA wal_checkpoint(TRUNCATE)`), so the files stop growing once retention applies.

Decisions, their explanations, reviews, actions, outcomes and the audit trail are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from opsloop.service.context import Context
from opsloop.store import audit
from opsloop.store import retention as store
from opsloop.store.sizes import TableSize, table_sizes

log = logging.getLogger(__name__)

VACUUM_STEP = 1000
"""Pages (4 KiB each) given back per transaction."""
VACUUM_STEPS = 250
"""At most this many steps per run (about 1 GB), so a run always ends."""


@dataclass(frozen=True, slots=True)
class Purged:
    events: int = 0
    profiles: int = 0
    """Profiles with no traits whose events are all gone and that no decision is about (an
    anonymous visitor's, once its page views were purged)."""
    signal_bodies: int = 0
    failed_jobs: int = 0
    llm_cache: int = 0
    expired_sessions: int = 0
    login_failures: int = 0
    vacuumed_pages: int = 0
    """SQLite pages given back to the file system."""
    wal_emptied: bool | None = None
    """SQLite: whether the checkpoint copied the whole WAL and reset it (False: a reader
    held it; the next run tries again). None on PostgreSQL."""
    events_before: datetime | None = None
    """Events older than this were candidates (later than `retain_events_days` ago when a
    feature window is longer)."""
    kept: list[str] = field(default_factory=list)
    """Why events that are old enough were kept anyway (feature windows)."""

    @property
    def deleted(self) -> int:
        return (
            self.events
            + self.profiles
            + self.signal_bodies
            + self.failed_jobs
            + self.llm_cache
            + self.expired_sessions
            + self.login_failures
        )


@dataclass(frozen=True, slots=True)
class EventPolicy:
    before: datetime
    keep_types: store.Kinds
    """(subject kind, event type): every such event stays."""
    keep_newest: store.Kinds
    """(subject kind, event type): the newest such event of each subject stays."""
    kept: list[str]


def purge(ctx: Context, *, actor: str = "retention") -> Purged:
    """Delete what the retention settings let go, then give the room back."""
    s = ctx.settings
    now = ctx.clock()
    counts: dict[str, int] = {}
    policy = event_policy(ctx, now) if s.retain_events_days is not None else None
    if policy is not None:
        counts["events"] = _purge_events(ctx, policy, actor, now)
        counts["profiles"] = _purge_profiles(ctx, policy.before, actor, now)
    if s.retain_signal_bodies_days is not None:
        before = now - timedelta(days=s.retain_signal_bodies_days)
        counts["signal_bodies"] = _purge_bodies(ctx, before, actor, now)
    steps: list[tuple[str, Callable[[Connection, int], int]]] = [
        (
            "expired_sessions",
            lambda conn, n: store.delete_expired_sessions(conn, before=now, limit=n),
        ),
        (
            "login_failures",
            lambda conn, n: store.delete_login_failures(
                conn, before=now - timedelta(seconds=s.login_window_seconds), limit=n
            ),
        ),
    ]
    if s.retain_failed_jobs_days is not None:
        jobs_before = now - timedelta(days=s.retain_failed_jobs_days)
        steps.append(
            (
                "failed_jobs",
                lambda conn, n: ctx.runtime.forget_failed(conn, before=jobs_before, limit=n),
            )
        )
    if s.retain_llm_cache_days is not None:
        cache_before = now - timedelta(days=s.retain_llm_cache_days)
        steps.append(
            (
                "llm_cache",
                lambda conn, n: store.delete_llm_cache(conn, before=cache_before, limit=n),
            )
        )
    for name, step in steps:
        counts[name] = _purge_rows(ctx, name, step, actor, now)
    vacuumed = give_back(ctx)
    checkpoint = ctx.db.checkpoint()
    purged = Purged(
        **counts,
        vacuumed_pages=vacuumed,
        wal_emptied=None if checkpoint is None else checkpoint[0] == 0,
        events_before=policy.before if policy else None,
        kept=policy.kept if policy else [],
    )
    if purged.deleted or vacuumed:
        log.info(
            "retention: %d rows deleted, %d pages given back",
            purged.deleted,
            vacuumed,
            extra={"purged": counts},
        )
    return purged


def event_policy(ctx: Context, now: datetime) -> EventPolicy:
    """Which events may go: older than `retain_events_days`, but never inside an active
    playbook's longest feature window; of the event types a feature reads over all history,
    none (`count`, `sum` … with no `within`) or all but the newest per subject (`days_since`
    and `last` with no `within` and no `where`)."""
    days = ctx.settings.retain_events_days
    assert days is not None
    keep = timedelta(days=days)
    keep_types: set[tuple[str, str]] = set()
    keep_newest: set[tuple[str, str]] = set()
    kept: list[str] = []
    for name, playbook in sorted(ctx.catalog.active().items()):
        kind = playbook.compiled.playbook.subject  # features read the history of these only
        for feature in playbook.compiled.features:
            if not feature.event_types:
                continue
            pairs = {(kind, type_) for type_ in feature.event_types}
            types = ", ".join(sorted(feature.event_types))
            if feature.within is not None:
                if feature.within > keep:
                    keep = feature.within
                    kept.append(
                        f"events of the last {_days(feature.within)}: feature "
                        f"{feature.name} of playbook {name} reads them"
                    )
            elif feature.kind in ("days_since", "last") and feature.where is None:
                keep_newest |= pairs
                kept.append(
                    f"the newest {types} of each {kind}: feature {feature.name} of "
                    f"playbook {name} reads it"
                )
            else:
                keep_types |= pairs
                kept.append(
                    f"every {types} event of a {kind}: feature {feature.name} of playbook "
                    f"{name} reads all of them (give it a `within` to let them go)"
                )
    return EventPolicy(now - keep, frozenset(keep_types), frozenset(keep_newest - keep_types), kept)


def give_back(ctx: Context) -> int:
    """SQLite: hand free pages back to the file system, a step at a time."""
    if not ctx.db.is_sqlite:
        return 0
    total = 0
    for _ in range(VACUUM_STEPS):
        freed = ctx.db.incremental_vacuum(VACUUM_STEP)
        total += freed
        if freed < VACUUM_STEP:
            break
    return total


def _purge_events(ctx: Context, policy: EventPolicy, actor: str, now: datetime) -> int:
    batch = ctx.settings.retention_batch_rows
    before, keep_types, keep_newest = policy.before, policy.keep_types, policy.keep_newest
    total, after = 0, 0
    while True:
        with ctx.db.read() as conn:
            ids = store.event_candidates(
                conn,
                before=before,
                keep_types=keep_types,
                keep_newest=keep_newest,
                after_id=after,
                limit=batch,
            )
        if not ids:
            return total
        with ctx.db.transaction() as tx:
            deleted = store.delete_events(
                tx.conn, ids, before=before, keep_types=keep_types, keep_newest=keep_newest
            )
            _audit(tx.conn, actor, now, {"events": deleted, "before": policy.before.isoformat()})
        total += deleted
        after = ids[-1]


def _purge_profiles(ctx: Context, before: datetime, actor: str, now: datetime) -> int:
    batch = ctx.settings.retention_batch_rows
    total, after = 0, ""
    while True:
        with ctx.db.read() as conn:
            subjects, last = store.profile_candidates(conn, before=before, after=after, limit=batch)
        if last is None:
            return total
        if subjects:
            with ctx.db.transaction() as tx:
                deleted = store.delete_profiles(tx.conn, subjects, before=before)
                _audit(tx.conn, actor, now, {"profiles": deleted, "before": before.isoformat()})
            total += deleted
        after = last


def _purge_bodies(ctx: Context, before: datetime, actor: str, now: datetime) -> int:
    batch = ctx.settings.retention_batch_rows
    total = 0
    while True:
        with ctx.db.read() as conn:
            ids = store.body_candidates(conn, before=before, limit=batch)
        if not ids:
            return total
        with ctx.db.transaction() as tx:
            emptied = store.empty_bodies(tx.conn, ids, before=before)
            _audit(tx.conn, actor, now, {"signal_bodies": emptied, "before": before.isoformat()})
        total += emptied
        if emptied == 0:
            return total


def _purge_rows(
    ctx: Context,
    name: str,
    step: Callable[[Connection, int], int],
    actor: str,
    now: datetime,
) -> int:
    batch = ctx.settings.retention_batch_rows
    total = 0
    while True:
        with ctx.db.transaction() as tx:
            deleted = step(tx.conn, batch)
            if deleted:
                _audit(tx.conn, actor, now, {name: deleted})
        total += deleted
        if deleted < batch:
            return total


def _audit(conn: Connection, actor: str, now: datetime, detail: dict[str, object]) -> None:
    """Each purge transaction says what it deleted: counts, never the rows."""
    if not any(isinstance(v, int) and v for v in detail.values()):
        return
    audit.record(conn, now, actor, "ledger.purged", "retention", detail)


def _days(span: timedelta) -> str:
    return f"{span.days} days" if span.days != 1 else "day"


# --- sizes ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DbStats:
    backend: str
    tables: list[TableSize]
    file_bytes: int | None
    """SQLite: the database file; PostgreSQL: the whole database (`pg_database_size`)."""
    wal_bytes: int | None
    free_bytes: int | None
    """SQLite: pages on the free list (an incremental vacuum gives them back)."""
    auto_vacuum: str | None
    """SQLite: `incremental` (the file can shrink), `none` (run `opsloop db vacuum` once)."""
    retention: dict[str, int | None]
    """The retention settings in force (None: kept forever)."""


def stats(ctx: Context) -> DbStats:
    db = ctx.db
    with db.read() as conn:
        tables = table_sizes(conn)
        if db.is_sqlite:
            pages = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
            free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()) * pages
            mode = int(conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one())
            auto_vacuum: str | None = {0: "none", 1: "full", 2: "incremental"}.get(mode, str(mode))
            file_bytes = wal_bytes = None
            if db.path is not None:
                file_bytes = db.path.stat().st_size
                wal = db.path.with_name(db.path.name + "-wal")
                wal_bytes = wal.stat().st_size if wal.exists() else 0
        else:
            file_bytes = int(
                conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
            )
            wal_bytes = free = None
            auto_vacuum = None
    s = ctx.settings
    return DbStats(
        backend=db.backend,
        tables=tables,
        file_bytes=file_bytes,
        wal_bytes=wal_bytes,
        free_bytes=free if db.is_sqlite else None,
        auto_vacuum=auto_vacuum,
        retention={
            "retain_events_days": s.retain_events_days,
            "retain_signal_bodies_days": s.retain_signal_bodies_days,
            "retain_failed_jobs_days": s.retain_failed_jobs_days,
            "retain_llm_cache_days": s.retain_llm_cache_days,
            "retention_interval_minutes": s.retention_interval_minutes,
        },
    )


def vacuum(ctx: Context) -> DbStats:
    """`opsloop db vacuum`: rebuild the database (see `Database.vacuum`), then its sizes."""
    ctx.db.vacuum()
    return stats(ctx)
