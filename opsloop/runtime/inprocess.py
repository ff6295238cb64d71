"""The in-process runtime: jobs in the `jobs` table, run by worker threads of this process.

The default for the one-file SQLite install. Claims are conditional UPDATEs with RETURNING, so
several threads (or several processes sharing the database file) never run the same job twice
at once. Each process registers itself in `workers` and keeps a heartbeat; jobs held by a
process that died are handed back on the next start.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.runtime.base import (
    DEFAULT_QUEUE,
    Handler,
    Job,
    Registration,
    backoff_seconds,
    utcnow,
)
from opsloop.store.database import Database, Tx
from opsloop.store.retention import delete_failed_jobs
from opsloop.store.schema import jobs, schedules, workers

log = logging.getLogger(__name__)


class InProcessRuntime:
    def __init__(
        self,
        db: Database,
        *,
        threads: int = 4,
        poll_seconds: float = 0.5,
        stale_seconds: float = 60.0,
        retry_base_seconds: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.threads = threads
        self.poll_seconds = poll_seconds
        self.stale_seconds = stale_seconds
        self.retry_base_seconds = retry_base_seconds
        self.clock = clock
        self.worker_id = uuid.uuid4().hex
        self._registry: dict[str, Registration] = {}
        self._periodic: dict[str, tuple[str, timedelta]] = {}
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._registered_worker = False

    # --- the contract ------------------------------------------------------------------------

    def register(
        self, kind: str, handler: Handler, *, queue: str = DEFAULT_QUEUE, max_attempts: int = 5
    ) -> None:
        # Every process runs every queue: one SQLite file is one machine's work.
        self._registry[kind] = Registration(handler, queue, max_attempts)

    def enqueue(
        self,
        tx: Tx,
        kind: str,
        payloads: list[tuple[dict[str, Any], str | None]],
        *,
        run_at: datetime | None = None,
    ) -> None:
        if not payloads:
            return
        now = self.clock()
        tx.conn.execute(
            insert(jobs),
            [
                {
                    "kind": kind,
                    "payload": payload,
                    "ordering_key": key,
                    "status": "todo",
                    "attempts": 0,
                    "run_at": run_at or now,
                    "created_at": now,
                }
                for payload, key in payloads
            ],
        )
        if run_at is None or run_at <= now:
            tx.after_commit(self.notify)

    def cancel(self, tx: Tx, ordering_key: str) -> int:
        removed = tx.conn.execute(
            delete(jobs).where(jobs.c.ordering_key == ordering_key, jobs.c.status == "todo")
        )
        return int(removed.rowcount or 0)

    def waiting(self, ordering_keys: Collection[str]) -> set[str]:
        if not ordering_keys:
            return set()
        with self.db.read() as conn:
            found = conn.execute(
                select(jobs.c.ordering_key)
                .where(
                    jobs.c.ordering_key.in_(list(ordering_keys)),
                    jobs.c.status.in_(("todo", "doing")),
                )
                .distinct()
            )
            return set(found.scalars())

    def every(self, name: str, kind: str, interval: timedelta) -> None:
        self._periodic[name] = (kind, interval)

    def run_due(self, *, limit: int | None = None) -> int:
        self._ensure_worker_row()
        done = 0
        while limit is None or done < limit:
            self._enqueue_periodic()
            claimed = self._claim()
            if not claimed:
                return done
            done += self._run(claimed)
        return done

    def start(self) -> None:
        if self._threads:
            return
        self._ensure_worker_row()
        self.recover_stale()
        self._stopping.clear()
        for index in range(self.threads):
            thread = threading.Thread(
                target=self._loop, name=f"opsloop-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        heartbeat = threading.Thread(target=self._heartbeat, name="opsloop-heartbeat", daemon=True)
        heartbeat.start()
        self._threads.append(heartbeat)
        log.info("runtime started", extra={"worker": self.worker_id, "threads": self.threads})

    def work(self, stop: threading.Event) -> None:
        self.start()
        while not stop.wait(1):
            pass
        self.stop()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.notify()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        if self._registered_worker:
            with self.db.transaction() as tx:
                tx.conn.execute(delete(workers).where(workers.c.id == self.worker_id))
            self._registered_worker = False

    def notify(self) -> None:
        """Wake the workers: something was enqueued."""
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify_all()

    # --- recovery ----------------------------------------------------------------------------

    def recover_stale(self) -> int:
        """Hand back jobs held by processes that died; return how many were handed back."""
        now = self.clock()
        host = socket.gethostname()
        with self.db.transaction() as tx:
            conn = tx.conn
            dead: list[str] = []
            for row in conn.execute(select(workers)):
                if row.id == self.worker_id:
                    continue
                stale = row.heartbeat_at < now - timedelta(seconds=self.stale_seconds)
                gone = row.host == host and not _pid_alive(row.pid)
                if stale or gone:
                    dead.append(row.id)
            if not dead:
                return 0
            held = list(
                conn.execute(
                    select(jobs.c.id, jobs.c.kind, jobs.c.attempts).where(
                        jobs.c.status == "doing", jobs.c.locked_by.in_(dead)
                    )
                )
            )
            for job_id, kind, attempts in held:
                registration = self._registry.get(kind)
                limit = registration.max_attempts if registration else 5
                status = "failed" if attempts >= limit else "todo"
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id)
                    .values(
                        status=status,
                        locked_by=None,
                        locked_at=None,
                        run_at=now,
                        last_error="the worker running this job stopped before it finished",
                    )
                )
            conn.execute(delete(workers).where(workers.c.id.in_(dead)))
        if held:
            log.warning("handed back %d jobs from stopped workers", len(held))
            self.notify()
        return len(held)

    # --- internals ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._enqueue_periodic()
                claimed = self._claim()
                if claimed:
                    self._run(claimed)
                    continue
            except Exception:
                log.exception("runtime loop error; continuing")
            with self._wake:
                if self._pending_wakeups == 0 and not self._stopping.is_set():
                    self._wake.wait(self.poll_seconds)
                self._pending_wakeups = 0

    def _claim(self) -> list[Job]:
        if not self._registry:
            return []
        now = self.clock()
        earlier = jobs.alias("earlier")
        blocked = exists().where(
            and_(
                earlier.c.ordering_key == jobs.c.ordering_key,
                earlier.c.id < jobs.c.id,
                earlier.c.status.in_(("todo", "doing")),
            )
        )
        kinds = list(self._registry)
        # The oldest due job first.
        candidates = (
            select(jobs.c.id, jobs.c.kind)
            .where(jobs.c.status == "todo", jobs.c.run_at <= now, jobs.c.kind.in_(kinds), ~blocked)
            .order_by(jobs.c.id)
            .limit(1)
        )
        if not self.db.is_sqlite:
            candidates = candidates.with_for_update(skip_locked=True)
        with self.db.transaction() as tx:
            rows = list(tx.conn.execute(candidates))
            if not rows:
                return []
            return self._take(tx.conn, [row.id for row in rows], now)

    def _take(self, conn: Connection, ids: list[int], now: datetime) -> list[Job]:
        if not ids:
            return []
        rows = conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(ids), jobs.c.status == "todo")
            .values(
                status="doing",
                locked_by=self.worker_id,
                locked_at=now,
                attempts=jobs.c.attempts + 1,
            )
            .returning(jobs.c.id, jobs.c.kind, jobs.c.payload, jobs.c.ordering_key, jobs.c.attempts)
        )
        claimed = [Job(r.id, r.kind, r.payload, r.ordering_key, r.attempts) for r in rows]
        return sorted(claimed, key=lambda job: job.id)

    def _run(self, claimed: list[Job]) -> int:
        registration = self._registry[claimed[0].kind]
        try:
            registration.handler(claimed)
        except Exception as exc:
            for job in claimed:
                self._failed(job, registration, exc)
            return len(claimed)
        self._done(claimed)
        return len(claimed)

    def _done(self, finished: list[Job]) -> None:
        with self.db.transaction() as tx:
            tx.conn.execute(delete(jobs).where(jobs.c.id.in_([job.id for job in finished])))

    def _failed(self, job: Job, registration: Registration, exc: BaseException) -> None:
        now = self.clock()
        error = f"{type(exc).__name__}: {exc}"[:2000]
        give_up = job.attempts >= registration.max_attempts
        delay = backoff_seconds(self.retry_base_seconds, job.attempts)
        log.error(
            "job %s %d failed (attempt %d of %d)%s: %s",
            job.kind,
            job.id,
            job.attempts,
            registration.max_attempts,
            "; giving up" if give_up else f"; retrying in {delay:.1f}s",
            error,
            extra={"job": job.id, "kind": job.kind},
        )
        with self.db.transaction() as tx:
            tx.conn.execute(
                update(jobs)
                .where(jobs.c.id == job.id)
                .values(
                    status="failed" if give_up else "todo",
                    run_at=now + timedelta(seconds=delay),
                    locked_by=None,
                    locked_at=None,
                    last_error=error,
                )
            )

    def _enqueue_periodic(self) -> None:
        if not self._periodic:
            return
        now = self.clock()
        with self.db.read() as conn:
            due = {
                row.name: row.next_run_at
                for row in conn.execute(select(schedules.c.name, schedules.c.next_run_at))
            }
        for name, (kind, interval) in self._periodic.items():
            next_run = due.get(name)
            if next_run is not None and next_run > now:
                continue
            with self.db.transaction() as tx:
                if next_run is None:
                    # Another process may be creating the same schedule right now: ON CONFLICT
                    # lets one win without an error. RETURNING, not rowcount, tells who won
                    # (SQLAlchemy reports rowcount -1 for an INSERT on PostgreSQL).
                    upsert = sqlite_insert if self.db.is_sqlite else pg_insert
                    created = tx.conn.execute(
                        upsert(schedules)
                        .values(
                            name=name,
                            kind=kind,
                            interval_seconds=interval.total_seconds(),
                            next_run_at=now + interval,
                        )
                        .on_conflict_do_nothing(index_elements=[schedules.c.name])
                        .returning(schedules.c.name)
                    ).first()
                    won = created is not None
                else:
                    won = (
                        tx.conn.execute(
                            update(schedules)
                            .where(schedules.c.name == name, schedules.c.next_run_at == next_run)
                            .values(
                                next_run_at=now + interval,
                                interval_seconds=interval.total_seconds(),
                            )
                        ).rowcount
                        == 1
                    )
                if won:
                    self.enqueue(tx, kind, [({"schedule": name}, f"schedule:{name}")])

    def _ensure_worker_row(self) -> None:
        if self._registered_worker:
            return
        now = self.clock()
        with self.db.transaction() as tx:
            tx.conn.execute(
                insert(workers),
                {
                    "id": self.worker_id,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "started_at": now,
                    "heartbeat_at": now,
                },
            )
        self._registered_worker = True

    def _heartbeat(self) -> None:
        interval = max(min(self.stale_seconds / 4, 10.0), 0.05)
        while not self._stopping.wait(interval):
            try:
                with self.db.transaction() as tx:
                    tx.conn.execute(
                        update(workers)
                        .where(workers.c.id == self.worker_id)
                        .values(heartbeat_at=self.clock())
                    )
                self.recover_stale()
            except Exception:
                log.exception("heartbeat failed; will try again")

    # --- for tests and the API -----------------------------------------------------------------

    def forget_failed(self, conn: Connection, *, before: datetime, limit: int) -> int:
        return delete_failed_jobs(conn, before=before, limit=limit)

    def counts(self) -> dict[str, int]:
        with self.db.read() as conn:
            query = select(jobs.c.status, func.count()).group_by(jobs.c.status)
            return dict(conn.execute(query).all())

    def jobs(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    jobs.c.id,
                    jobs.c.kind,
                    jobs.c.payload,
                    jobs.c.ordering_key,
                    jobs.c.status,
                    jobs.c.attempts,
                    jobs.c.run_at,
                    jobs.c.last_error,
                ).order_by(jobs.c.id)
            )
            return [dict(row._mapping) for row in rows]

    def failed_jobs(self) -> list[dict[str, Any]]:
        return [job for job in self.jobs() if job["status"] == "failed"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
