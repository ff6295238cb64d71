"""The runtime contract: jobs, delayed jobs, periodic jobs, per-subject ordering, cancellation.

Two backends keep these promises: `inprocess` (worker threads of this process, the SQLite
default) and `procrastinate` (any number of worker processes on PostgreSQL). One contract test
suite (tests/runtime/test_runtime_contract.py) checks them on each:

* `enqueue` writes the job inside the caller's transaction: the job exists if and only if the
  work that asked for it was committed.
* A job runs when due by the service's clock, at least once. Handlers must be idempotent: a
  worker that dies after the handler committed but before the job was marked done causes one
  more run.
* Jobs sharing an `ordering_key` (for example a subject, `lead:42`) run one at a time, in the
  order they were enqueued; a later job waits while an earlier one is running or waiting to be
  retried. Jobs without a key run in any order.
* A handler that raises is retried with exponential backoff and jitter up to `max_attempts`;
  after that the job is kept as `failed` with its last error, never silently dropped. A worker
  that dies mid-job counts as a failed attempt, so a job that kills its worker cannot loop.
* `cancel` removes the jobs of an ordering key that have not started.
* Periodic jobs (`every`) are enqueued once per interval across all processes.
* A kind belongs to a queue (one per stage); a worker may run some queues only.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection

from opsloop.store.database import Tx

DEFAULT_QUEUE = "default"


def utcnow() -> datetime:
    """The wall clock, the runtimes' default; the service passes its own (moved by hand in
    tests and simulations)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    ordering_key: str | None
    attempts: int
    """Attempts so far, including the current one."""


Handler = Callable[[list[Job]], None]
"""Runs the jobs it is given (one per call on both runtimes; a list so that batching can come
back without changing every handler)."""


@dataclass(frozen=True, slots=True)
class Registration:
    """What `register` was told about a kind."""

    handler: Handler
    queue: str
    max_attempts: int


def backoff_seconds(base: float, attempts: int) -> float:
    """The wait before the next attempt after `attempts` failed ones: exponential (base·2ⁿ⁻¹,
    at most 5 minutes) with jitter in its upper half, so retries of many jobs spread out."""
    ceiling = min(base * 2 ** (attempts - 1), 300.0)
    return random.uniform(ceiling / 2, ceiling)


class Runtime(Protocol):
    def register(
        self, kind: str, handler: Handler, *, queue: str = DEFAULT_QUEUE, max_attempts: int = 5
    ) -> None:
        """Run `handler` for jobs of `kind`, which belong to `queue`."""

    def enqueue(
        self,
        tx: Tx,
        kind: str,
        payloads: list[tuple[dict[str, Any], str | None]],
        *,
        run_at: datetime | None = None,
    ) -> None:
        """Add one job per (payload, ordering key) within the caller's transaction."""

    def cancel(self, tx: Tx, ordering_key: str) -> int:
        """Remove the jobs of `ordering_key` that have not started; return how many."""

    def waiting(self, ordering_keys: Collection[str]) -> set[str]:
        """Those of `ordering_keys` with a job queued or running (for callers that wait on a
        job's result, `POST /api/events?wait=decision`)."""

    def every(self, name: str, kind: str, interval: timedelta) -> None:
        """Enqueue a `kind` job every `interval` (at most one per interval across processes)."""

    def run_due(self, *, limit: int | None = None) -> int:
        """Run jobs that are due now in the calling thread until none is left; return how many."""

    def recover_stale(self) -> int:
        """Hand back the jobs of workers that stopped; return how many."""

    def start(self) -> None:
        """Start background workers in this process."""

    def work(self, stop: threading.Event) -> None:
        """Run the workers in the calling thread until `stop` is set (`opsloop worker`), then
        let running jobs finish."""

    def stop(self, timeout: float = 10.0) -> None:
        """Let running jobs finish, then stop the workers."""

    def forget_failed(self, conn: Connection, *, before: datetime, limit: int) -> int:
        """Delete up to `limit` jobs that failed for good before `before` (retention)."""

    def counts(self) -> dict[str, int]:
        """Jobs by status (`todo`, `doing`, `failed`)."""

    def jobs(self) -> list[dict[str, Any]]:
        """Jobs waiting, running or failed: id, kind, payload, ordering_key, status, attempts
        (finished so far), run_at, last_error."""

    def failed_jobs(self) -> list[dict[str, Any]]:
        """The jobs kept as `failed`, as `jobs` describes them."""
