"""The PostgreSQL runtime: jobs on Procrastinate, in the same database as the ledger.

Any number of processes on any number of machines share the work: each `opsloop worker` (and
each `opsloop serve` that runs workers) fetches jobs with Procrastinate's `FOR UPDATE SKIP
LOCKED` query, is woken by its LISTEN/NOTIFY trigger, and keeps a heartbeat in
`procrastinate_workers`. Procrastinate's schema is applied by OpsLoop's migrations (0009).

How the contract of `runtime/base.py` maps onto it:

* A kind is a Procrastinate task of that name, on the queue given at `register` (one per
  stage, so `opsloop worker --queues deliver` runs deliveries only).
* `enqueue` calls Procrastinate's `procrastinate_defer_jobs_v1` on the caller's connection, so
  the job is committed or rolled back with the work that asked for it.
* An ordering key is Procrastinate's `lock`: jobs sharing it run one at a time, in order.
* Retries: exponential backoff with jitter, counted in Procrastinate's `attempts`; the error of
  each failed attempt is kept in `job_errors`, since Procrastinate keeps only the status.
* Periodic jobs and due-ness follow the service's clock, not the database's, so a simulation or
  a test that moves the clock by hand moves the queue with it: periodic ticks are deferred by a
  timer thread here (through Procrastinate's `procrastinate_defer_periodic_job_v2`, which lets
  one process win each tick), and `run_due` fetches what is due by the service's clock.
* A worker that stops sending heartbeats (killed, frozen, its machine gone) has its jobs handed
  back after `stale_seconds`, counting as a failed attempt, so a job that kills its worker
  ends `failed` instead of looping. Delivery stays exactly-once through the actions'
  idempotency keys (service/deliver/outbox.py), not through the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate.job_context import JobContext
from procrastinate.jobs import Job as ProcrastinateJob
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, TIMESTAMP, VARCHAR
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError

from opsloop.runtime.base import (
    DEFAULT_QUEUE,
    Handler,
    Job,
    Registration,
    backoff_seconds,
    utcnow,
)
from opsloop.store.database import POSTGRES_OPTIONS, Database, Tx

log = logging.getLogger(__name__)

STOPPED = "the worker running this job stopped before it finished"


# --- the SQL, through Procrastinate's own functions where it has one ------------------------------

_DEFER = text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY("
    " SELECT ROW(q, t, 0, l, NULL, a::jsonb, s)::procrastinate_job_to_defer_v1"
    " FROM unnest(:queues, :tasks, :locks, :args, :at) AS j(q, t, l, a, s))))"
).bindparams(
    bindparam("queues", type_=ARRAY(VARCHAR)),
    bindparam("tasks", type_=ARRAY(VARCHAR)),
    bindparam("locks", type_=ARRAY(VARCHAR)),
    bindparam("args", type_=ARRAY(VARCHAR)),
    bindparam("at", type_=ARRAY(TIMESTAMP(timezone=True))),
)

_DEFER_TICK = text(
    "SELECT procrastinate_defer_periodic_job_v2("
    " :queue, :lock, NULL, :task, 0, :periodic_id, :tick, CAST(:args AS jsonb))"
)

_WAITING = text(
    "SELECT DISTINCT lock FROM procrastinate_jobs "
    "WHERE lock = ANY(:keys) AND status IN ('todo', 'doing')"
).bindparams(bindparam("keys", type_=ARRAY(VARCHAR)))

# Rows changed since the queue table's statistics were last gathered.
_QUEUE_CHANGES = text(
    "SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'procrastinate_jobs'"
)
ANALYZE_AFTER_CHANGES = 500
"""Gather the queue table's statistics once this many rows changed (see `keep_plans`)."""

_LOCK_SCHEDULE = text("SELECT pg_advisory_xact_lock(hashtext('opsloop-schedule:' || :name))")
_NEWEST_TICK = text(
    "SELECT max(defer_timestamp) FROM procrastinate_periodic_defers "
    "WHERE task_name = :task AND periodic_id = :periodic_id"
)

