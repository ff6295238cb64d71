"""Syncing pulled sources: run a connector, store what it read, keep its checkpoint, record the run.

One run per source at a time. For each batch the connector yields:

1. its records go through `signals.take_records` (mapped, checked, stored once, decided on —
   or, in a backfill, stored as history that no playbook runs on);
2. what the connector could not read is quarantined with its place;
3. *then* the batch's checkpoint is saved, in its own transaction: a run killed before this
   reads the batch again next time, and the records' keys store it once;
4. the batch's `after_commit` callbacks run (a drop folder moves the finished file aside).

A failure ends the run `failed` with the error and keeps the last good checkpoint; the next
run starts there. A backfill reads from the beginning and never moves the live checkpoint.

Scheduling: the `SYNC_DUE` periodic job, every minute, enqueues one `SYNC_SOURCE` job per
enabled pulled source whose `next_sync_at` has come (so a slow source holds up no other), and
moves `next_sync_at` on by the source's interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from opsloop.core.errors import Conflict, InvalidInput, NotFound, OpsLoopError
from opsloop.core.sources import SourceSpec
from opsloop.perception import connectors
from opsloop.runtime.base import Job
from opsloop.service.context import Context
from opsloop.service.ingest import signals, sources
from opsloop.service.ingest.sources import StoredSource
from opsloop.service.jobs import SYNC_SOURCE
from opsloop.store import audit
from opsloop.store import source_registry as registry_store
from opsloop.store import source_runs as store

log = logging.getLogger(__name__)

SCHEDULE = "schedule"
"""The actor of the runs the schedule starts."""
WORKER_DIED = "worker died: the process running this sync stopped before it finished"

Mode = Literal["sync", "backfill"]


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    source: str
    mode: str
    status: str
    """running | ok | failed"""
    started_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime
    rows_in: int
    """Records and unreadable input the connector read."""
    events_stored: int
    duplicates: int
    rejected: int
    ignored: int
    error: str | None
    checkpoint_before: dict[str, Any] | None
    checkpoint_after: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[Run], None]


def sync(
    ctx: Context,
    name: str,
    *,
    mode: Mode = "sync",
    actor: str,
    progress: Progress | None = None,
) -> Run:
    """Run the source's connector now and return the finished run (`ok` or `failed`).

    Raises NotFound for an unknown source, InvalidInput for one that is not pulled, and
    Conflict when another run of it is under way or, for a sync, when it is disabled."""
    if mode not in ("sync", "backfill"):
        raise InvalidInput.single("mode", f"is {mode!r}; use sync or backfill")
    source = sources.get(ctx, name)
    if not source.spec.pulled:
        raise InvalidInput.single(
            "name", f"{name} is a {source.spec.kind} source: it sends its signals, nothing to sync"
        )
    if not source.enabled and mode == "sync":
        # A backfill of a disabled source is how history is loaded before going live.
        raise Conflict(f"source {name!r} is disabled; `opsloop source enable {name}` first")
    with store.run_lock(ctx.db, name) as held:
        if not held:
            raise Conflict(_busy(ctx, name))
        run_id, checkpoint = _claim(ctx, name, mode, actor)
        return _run(ctx, source, run_id, mode, checkpoint, progress)


def runs(ctx: Context, name: str, *, limit: int = 20) -> list[Run]:
    """The source's latest runs, newest first."""
    sources.get(ctx, name)
    with ctx.db.read() as conn:
        return [_as_run(row) for row in store.recent_runs(conn, name, limit=limit)]


def enqueue_due(ctx: Context) -> list[str]:
    """Enqueue a sync for each enabled pulled source that is due; return their names."""
    now = ctx.clock()
    queued: list[str] = []
    with ctx.db.transaction() as tx:
        for name in registry_store.due(tx.conn, now):
            row = registry_store.get(tx.conn, name)
            if row is None or row["next_sync_at"] is None:
                continue
            try:
                spec = SourceSpec.model_validate(row["spec"])
            except ValidationError as exc:  # one unreadable definition must not stop the rest
                log.error("source %s cannot be read: %s", name, exc, extra={"source": name})
                continue
            if not spec.pulled:
                continue
            if store.claim_due(
                tx.conn, name, seen=row["next_sync_at"], next_at=now + spec.interval
            ):
                # One job per source, ordered by it: a slow source delays only itself.
                ctx.runtime.enqueue(tx, SYNC_SOURCE, [({"source": name}, f"sync:{name}")])
                queued.append(name)
    return queued


