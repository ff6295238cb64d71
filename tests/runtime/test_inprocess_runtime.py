"""The runtime contract (see `opsloop/runtime/base.py`) checked on the in-process backend, once
on SQLite and once on PostgreSQL.

Most tests drive the runtime by hand with `run_due()` and a clock they move, so timing never
decides the result; the tests that need worker threads wait with `eventually()`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from opsloop.runtime.base import Job
from opsloop.runtime.inprocess import InProcessRuntime, utcnow
from opsloop.store.database import Database
from opsloop.store.schema import jobs, schedules, workers
from tests.conftest import Clock, eventually

Payloads = list[tuple[dict[str, Any], str | None]]


class WorkerDied(BaseException):
    """Raised by a handler to stand in for a worker process that dies mid-job: it is not an
    `Exception`, so the runtime does not catch it and the job stays claimed, as after a crash."""


class Runtimes:
    """Builds runtimes (and extra `Database` handles standing in for other processes) and stops
    them all when the test ends."""

    def __init__(self, url: str, db: Database, clock: Clock) -> None:
        self.url = url
        self.db = db
        self.clock = clock
        self._runtimes: list[InProcessRuntime] = []
        self._databases: list[Database] = []

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
        **options: Any,
    ) -> InProcessRuntime:
        settings: dict[str, Any] = {
            "threads": 1,
            "poll_seconds": 0.02,
            "stale_seconds": 60.0,
            "retry_base_seconds": 1.0,
            **options,
        }
        runtime = InProcessRuntime(db or self.db, clock=clock or self.clock, **settings)
        self._runtimes.append(runtime)
        return runtime

    def close(self) -> None:
        for runtime in self._runtimes:
            runtime.stop(timeout=10)
        for database in self._databases:
            database.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def runtimes(database_url: str, db: Database, clock: Clock) -> Iterator[Runtimes]:
    made = Runtimes(database_url, db, clock)
    yield made
    made.close()


def enqueue(
    runtime: InProcessRuntime, kind: str, payloads: Payloads, *, run_at: datetime | None = None
) -> None:
    with runtime.db.transaction() as tx:
        runtime.enqueue(tx, kind, payloads, run_at=run_at)


def job_rows(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(jobs).order_by(jobs.c.id))]


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


# --- transactions ------------------------------------------------------------------------------


def test_a_job_enqueued_in_a_transaction_that_rolls_back_never_exists(
    runtimes: Runtimes, db: Database
) -> None:
    runtime = runtimes.runtime()
    handler = Recorder()
    runtime.register("greet", handler)

    def use_case_that_fails_after_enqueueing() -> None:
        with db.transaction() as tx:
            runtime.enqueue(tx, "greet", named("lost"))
            raise RuntimeError("the use case failed")

    with pytest.raises(RuntimeError, match="the use case failed"):
        use_case_that_fails_after_enqueueing()

    assert job_rows(db) == []
    assert runtime.run_due() == 0
    assert handler.calls == []

    enqueue(runtime, "greet", named("kept"))
    assert runtime.run_due() == 1
    assert handler.names == ["kept"]


# --- timing ------------------------------------------------------------------------------------


def test_a_due_job_runs_and_a_delayed_job_waits_for_its_time(
    runtimes: Runtimes, clock: Clock
) -> None:
    runtime = runtimes.runtime()
    handler = Recorder()
    runtime.register("remind", handler)

    enqueue(runtime, "remind", named("later", key="lead:1"), run_at=clock.now + timedelta(hours=1))
    enqueue(runtime, "remind", named("now", key="lead:2"))

    assert runtime.run_due() == 1
    assert handler.names == ["now"]
    [first] = handler.calls[0]
    assert first.payload == {"name": "now"}
    assert first.ordering_key == "lead:2"
    assert first.attempts == 1

    clock.advance(minutes=59, seconds=59)
    assert runtime.run_due() == 0, "a delayed job must not run early"

    clock.advance(seconds=1)
    assert runtime.run_due() == 1
    assert handler.names == ["now", "later"]
    assert job_rows(runtime.db) == [], "a finished job leaves the queue"


def test_a_failing_job_is_retried_with_growing_delays_then_kept_as_failed(
    runtimes: Runtimes, clock: Clock
) -> None:
    runtime = runtimes.runtime(retry_base_seconds=10.0)
    handler = Recorder(fail=lambda job: f"mail server said no (attempt {job.attempts})")
    runtime.register("send", handler, max_attempts=4)
    enqueue(runtime, "send", named("welcome"))

    delays: list[float] = []
    for attempt in range(1, 4):
        assert runtime.run_due() == 1
        [row] = job_rows(runtime.db)
        assert row["status"] == "todo"
        assert row["attempts"] == attempt
        assert row["locked_by"] is None
        assert row["last_error"] == f"ValueError: mail server said no (attempt {attempt})"
        delay = row["run_at"] - clock.now
        delays.append(delay.total_seconds())

        clock.advance(seconds=delay.total_seconds() - 0.001)
        assert runtime.run_due() == 0, "a retry must wait for its backoff"
        clock.advance(seconds=0.001)

    # Exponential backoff with jitter: attempt n waits between base·2ⁿ⁻¹/2 and base·2ⁿ⁻¹.
    for attempt, delay in enumerate(delays, start=1):
        ceiling = 10.0 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling, (attempt, delays)
    assert delays == sorted(delays)

    assert runtime.run_due() == 1  # the fourth and last attempt
    assert [call[0].attempts for call in handler.calls] == [1, 2, 3, 4]
    [row] = job_rows(runtime.db)
    assert row["status"] == "failed"
    assert row["attempts"] == 4
    assert row["last_error"] == "ValueError: mail server said no (attempt 4)"
    assert runtime.counts() == {"failed": 1}
    assert [job["id"] for job in runtime.failed_jobs()] == [row["id"]]

    clock.advance(days=1)
    assert runtime.run_due() == 0, "a failed job is kept, never run again on its own"
    assert len(handler.calls) == 4


# --- ordering ----------------------------------------------------------------------------------


def test_a_later_job_waits_while_an_earlier_job_with_its_key_waits_for_a_retry(
    runtimes: Runtimes, clock: Clock
) -> None:
    runtime = runtimes.runtime(retry_base_seconds=30.0)
    flaky = {"first": 1}  # fails once

    def fail_once(job: Job) -> str | None:
        name = job.payload["name"]
        if flaky.get(name, 0) > 0:
            flaky[name] -= 1
            return "timed out"
        return None

    handler = Recorder(fail=fail_once)
    runtime.register("sync", handler)
    enqueue(runtime, "sync", named("first", "second", key="lead:1"))
    enqueue(runtime, "sync", named("other", key="lead:2"))

    assert runtime.run_due() == 2
    assert handler.names == ["first", "other"], "'second' must wait for 'first' to be retried"
    assert {row["status"] for row in job_rows(runtime.db)} == {"todo"}

    clock.advance(seconds=30)
    assert runtime.run_due() == 2
    assert handler.names == ["first", "other", "first", "second"]


def test_a_later_job_runs_once_the_earlier_job_with_its_key_has_failed_for_good(
    runtimes: Runtimes,
) -> None:
    runtime = runtimes.runtime()
    handler = Recorder(fail=lambda job: "broken" if job.payload["name"] == "bad" else None)
    runtime.register("sync", handler, max_attempts=1)
    enqueue(runtime, "sync", named("bad", "good", key="lead:1"))

    assert runtime.run_due() == 2
    assert handler.names == ["bad", "good"]
    assert runtime.counts() == {"failed": 1}


def test_jobs_sharing_an_ordering_key_never_overlap_and_keep_enqueue_order_across_threads(
    runtimes: Runtimes,
) -> None:
    runtime = runtimes.runtime(threads=4, clock=utcnow)
    guard = threading.Lock()
    running: set[str] = set()
    overlaps: list[tuple[str, int]] = []
    seen: dict[str, list[int]] = defaultdict(list)

    def handler(batch: list[Job]) -> None:
        [job] = batch
        key = job.ordering_key
        assert key is not None
        with guard:
            if key in running:
                overlaps.append((key, job.payload["n"]))
            running.add(key)
        time.sleep(0.002)  # widens the window in which an overlap would show
        with guard:
            running.discard(key)
            seen[key].append(job.payload["n"])

    runtime.register("step", handler)
    runtime.start()
    keys = [f"lead:{k}" for k in range(4)]
    enqueue(runtime, "step", [({"n": n}, key) for n in range(5) for key in keys])
    enqueue(runtime, "step", [({"n": n}, key) for n in range(5, 8) for key in keys])

    eventually(lambda: sum(map(len, seen.values())) == 32 and runtime.counts() == {})
    assert overlaps == []
    assert {key: seen[key] for key in keys} == {key: list(range(8)) for key in keys}


def test_jobs_with_different_keys_run_at_the_same_time_while_the_same_key_waits(
    runtimes: Runtimes,
) -> None:
    runtime = runtimes.runtime(threads=4, clock=utcnow)
    release = threading.Event()
    started: list[str] = []
    finished: list[str] = []

    def handler(batch: list[Job]) -> None:
        [job] = batch
        name = job.payload["name"]
        started.append(name)
        if name == "a1":
            assert release.wait(10), "the test never released a1"
        finished.append(name)

    runtime.register("step", handler)
    runtime.start()
    enqueue(runtime, "step", named("a1", "a2", key="lead:a"))
    enqueue(runtime, "step", named("b1", key="lead:b"))

    # b1 runs to the end while a1 is still running: different keys do not wait for each other.
    eventually(lambda: "a1" in started and finished == ["b1"])
    # While a1 runs, a2 is not claimable, not even by another caller.
    assert runtime.run_due() == 0
    assert "a2" not in started

    release.set()
    eventually(lambda: finished == ["b1", "a1", "a2"])
    assert started == ["a1", "b1", "a2"] or started == ["b1", "a1", "a2"]


# --- batches -----------------------------------------------------------------------------------


def test_a_batch_handler_receives_several_jobs_at_once_in_enqueue_order(
    runtimes: Runtimes,
) -> None:
    runtime = runtimes.runtime()
    handler = Recorder()
    runtime.register("score", handler, batch_size=10)
    enqueue(runtime, "score", named("a", "b", "c"))
    enqueue(runtime, "score", named("d", "e"))

    assert runtime.run_due() == 5
    assert [[job.payload["name"] for job in call] for call in handler.calls] == [
        ["a", "b", "c", "d", "e"]
    ]
    assert job_rows(runtime.db) == []


def test_a_batch_larger_than_the_batch_size_is_split(runtimes: Runtimes) -> None:
    runtime = runtimes.runtime()
    handler = Recorder()
    runtime.register("score", handler, batch_size=2)
    enqueue(runtime, "score", named("a", "b", "c", "d", "e"))

    assert runtime.run_due() == 5
    assert [len(call) for call in handler.calls] == [2, 2, 1]
    assert handler.names == ["a", "b", "c", "d", "e"]


def test_a_poison_job_in_a_failing_batch_is_run_alone_so_the_others_finish(
    runtimes: Runtimes, clock: Clock
) -> None:
    runtime = runtimes.runtime()
    handler = Recorder(fail=lambda job: "poison" if job.payload["name"] == "c" else None)
    runtime.register("score", handler, batch_size=10, max_attempts=2)
    enqueue(runtime, "score", named("a", "b", "c", "d", "e"))

    assert runtime.run_due() == 5
    assert [[job.payload["name"] for job in call] for call in handler.calls] == [
        ["a", "b", "c", "d", "e"],
        ["a"],
        ["b"],
        ["c"],
        ["d"],
        ["e"],
    ]
    [row] = job_rows(runtime.db)
    assert row["payload"] == {"name": "c"}
    assert row["status"] == "todo"
    assert row["last_error"] == "ValueError: poison"

    clock.advance(minutes=5)
    assert runtime.run_due() == 1
    assert [job.payload["name"] for job in handler.calls[-1]] == ["c"]
    [failed] = runtime.failed_jobs()
    assert failed["payload"] == {"name": "c"}
    assert failed["attempts"] == 2
    assert failed["last_error"] == "ValueError: poison"


# --- periodic jobs -----------------------------------------------------------------------------


def test_a_periodic_job_is_enqueued_once_per_interval_across_two_processes(
    runtimes: Runtimes, clock: Clock
) -> None:
    ticks = Recorder()
    first = runtimes.runtime()
    second = runtimes.runtime(db=runtimes.database())
    for runtime in (first, second):
        runtime.register("close-outcomes", ticks)
        runtime.every("close-outcomes", "close-outcomes", timedelta(minutes=5))

    assert first.run_due() == 1, "the first look enqueues the first run"
    assert second.run_due() == 0

    clock.advance(minutes=4)
    assert first.run_due() + second.run_due() == 0

    clock.advance(minutes=1)
    assert second.run_due() == 1
    assert first.run_due() == 0

    clock.advance(minutes=12)  # several intervals missed while nobody looked: one run, not two
    assert first.run_due() + second.run_due() == 1

    assert len(ticks.calls) == 3
    assert {job.payload["schedule"] for call in ticks.calls for job in call} == {"close-outcomes"}
    with first.db.read() as conn:
        [schedule] = conn.execute(select(schedules)).all()
    assert schedule.next_run_at == clock.now + timedelta(minutes=5)


def test_a_periodic_job_is_enqueued_once_per_interval_with_two_processes_polling(
    runtimes: Runtimes, clock: Clock
) -> None:
    guard = threading.Lock()
    ticks: list[int] = []

    def tick(batch: list[Job]) -> None:
        with guard:
            ticks.extend(job.id for job in batch)

    started = []
    for db in (runtimes.db, runtimes.database()):
        runtime = runtimes.runtime(db=db, threads=3, stale_seconds=3600.0)
        runtime.register("tick", tick)
        runtime.every("tick", "tick", timedelta(seconds=30))
        started.append(runtime)
    for runtime in started:
        runtime.start()

    for expected in range(1, 5):
        eventually(lambda expected=expected: len(ticks) == expected and not job_rows(runtimes.db))
        clock.advance(seconds=30)
    eventually(lambda: len(ticks) == 5 and not job_rows(runtimes.db))

    for runtime in started:
        runtime.stop()
    assert len(ticks) == 5
    assert job_rows(runtimes.db) == []


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
        eventually(lambda: _sessions_waiting_on_a_lock(runtimes.db) > 0)
    go.set()
    first_thread.join(10)
    second_thread.join(10)

    assert not [r for r in results.values() if isinstance(r, Exception)], results
    assert results["first"] + results["second"] == 1
    assert len(ticks.calls) == 1
    assert job_rows(runtimes.db) == []


def _sessions_waiting_on_a_lock(db: Database) -> int:
    with db.read() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()


# --- workers that die --------------------------------------------------------------------------


def crash_while_running(runtime: InProcessRuntime) -> None:
    """Claim the next job with `runtime` and 'die' in the middle of it."""
    with pytest.raises(WorkerDied):
        runtime.run_due()


def _dies(batch: list[Job]) -> None:
    raise WorkerDied


def test_a_job_held_by_a_worker_whose_heartbeat_stopped_is_handed_back_and_run_once(
    runtimes: Runtimes, clock: Clock
) -> None:
    dead = runtimes.runtime(stale_seconds=60.0)
    dead.register("send", _dies)
    enqueue(dead, "send", named("welcome", key="lead:1"))
    crash_while_running(dead)
    [held] = job_rows(dead.db)
    assert held["status"] == "doing"
    assert held["locked_by"] == dead.worker_id

    handler = Recorder()
    survivor = runtimes.runtime(db=runtimes.database(), stale_seconds=60.0)
    survivor.register("send", handler)
    assert survivor.recover_stale() == 0, "a worker with a fresh heartbeat keeps its jobs"
    assert survivor.run_due() == 0, "a job being run is not run twice"

    clock.advance(seconds=61)  # the dead worker's heartbeat is now a minute old
    assert survivor.recover_stale() == 1
    [handed_back] = job_rows(survivor.db)
    assert handed_back["status"] == "todo"
    assert handed_back["locked_by"] is None
    assert "stopped" in handed_back["last_error"]
    with survivor.db.read() as conn:
        assert dead.worker_id not in set(conn.execute(select(workers.c.id)).scalars())

    assert survivor.run_due() == 1
    assert survivor.run_due() == 0
    assert [(job.payload["name"], job.attempts) for call in handler.calls for job in call] == [
        ("welcome", 2)
    ]
    assert job_rows(survivor.db) == []


def test_a_job_held_by_a_worker_whose_process_is_gone_is_handed_back_at_once(
    runtimes: Runtimes,
) -> None:
    dead = runtimes.runtime()
    dead.register("send", _dies)
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


def test_a_started_runtime_hands_back_the_jobs_of_a_dead_worker_and_runs_them(
    runtimes: Runtimes, clock: Clock
) -> None:
    dead = runtimes.runtime()
    dead.register("send", _dies)
    enqueue(dead, "send", named("welcome"))
    crash_while_running(dead)
    clock.advance(minutes=2)

    handler = Recorder()
    survivor = runtimes.runtime(db=runtimes.database(), threads=2, stale_seconds=60.0)
    survivor.register("send", handler)
    survivor.start()

    eventually(lambda: handler.names == ["welcome"] and not job_rows(survivor.db))
    survivor.stop()
    assert handler.names == ["welcome"]


def test_a_job_that_kills_its_worker_every_time_ends_failed_instead_of_looping(
    runtimes: Runtimes, clock: Clock
) -> None:
    enqueue(runtimes.runtime(), "explode", named("poison"))

    for attempt in range(1, 4):
        process = runtimes.runtime(db=runtimes.database(), stale_seconds=60.0)
        process.register("explode", _dies, max_attempts=3)
        assert process.recover_stale() == (0 if attempt == 1 else 1)
        crash_while_running(process)
        clock.advance(seconds=61)

    last = runtimes.runtime(db=runtimes.database(), stale_seconds=60.0)
    handler = Recorder()
    last.register("explode", handler, max_attempts=3)
    assert last.recover_stale() == 1
    assert last.run_due() == 0
    assert handler.calls == []
    [failed] = last.failed_jobs()
    assert failed["attempts"] == 3
    assert failed["locked_by"] is None
    assert "stopped before it finished" in failed["last_error"]


def _pid_of_a_finished_process() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert child.pid != os.getpid()
    return child.pid