# Procrastinate's `procrastinate_fetch_job_v2` with one change: due by the service's clock
# (`:due`) rather than the database's `now()`; the lock rule and SKIP LOCKED are the same.
_FETCH = text(
    """
    WITH candidate AS (
        SELECT jobs.id FROM procrastinate_jobs AS jobs
        WHERE jobs.status = 'todo'
          AND jobs.task_name = ANY(:tasks)
          AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= :due)
          AND NOT EXISTS (
              SELECT 1 FROM procrastinate_jobs AS other
              WHERE jobs.lock IS NOT NULL AND other.lock = jobs.lock
                AND (other.status = 'doing'
                     OR (other.status = 'todo'
                         AND (other.priority > jobs.priority
                              OR (other.priority = jobs.priority AND other.id < jobs.id)))))
        ORDER BY jobs.priority DESC, jobs.id ASC LIMIT 1
        FOR UPDATE OF jobs SKIP LOCKED
    )
    UPDATE procrastinate_jobs SET status = 'doing', worker_id = :worker
    FROM candidate WHERE procrastinate_jobs.id = candidate.id
    RETURNING procrastinate_jobs.id, procrastinate_jobs.task_name, procrastinate_jobs.lock,
              procrastinate_jobs.args, procrastinate_jobs.attempts
    """
).bindparams(bindparam("tasks", type_=ARRAY(VARCHAR)))

_FINISH = text(
    "SELECT procrastinate_finish_job_v1(:id, CAST(:status AS procrastinate_job_status), :delete)"
)
_RETRY = text("SELECT procrastinate_retry_job_v2(:id, :at, NULL, NULL, NULL)")
_CANCEL = text("SELECT procrastinate_cancel_job_v1(:id, false, true)")

_REMEMBER_ERROR = text(
    "INSERT INTO job_errors (job_id, kind, attempts, error, at) VALUES (:id, :kind, :attempts, "
    ":error, :at) ON CONFLICT (job_id) DO UPDATE SET attempts = excluded.attempts, "
    "error = excluded.error, at = excluded.at"
)

# Jobs held by workers whose heartbeat is older than `:stale` seconds by the database's clock
# (heartbeats are written with `now()`), or by no worker at all (its row was pruned).
_STALLED = text(
    """
    SELECT job.id, job.task_name, job.attempts FROM procrastinate_jobs AS job
    LEFT JOIN procrastinate_workers AS worker ON worker.id = job.worker_id
    WHERE job.status = 'doing'
      AND job.task_name = ANY(:tasks)
      AND (worker.id IS NULL
           OR worker.last_heartbeat < now() - make_interval(secs => :stale))
    FOR UPDATE OF job SKIP LOCKED
    """
).bindparams(bindparam("tasks", type_=ARRAY(VARCHAR)))


def libpq_url(database_url: str | URL) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL (`postgresql+psycopg://…` → `postgresql://…`)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class _Backoff(BaseRetryStrategy):
    """Retry with exponential backoff and jitter until `max_attempts`, by the service's clock."""

    def __init__(self, runtime: ProcrastinateRuntime, max_attempts: int) -> None:
        self.runtime = runtime
        self.max_attempts = max_attempts

    def get_retry_decision(
        self, *, exception: BaseException, job: ProcrastinateJob
    ) -> RetryDecision | None:
        attempts = job.attempts + 1  # Procrastinate counts the attempts already finished
        if attempts >= self.max_attempts or isinstance(exception, procrastinate_errors.JobAborted):
            return None
        return RetryDecision(retry_at=self.runtime.retry_at(attempts))