def sync_jobs(ctx: Context, jobs: list[Job]) -> None:
    """The `SYNC_SOURCE` job: a scheduled sync. A failed run is recorded, not raised: the next
    interval is its retry."""
    for job in jobs:
        name = str(job.payload["source"])
        try:
            run = sync(ctx, name, actor=SCHEDULE)
        except (Conflict, NotFound, InvalidInput) as exc:
            log.info("scheduled sync of %s skipped: %s", name, exc, extra={"source": name})
            continue
        log.info(
            "synced %s: %s, %d rows, %d stored",
            name,
            run.status,
            run.rows_in,
            run.events_stored,
            extra={"source": name, "run": run.id},
        )


# --- one run -------------------------------------------------------------------------------


def _claim(ctx: Context, name: str, mode: Mode, actor: str) -> tuple[int, dict[str, Any] | None]:
    """Start a run (we hold the source's run lock); runs still marked running are dead."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        row = store.lock_source(tx.conn, name)
        if row is None:
            raise NotFound(f"no source {name!r}")
        dead = [run["id"] for run in store.running(tx.conn, name)]
        if store.fail_running(tx.conn, dead, at=now, error=WORKER_DIED):
            log.warning("runs %s of %s had died", dead, name, extra={"source": name})
        checkpoint = row["checkpoint"]
        run_id = store.start_run(tx.conn, source=name, mode=mode, at=now, checkpoint=checkpoint)
        if actor != SCHEDULE:
            audit.record(tx.conn, now, actor, f"source.{mode}", name, {"run": run_id})
    return run_id, checkpoint


def _run(
    ctx: Context,
    source: StoredSource,
    run_id: int,
    mode: Mode,
    checkpoint: dict[str, Any] | None,
    progress: Progress | None,
) -> Run:
    name = source.name
    backfill = mode == "backfill"
    spec = _with_mapping(source.spec)
    counts = dict.fromkeys(store.COUNTERS, 0)
    error: str | None = None
    batches = None
    try:
        batches = connectors.fetch(
            source.spec, source.secret, None if backfill else checkpoint, backfill=backfill
        )
        for batch in batches:
            if batch.records:
                taken = signals.take_records(ctx, spec, batch.records, decide=not backfill)
                counts["events_stored"] += taken.stored
                counts["duplicates"] += taken.duplicates
                counts["rejected"] += taken.rejected
                counts["ignored"] += taken.ignored
            if batch.rejected:
                signals.hold_rejected(ctx, name, batch.rejected)
                counts["rejected"] += len(batch.rejected)
            counts["rows_in"] += len(batch.records) + len(batch.rejected)
            now = ctx.clock()
            with ctx.db.transaction() as tx:
                if not backfill:
                    store.save_checkpoint(tx.conn, name, batch.checkpoint, at=now)
                store.update_run(
                    tx.conn, run_id, heartbeat_at=now, checkpoint_after=batch.checkpoint, **counts
                )
            for callback in batch.after_commit:
                callback()
            if progress is not None:
                progress(_current(ctx, run_id))
    except Exception as exc:  # whatever went wrong, the run is recorded and the worker goes on
        error = str(exc) if isinstance(exc, OpsLoopError) else f"{type(exc).__name__}: {exc}"
        log.warning("sync of %s failed: %s", name, error, extra={"source": name, "run": run_id})
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # a connector's connection or file is let go now, not at garbage collection
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        store.update_run(
            tx.conn,
            run_id,
            status="failed" if error else "ok",
            finished_at=now,
            heartbeat_at=now,
            error=error,
            **counts,
        )
        if not backfill:
            store.set_next_sync(tx.conn, name, now + source.spec.interval)
    return _current(ctx, run_id)


def _with_mapping(spec: SourceSpec) -> SourceSpec:
    """A mailbox without a mapping of its own uses the built-in one; other sources without
    one send OpsLoop events."""
    if spec.mapping is None and spec.imap is not None:
        from opsloop.perception.connectors.imap import default_mapping  # imaplib: only if used

        return spec.model_copy(update={"mapping": default_mapping(spec.imap)})
    return spec


def _busy(ctx: Context, name: str) -> str:
    with ctx.db.read() as conn:
        active = store.running(conn, name)
    if not active:
        return f"source {name!r} is already syncing; try again when that run ends"
    run = active[-1]
    return (
        f"source {name!r} is already syncing: run {run['id']} ({run['mode']}) started "
        f"{run['started_at']:%Y-%m-%d %H:%M:%S} UTC, last heartbeat "
        f"{run['heartbeat_at']:%H:%M:%S}; try again when it ends"
    )


def _current(ctx: Context, run_id: int) -> Run:
    with ctx.db.read() as conn:
        row = store.get_run(conn, run_id)
    assert row is not None
    return _as_run(row)


def _as_run(row: dict[str, Any]) -> Run:
    return Run(**{name: row[name] for name in Run.__dataclass_fields__})
