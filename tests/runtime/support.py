"""What the runtime tests share: runtimes of one backend built and stopped for a test, a
recording handler, and a stand-in for a worker that dies mid-job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from opsloop.runtime.base import Job, Runtime
from opsloop.runtime.inprocess import InProcessRuntime
from opsloop.runtime.procrastinate import ProcrastinateRuntime
from opsloop.store.database import Database
from tests.conftest import Clock

Payloads = list[tuple[dict[str, Any], str | None]]


class WorkerDied(BaseException):
    """Raised by a handler to stand in for a worker process that dies mid-job: it is not an
    `Exception`, so the runtime does not catch it and the job stays claimed, as after a crash."""


class Runtimes:
    """Builds runtimes of one backend (and extra `Database` handles standing in for other
    processes) and stops them all when the test ends."""

    def __init__(self, backend: str, url: str, db: Database, clock: Clock) -> None:
        self.backend = backend
        self.url = url
        self.db = db
        self.clock = clock
        self._runtimes: list[Any] = []
        self._databases: list[Database] = []

    @property
    def procrastinate(self) -> bool:
        return self.backend.startswith("procrastinate")

    def database(self) -> Database:
        """A second connection pool on the same database, as another process would have."""
        other = Database(self.url)
        self._databases.append(other)
        return other

    def runtime(
        self,
        *,
        db: Database | None = None,
        clock: Callable[[], datetime] | None = None,
        threads: int = 1,
        **options: Any,
    ) -> Any:
        settings: dict[str, Any] = {
            "poll_seconds": 0.02,
            "stale_seconds": 60.0,
            "retry_base_seconds": 1.0,
            **options,
        }
        runtime: Any
        if self.procrastinate:
            runtime = ProcrastinateRuntime(
                db or self.db, clock=clock or self.clock, concurrency=threads, **settings
            )
        else:
            runtime = InProcessRuntime(
                db or self.db, clock=clock or self.clock, threads=threads, **settings
            )
        self._runtimes.append(runtime)
        return runtime

    def silence(self, runtime: Any, seconds: float) -> None:
        """Make `runtime`'s last heartbeat `seconds` old, as if its process had stopped then:
        the in-process runtime keeps heartbeats by the service's clock, Procrastinate by the
        database's."""
        if not self.procrastinate:
            self.clock.advance(seconds=seconds)
            return
        with self.db.transaction() as tx:
            tx.conn.execute(
                text(
                    "UPDATE procrastinate_workers SET last_heartbeat = "
                    "last_heartbeat - make_interval(secs => :s) WHERE id = :id"
                ),
                {"s": seconds, "id": runtime._manual_worker},
            )

    def silence_everyone(self, seconds: float) -> None:
        """Procrastinate: make every worker's heartbeat `seconds` older (a killed process's
        worker id is not known to the test)."""
        with self.db.transaction() as tx:
            tx.conn.execute(
                text(
                    "UPDATE procrastinate_workers SET last_heartbeat = "
                    "last_heartbeat - make_interval(secs => :s)"
                ),
                {"s": seconds},
            )

    def close(self) -> None:
        for runtime in self._runtimes:
            runtime.stop(timeout=10)
        for database in self._databases:
            database.dispose()


def enqueue(
    runtime: Runtime, kind: str, payloads: Payloads, *, run_at: datetime | None = None
) -> None:
    with runtime.db.transaction() as tx:  # type: ignore[attr-defined]
        runtime.enqueue(tx, kind, payloads, run_at=run_at)


class Recorder:
    """A handler that remembers every call; it raises for payloads the test marks as bad."""

    def __init__(self, *, fail: Callable[[Job], str | None] = lambda job: None) -> None:
        self.calls: list[list[Job]] = []
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, batch: list[Job]) -> None:
        with self._lock:
            self.calls.append(list(batch))
        for job in batch:
            problem = self.fail(job)
            if problem:
                raise ValueError(problem)

    @property
    def names(self) -> list[str]:
        return [job.payload["name"] for call in self.calls for job in call]


def named(*names: str, key: str | None = None) -> Payloads:
    return [({"name": name}, key) for name in names]


def crash_while_running(runtime: Runtime) -> None:
    """Claim the next job with `runtime` and 'die' in the middle of it."""
    with pytest.raises(WorkerDied):
        runtime.run_due()


def dies(batch: list[Job]) -> None:
    raise WorkerDied