class ProcrastinateRuntime:
    def __init__(
        self,
        db: Database,
        *,
        concurrency: int = 4,
        poll_seconds: float = 0.5,
        stale_seconds: float = 60.0,
        retry_base_seconds: float = 1.0,
        queues: Iterable[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if db.is_sqlite:
            raise ValueError("the Procrastinate runtime needs PostgreSQL")
        self.db = db
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.stale_seconds = stale_seconds
        self.retry_base_seconds = retry_base_seconds
        self.queues = list(queues) if queues else None
        self.clock = clock
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=libpq_url(db.url),
                min_size=1,
                max_size=concurrency + 2,
                kwargs={"options": POSTGRES_OPTIONS},
            )
        )
        self._registry: dict[str, Registration] = {}
        self._periodic: dict[str, tuple[str, timedelta]] = {}
        self._ticks: dict[str, int] = {}
        """The newest tick of each schedule this process has deferred or seen deferred."""
        self._manual_worker: int | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- the contract ----------------------------------------------------------------------------

    def register(
        self, kind: str, handler: Handler, *, queue: str = DEFAULT_QUEUE, max_attempts: int = 5
    ) -> None:
        registration = Registration(handler, queue, max_attempts)
        self._registry[kind] = registration

        def run(context: JobContext, /, **payload: Any) -> None:
            job = context.job
            assert job.id is not None
            self._run_one(Job(job.id, kind, payload, job.lock, job.attempts + 1), registration)

        self.app.task(
            name=kind,
            queue=queue,
            pass_context=True,
            retry=_Backoff(self, max_attempts),
        )(run)

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
        queue = self._queue_of(kind)
        tx.conn.execute(
            _DEFER,
            {
                "queues": [queue] * len(payloads),
                "tasks": [kind] * len(payloads),
                "locks": [key for _, key in payloads],
                "args": [json.dumps(payload) for payload, _ in payloads],
                "at": [run_at] * len(payloads),
            },
        )

    def cancel(self, tx: Tx, ordering_key: str) -> int:
        ids = tx.conn.execute(
            text("SELECT id FROM procrastinate_jobs WHERE lock = :key AND status = 'todo'"),
            {"key": ordering_key},
        ).scalars()
        return sum(1 for job_id in list(ids) if tx.conn.execute(_CANCEL, {"id": job_id}).scalar())

    def waiting(self, ordering_keys: Collection[str]) -> set[str]:
        if not ordering_keys:
            return set()
        with self.db.read() as conn:
            found = conn.execute(_WAITING, {"keys": list(ordering_keys)})
            return set(found.scalars())

    def every(self, name: str, kind: str, interval: timedelta) -> None:
        self._periodic[name] = (kind, interval)

    def run_due(self, *, limit: int | None = None) -> int:
        self._defer_ticks()
        done = 0
        while limit is None or done < limit:
            claimed = self._fetch()
            if claimed is None:
                return done
            self._run_one(claimed, self._registry[claimed.kind], manual=True)
            done += 1
        return done

    def start(self) -> None:
        """Run Procrastinate's worker (`concurrency` jobs at once) and the timer in this process."""
        if self._threads:
            return
        self._stopping.clear()
        worker = threading.Thread(
            target=self.work, args=(self._stopping,), name="opsloop-procrastinate", daemon=True
        )
        worker.start()
        self._threads = [worker]
        log.info("Procrastinate worker started", extra={"concurrency": self.concurrency})

    def stop(self, timeout: float = 10.0) -> None:
        """Stop fetching; let running jobs finish (up to `timeout`), then stop."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout + 5)
        self._threads.clear()
        if self._manual_worker is not None:
            with self.db.transaction() as tx:
                tx.conn.execute(
                    text("SELECT procrastinate_unregister_worker_v1(:id)"),
                    {"id": self._manual_worker},
                )
            self._manual_worker = None

    def work(self, stop: threading.Event) -> None:
        """Run Procrastinate's worker and the timer in the calling thread until `stop` is set;
        running jobs finish first."""
        timer = threading.Thread(
            target=self._tick, args=(stop,), name="opsloop-runtime-timer", daemon=True
        )
        timer.start()
        try:
            asyncio.run(self._work(stop))
        finally:
            stop.set()
            timer.join(10)

    # --- jobs --------------------------------------------------------------------------------------

    def retry_at(self, attempts: int) -> datetime:
        return self.clock() + timedelta(seconds=backoff_seconds(self.retry_base_seconds, attempts))

    def _run_one(self, job: Job, registration: Registration, *, manual: bool = False) -> None:
        """Run one job. In Procrastinate's worker it then records the outcome (retry or fail,
        through `_Backoff`); `run_due` (`manual`) records it here, in the same transaction as
        the error."""
        try:
            registration.handler([job])
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            give_up = job.attempts >= registration.max_attempts
            log.error(
                "job %s %d failed (attempt %d of %d)%s: %s",
                job.kind,
                job.id,
                job.attempts,
                registration.max_attempts,
                "; giving up" if give_up else "; will retry",
                error,
                extra={"job": job.id, "kind": job.kind},
            )
            with self.db.transaction() as tx:
                self._write_error(tx.conn, job.id, job.kind, job.attempts, error)
                if manual:
                    self._settle(tx.conn, job.id, job.attempts, give_up=give_up)
            if manual:
                return
            raise
        if manual:
            with self.db.transaction() as tx:
                tx.conn.execute(_FINISH, {"id": job.id, "status": "succeeded", "delete": True})

    def _write_error(
        self, conn: Connection, job_id: int, kind: str, attempts: int, error: str
    ) -> None:
        conn.execute(
            _REMEMBER_ERROR,
            {"id": job_id, "kind": kind, "attempts": attempts, "error": error, "at": self.clock()},
        )

    def _settle(self, conn: Connection, job_id: int, attempts: int, *, give_up: bool) -> None:
        """A failed attempt: kept as `failed`, or back to the queue after its backoff."""
        if give_up:
            conn.execute(_FINISH, {"id": job_id, "status": "failed", "delete": False})
        else:
            conn.execute(_RETRY, {"id": job_id, "at": self.retry_at(attempts)})

    def _fetch(self) -> Job | None:
        """Claim the next job due by the service's clock, as this process's worker row."""
        if not self._registry:
            return None
        for _ in range(3):
            try:
                with self.db.transaction() as tx:
                    worker = self._heartbeat(tx.conn)
                    row = tx.conn.execute(
                        _FETCH, {"tasks": self._kinds(), "due": self.clock(), "worker": worker}
                    ).first()
            except IntegrityError:
                # Another process took the next job of the same lock at the same moment (the
                # unique index on a running lock said no): look again, past it.
                continue
            self._manual_worker = worker
            if row is None:
                return None
            return Job(row.id, row.task_name, dict(row.args), row.lock, row.attempts + 1)
        return None

    def _queue_of(self, kind: str) -> str:
        registration = self._registry.get(kind)
        return registration.queue if registration else DEFAULT_QUEUE

    def _kinds(self) -> list[str]:
        """The kinds this process runs: all registered ones, or those on its `queues`."""
        return [
            kind
            for kind, registration in self._registry.items()
            if self.queues is None or registration.queue in self.queues
        ]

    def _heartbeat(self, conn: Connection) -> int:
        """`run_due` claims jobs as a registered worker whose heartbeat is fresh, so that other
        processes never take its jobs for a dead worker's: refresh it, or register one."""
        if self._manual_worker is not None:
            found = conn.execute(
                text(
                    "UPDATE procrastinate_workers SET last_heartbeat = now() "
                    "WHERE id = :id RETURNING id"
                ),
                {"id": self._manual_worker},
            ).first()
            if found is not None:
                return self._manual_worker
        return int(conn.execute(text("SELECT procrastinate_register_worker_v1()")).scalar_one())

    # --- periodic ticks and stalled workers ---------------------------------------------------------

    def _defer_ticks(self) -> int:
        """Defer the current tick of every periodic job (the tick: the service's clock rounded
        down to the interval), once across all processes. Each process tries a tick once."""
        deferred = 0
        now = self.clock().timestamp()
        for name, (kind, interval) in self._periodic.items():
            seconds = max(interval.total_seconds(), 1.0)
            tick = int(now // seconds * seconds)
            if self._ticks.get(name, -1) >= tick:
                continue
            queue = self._queue_of(kind)
            with self.db.transaction() as tx:
                # One process at a time per schedule, and never a tick older than one already
                # deferred: Procrastinate forgets older ticks once a newer one is deferred, so a
                # process that read the clock just before it moved could otherwise defer again.
                tx.conn.execute(_LOCK_SCHEDULE, {"name": name})
                newer = tx.conn.execute(_NEWEST_TICK, {"task": kind, "periodic_id": name}).scalar()
                if newer is None or newer < tick:
                    job_id = tx.conn.execute(
                        _DEFER_TICK,
                        {
                            "queue": queue,
                            "lock": f"schedule:{name}",
                            "task": kind,
                            "periodic_id": name,
                            "tick": tick,
                            "args": json.dumps({"schedule": name}),
                        },
                    ).scalar()
                    deferred += job_id is not None
            self._ticks[name] = tick
        return deferred

    def recover_stale(self) -> int:
        """Hand back the jobs of workers whose heartbeat is older than `stale_seconds`; a job
        that used up its attempts this way ends `failed`. Returns how many were handed back."""
        if not self._registry:
            return 0
        handed = 0
        with self.db.transaction() as tx:
            conn = tx.conn
            conn.execute(
                text("SELECT procrastinate_prune_stalled_workers_v1(:stale)"),
                {"stale": self.stale_seconds},
            )
            stalled = conn.execute(
                _STALLED, {"tasks": list(self._registry), "stale": self.stale_seconds}
            ).all()
            for job_id, kind, attempts in stalled:
                registration = self._registry[kind]
                self._write_error(conn, job_id, kind, attempts + 1, STOPPED)
                if attempts + 1 >= registration.max_attempts:
                    conn.execute(_FINISH, {"id": job_id, "status": "failed", "delete": False})
                else:
                    conn.execute(_RETRY, {"id": job_id, "at": self.clock()})
                handed += 1
        if handed:
            log.warning("handed back %d jobs from stopped workers", handed)
        return handed

    def _tick(self, stop: threading.Event) -> None:
        """The timer: periodic ticks every `poll_seconds`; stalled workers every quarter of
        `stale_seconds` (at most every 10 s)."""
        every = max(min(self.stale_seconds / 4, 10.0), 0.05)
        next_check = time.monotonic()
        while not stop.wait(self.poll_seconds):
            try:
                self._defer_ticks()
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + every
                    self.recover_stale()
                    self.keep_plans()
            except Exception:
                log.exception("runtime timer failed; will try again")

    def keep_plans(self) -> bool:
        """ANALYZE the queue table once many of its rows changed since its statistics were last
        gathered. Procrastinate's fetch walks every waiting job and sorts them when the planner
        believes the table is empty: 124 ms a fetch with 3,000 jobs waiting, 0.13 ms once
        analyzed. Autovacuum does this on a default server; where it is off, nothing else
        would, so the workers do it for the one table whose plan they depend on."""
        with self.db.read() as conn:
            changed = conn.execute(_QUEUE_CHANGES).scalar()
        if changed is None or changed < ANALYZE_AFTER_CHANGES:
            return False
        with self.db.transaction() as tx:
            tx.conn.execute(text("ANALYZE procrastinate_jobs"))
        return True

    # --- Procrastinate's worker ---------------------------------------------------------------------

    async def _work(self, stop: threading.Event) -> None:
        async with self.app.open_async():
            options: dict[str, Any] = {"queues": self.queues}  # None: every queue
            worker = asyncio.create_task(
                self.app.run_worker_async(
                    **options,
                    concurrency=self.concurrency,
                    wait=True,
                    name=f"opsloop-{id(self):x}",
                    install_signal_handlers=False,  # the caller owns the signals and sets `stop`
                    delete_jobs="successful",
                    fetch_job_polling_interval=max(self.poll_seconds, 0.05),
                    update_heartbeat_interval=max(min(self.stale_seconds / 4, 10.0), 0.05),
                    stalled_worker_timeout=self.stale_seconds,
                )
            )
            stopped = asyncio.create_task(asyncio.to_thread(stop.wait))
            try:
                await asyncio.wait({worker, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.set()  # frees the thread waiting on it
                # Cancelling Procrastinate's worker stops its fetching and waits for the jobs
                # it is running.
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
                await stopped

    # --- for tests and the API ----------------------------------------------------------------------

    def forget_failed(self, conn: Connection, *, before: datetime, limit: int) -> int:
        """Delete jobs that failed for good before `before` (by their last error's time), and the
        errors kept for jobs that later succeeded or were cancelled."""
        gone = conn.execute(
            text(
                "DELETE FROM procrastinate_jobs WHERE id IN ("
                " SELECT error.job_id FROM job_errors AS error"
                " JOIN procrastinate_jobs AS job ON job.id = error.job_id"
                " WHERE job.status = 'failed' AND error.at < :before LIMIT :limit)"
                " RETURNING id"
            ),
            {"before": before, "limit": limit},
        ).scalars()
        removed = list(gone)
        conn.execute(
            text(
                "DELETE FROM job_errors WHERE job_id = ANY(:ids) OR (at < :before AND NOT EXISTS"
                " (SELECT 1 FROM procrastinate_jobs AS job WHERE job.id = job_errors.job_id))"
            ).bindparams(bindparam("ids", type_=ARRAY(BIGINT))),
            {"ids": removed, "before": before},
        )
        return len(removed)

    def counts(self) -> dict[str, int]:
        with self.db.read() as conn:
            rows = conn.execute(
                text(
                    "SELECT status::text, count(*) FROM procrastinate_jobs "
                    "WHERE status IN ('todo', 'doing', 'failed') GROUP BY status"
                )
            ).all()
        return {status: int(n) for status, n in rows}

    def jobs(self) -> list[dict[str, Any]]:
        """Every job not yet finished, and every failed one: id, kind, payload, ordering_key,
        status, attempts (finished so far), run_at, last_error."""
        with self.db.read() as conn:
            rows = conn.execute(
                text(
                    "SELECT job.id, job.task_name AS kind, job.args AS payload, "
                    "job.lock AS ordering_key, job.status::text AS status, job.attempts, "
                    "job.scheduled_at AS run_at, error.error AS last_error "
                    "FROM procrastinate_jobs AS job "
                    "LEFT JOIN job_errors AS error ON error.job_id = job.id "
                    "WHERE job.status IN ('todo', 'doing', 'failed') ORDER BY job.id"
                )
            )
            return [dict(row._mapping) for row in rows]

    def failed_jobs(self) -> list[dict[str, Any]]:
        return [job for job in self.jobs() if job["status"] == "failed"]
