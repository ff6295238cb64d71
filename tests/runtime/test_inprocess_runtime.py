"""What only the in-process runtime does, once on SQLite and once on PostgreSQL: its schedules
table, and its workers table, which knows each process's host and pid. The contract both
runtimes keep is checked in test_runtime_contract.py.

Most tests drive the runtime by hand with `run_due()` and a clock they move, so timing never
decides the result; the tests that need worker threads wait with `eventually()`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from opsloop.runtime.inprocess import InProcessRuntime
from opsloop.store.database import Database
from opsloop.store.schema import jobs, workers
from tests.conftest import Clock, eventually, sessions_waiting_on_a_lock
from tests.runtime.support import (
    Recorder,
    Runtimes,
    crash_while_running,
    dies,
    enqueue,
    named,
)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def runtimes(database_url: str, db: Database, clock: Clock) -> Iterator[Runtimes]:
    made = Runtimes("inprocess", database_url, db, clock)
    yield made
    made.close()


def job_rows(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(jobs).order_by(jobs.c.id))]


def test_two_processes_creating_a_schedule_at_the_same_moment_enqueue_it_once(
    runtimes: Runtimes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both processes see no schedule row yet; the second one's insert meets the first one's
    uncommitted row. Exactly one of them may enqueue, and neither may fail."""
    ticks = Recorder()
    first = runtimes.runtime()
    second_db = runtimes.database()
    second = runtimes.runtime(db=second_db)
    for runtime in (first, second):
        runtime.register("tick", ticks)
        assert runtime.run_due() == 0  # each process is up and has registered itself
        runtime.every("tick", "tick", timedelta(minutes=5))

    # Hold the first process inside its transaction, right after it inserted the schedule row.
    inside, go = threading.Event(), threading.Event()
    enqueue_for_real = first.enqueue

    def stalled_enqueue(*args: Any, **kwargs: Any) -> None:
        inside.set()
        assert go.wait(10)
        enqueue_for_real(*args, **kwargs)

    monkeypatch.setattr(first, "enqueue", stalled_enqueue)

    # Know when the second process has looked at the schedules and found nothing.
    looked = threading.Event()
    read_for_real = second_db.read

    @contextmanager
    def read() -> Iterator[Any]:
        with read_for_real() as conn:
            yield conn
        looked.set()

    monkeypatch.setattr(second_db, "read", read)

    results: dict[str, Any] = {}

    def run(name: str, runtime: InProcessRuntime) -> None:
        try:
            results[name] = runtime.run_due()
        except Exception as exc:
            results[name] = exc

    first_thread = threading.Thread(target=run, args=("first", first))
    first_thread.start()
    assert inside.wait(10)
    second_thread = threading.Thread(target=run, args=("second", second))
    second_thread.start()
    assert looked.wait(10)
    if not runtimes.db.is_sqlite:
        # Let the second process's INSERT reach the first one's uncommitted row and wait on it.
        eventually(lambda: sessions_waiting_on_a_lock(runtimes.db) > 0)
    go.set()
    first_thread.join(10)
    second_thread.join(10)

    assert not [r for r in results.values() if isinstance(r, Exception)], results
    assert results["first"] + results["second"] == 1
    assert len(ticks.calls) == 1
    assert job_rows(runtimes.db) == []


def test_a_job_held_by_a_worker_whose_process_is_gone_is_handed_back_at_once(
    runtimes: Runtimes,
) -> None:
    dead = runtimes.runtime()
    dead.register("send", dies)
    enqueue(dead, "send", named("welcome"))
    crash_while_running(dead)
    gone_pid = _pid_of_a_finished_process()
    with dead.db.transaction() as tx:
        tx.conn.execute(update(workers).where(workers.c.id == dead.worker_id).values(pid=gone_pid))

    handler = Recorder()
    survivor = runtimes.runtime(db=runtimes.database())
    survivor.register("send", handler)
    assert survivor.recover_stale() == 1, "same host, pid gone: no need to wait for staleness"
    assert survivor.run_due() == 1
    assert handler.names == ["welcome"]


def _pid_of_a_finished_process() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert child.pid != os.getpid()
    return child.pid
