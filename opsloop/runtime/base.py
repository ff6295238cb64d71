"""The runtime contract: jobs, delayed jobs, periodic jobs, per-subject ordering.

Every backend (the in-process one here; a distributed PostgreSQL one later) keeps these
promises, and one contract test suite checks them on each:

* `enqueue` writes the job inside the caller's transaction: the job exists if and only if the
  work that asked for it was committed.
* A job runs when due, at least once. Handlers must be idempotent: a worker that dies after the
  handler committed but before the job was marked done causes one more run.
* Jobs sharing an `ordering_key` (for example a subject, `lead:42`) run one at a time, in the
  order they were enqueued; a later job waits while an earlier one is running or waiting to be
  retried. Jobs without a key run in any order.
* A handler that raises is retried with exponential backoff and jitter up to `max_attempts`;
  after that the job is kept as `failed` with its last error, never silently dropped. A worker
  that dies mid-job counts as a failed attempt, so a job that kills its worker cannot loop.
* A batch handler receives several jobs of its kind at once. If it raises, each job is run on
  its own so one bad job cannot hold the others back.
* Periodic jobs (`every`) are enqueued once per interval across all processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from opsloop.store.database import Tx


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    ordering_key: str | None
    attempts: int
    """Attempts so far, including the current one."""


Handler = Callable[[list[Job]], None]


class Runtime(Protocol):
    def register(
        self, kind: str, handler: Handler, *, batch_size: int = 1, max_attempts: int = 5
    ) -> None:
        """Run `handler` for jobs of `kind`, up to `batch_size` jobs per call."""

    def enqueue(
        self,
        tx: Tx,
        kind: str,
        payloads: list[tuple[dict[str, Any], str | None]],
        *,
        run_at: datetime | None = None,
    ) -> None:
        """Add one job per (payload, ordering key) within the caller's transaction."""

    def every(self, name: str, kind: str, interval: timedelta) -> None:
        """Enqueue a `kind` job every `interval` (at most one per interval across processes)."""

    def run_due(self, *, limit: int | None = None) -> int:
        """Run jobs that are due now in the calling thread until none is left; return how many."""

    def start(self) -> None:
        """Start background workers in this process."""

    def stop(self, timeout: float = 10.0) -> None:
        """Let running jobs finish, then stop the workers."""
