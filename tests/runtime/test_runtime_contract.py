"""The runtime contract (see `opsloop/runtime/base.py`), checked on every backend: the in-process
runtime on SQLite and on PostgreSQL, and the Procrastinate runtime on PostgreSQL.

Most tests drive a runtime by hand with `run_due()` and a clock they move, so timing never
decides the result; the tests that need worker threads wait with `eventually()`. Tests that
only one backend can run (its internals) live in test_inprocess_runtime.py and
test_procrastinate_runtime.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from opsloop.runtime.base import Job, Runtime, utcnow
from opsloop.store.database import Database
from tests.conftest import Clock, eventually
from tests.runtime.support import (
    Recorder,
    Runtimes,
    crash_while_running,
    dies,
    enqueue,
    named,
)

BACKENDS = ["inprocess-sqlite", "inprocess-postgres", "procrastinate-postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime_url(backend: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if backend.endswith("sqlite") else "pg_url"))


@pytest.fixture
def db(runtime_url: str) -> Iterator[Database]:
    database = Database(runtime_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def runtimes(backend: str, runtime_url: str, db: Database, clock: Clock) -> Iterator[Runtimes]:
    made = Runtimes(backend, runtime_url, db, clock)
    yield made
    made.close()


def job_rows(runtime: Runtime) -> list[dict[str, Any]]:
    return runtime.jobs()


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

    assert job_rows(runtime) == []
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
    assert job_rows(runtime) == [], "a finished job leaves the queue"


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
        [row] = job_rows(runtime)
        assert row["status"] == "todo"
        assert row["attempts"] == attempt
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
    [row] = job_rows(runtime)
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
    assert {row["status"] for row in job_rows(runtime)} == {"todo"}

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

    def ran(times: int) -> bool:
        return len(ticks) == times and not job_rows(started[0])

    for expected in range(1, 5):
        eventually(lambda: ran(expected))  # noqa: B023 (called before the loop moves on)
        clock.advance(seconds=30)
    eventually(lambda: len(ticks) == 5 and not job_rows(started[0]))

    for runtime in started:
        runtime.stop()
    assert len(ticks) == 5
    assert job_rows(started[0]) == []


# --- workers that die --------------------------------------------------------------------------


def test_a_job_held_by_a_worker_whose_heartbeat_stopped_is_handed_back_and_run_once(
    runtimes: Runtimes, clock: Clock
) -> None:
    dead = runtimes.runtime(stale_seconds=60.0)
    dead.register("send", dies)
    enqueue(dead, "send", named("welcome", key="lead:1"))
    crash_while_running(dead)
    [held] = job_rows(dead)
    assert held["status"] == "doing"

    handler = Recorder()
    survivor = runtimes.runtime(db=runtimes.database(), stale_seconds=60.0)
    survivor.register("send", handler)
    assert survivor.recover_stale() == 0, "a worker with a fresh heartbeat keeps its jobs"
    assert survivor.run_due() == 0, "a job being run is not run twice"

    runtimes.silence(dead, 61)  # the dead worker's heartbeat is now a minute old
    assert survivor.recover_stale() == 1
    [handed_back] = job_rows(survivor)
    assert handed_back["status"] == "todo"
    assert "stopped" in handed_back["last_error"]

    assert survivor.run_due() == 1
    assert survivor.run_due() == 0
    assert [(job.payload["name"], job.attempts) for call in handler.calls for job in call] == [
        ("welcome", 2)
    ]
    assert job_rows(survivor) == []


def test_a_started_runtime_hands_back_the_jobs_of_a_dead_worker_and_runs_them(
    runtimes: Runtimes, clock: Clock
) -> None:
    dead = runtimes.runtime()
    dead.register("send", dies)
    enqueue(dead, "send", named("welcome"))
    crash_while_running(dead)
    runtimes.silence(dead, 120)

    handler = Recorder()
    survivor = runtimes.runtime(db=runtimes.database(), threads=2, stale_seconds=60.0)
    survivor.register("send", handler)
    survivor.start()

    eventually(lambda: handler.names == ["welcome"] and not job_rows(survivor))
    survivor.stop()
    assert handler.names == ["welcome"]


def test_a_job_that_kills_its_worker_every_time_ends_failed_instead_of_looping(
    runtimes: Runtimes, clock: Clock
) -> None:
    enqueue(runtimes.runtime(), "explode", named("poison"))

    for attempt in range(1, 4):
        process = runtimes.runtime(db=runtimes.database(), stale_seconds=60.0)
        process.register("explode", dies, max_attempts=3)
        assert process.recover_stale() == (0 if attempt == 1 else 1)
        crash_while_running(process)
        runtimes.silence(process, 61)

    last = runtimes.runtime(db=runtimes.database(), stale_seconds=60.0)
    handler = Recorder()
    last.register("explode", handler, max_attempts=3)
    assert last.recover_stale() == 1
    assert last.run_due() == 0
    assert handler.calls == []
    [failed] = last.failed_jobs()
    assert failed["attempts"] == 3
    assert "stopped before it finished" in failed["last_error"]


def test_a_worker_process_killed_mid_job_loses_nothing_and_the_job_runs_once_more(
    runtimes: Runtimes, runtime_url: str, tmp_path: Path
) -> None:
    """A real worker process takes the job, starts it, and is killed with SIGKILL; another
    process hands the job back (at once on the same host for the in-process runtime, after the
    stall timeout for Procrastinate) and runs it: once, as its second attempt."""
    first = runtimes.runtime()
    first.register("send", Recorder())
    enqueue(first, "send", named("welcome", key="lead:1"))

    marker = tmp_path / "started"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, runtimes.backend, runtime_url, str(marker)],
        cwd=Path(__file__).parents[2],
    )
    try:
        eventually(marker.exists, timeout=60)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    [held] = job_rows(first)
    assert held["status"] == "doing", "the killed worker held the job"

    handler = Recorder()
    survivor = runtimes.runtime(db=runtimes.database())
    survivor.register("send", handler)
    if runtimes.procrastinate:
        assert survivor.recover_stale() == 0, "a fresh heartbeat: the job may still be running"
        runtimes.silence_everyone(61)
    assert survivor.recover_stale() == 1
    assert survivor.run_due() == 1
    assert survivor.run_due() == 0
    assert [(job.payload["name"], job.attempts) for call in handler.calls for job in call] == [
        ("welcome", 2)
    ]
    assert job_rows(survivor) == []


# A worker process: runs the runtime's own worker, takes the job, says so, and hangs until killed.
_CHILD = """
import sys, time
from pathlib import Path
from opsloop.store.database import Database
backend, url, marker = sys.argv[1:]
db = Database(url)
if backend.startswith("procrastinate"):
    from opsloop.runtime.procrastinate import ProcrastinateRuntime
    runtime = ProcrastinateRuntime(db, concurrency=1, poll_seconds=0.05)
else:
    from opsloop.runtime.inprocess import InProcessRuntime
    runtime = InProcessRuntime(db, threads=1, poll_seconds=0.05)
def hang(jobs):
    Path(marker).write_text("started")
    time.sleep(3600)
runtime.register("send", hang)
runtime.start()
time.sleep(3600)
"""


def test_a_delayed_job_fires_once_at_its_time_across_a_restart(
    runtimes: Runtimes, clock: Clock
) -> None:
    before = runtimes.runtime()
    before.register("remind", Recorder())
    enqueue(
        before, "remind", named("follow up", key="lead:7"), run_at=clock.now + timedelta(days=3)
    )
    assert before.run_due() == 0
    before.stop()

    handler = Recorder()
    after = runtimes.runtime(db=runtimes.database())
    after.register("remind", handler)
    clock.advance(days=2, hours=23, minutes=59)
    assert after.run_due() == 0, "not before its time, restart or not"
    clock.advance(minutes=1)
    assert after.run_due() == 1
    clock.advance(days=1)
    assert after.run_due() == 0
    assert handler.names == ["follow up"]


def test_cancelling_a_key_removes_its_waiting_jobs_and_nothing_else(
    runtimes: Runtimes, clock: Clock
) -> None:
    runtime = runtimes.runtime()
    handler = Recorder()
    runtime.register("deliver", handler)
    enqueue(runtime, "deliver", named("now", "later", key="action:1"))
    enqueue(runtime, "deliver", named("delayed", key="action:1"), run_at=clock.now + timedelta(1))
    enqueue(runtime, "deliver", named("other", key="action:2"))

    with runtime.db.transaction() as tx:
        assert runtime.cancel(tx, "action:1") == 3
        assert runtime.cancel(tx, "action:404") == 0
    clock.advance(days=2)
    assert runtime.run_due() == 1
    assert handler.names == ["other"]


def test_a_cancel_in_a_transaction_that_rolls_back_cancels_nothing(runtimes: Runtimes) -> None:
    runtime = runtimes.runtime()
    handler = Recorder()
    runtime.register("deliver", handler)
    enqueue(runtime, "deliver", named("kept", key="action:1"))

    def cancel_that_fails_afterwards() -> None:
        with runtime.db.transaction() as tx:
            runtime.cancel(tx, "action:1")
            raise RuntimeError("the cancel failed")

    with pytest.raises(RuntimeError):
        cancel_that_fails_afterwards()
    assert runtime.run_due() == 1
    assert handler.names == ["kept"]


def test_per_subject_order_holds_with_several_worker_processes(runtimes: Runtimes) -> None:
    guard = threading.Lock()
    running: set[str] = set()
    overlaps: list[str] = []
    seen: dict[str, list[int]] = defaultdict(list)

    def handler(batch: list[Job]) -> None:
        [job] = batch
        key = job.ordering_key
        assert key is not None
        with guard:
            if key in running:
                overlaps.append(key)
            running.add(key)
        time.sleep(0.002)  # widens the window in which an overlap would show
        with guard:
            running.discard(key)
            seen[key].append(job.payload["n"])

    workers = [runtimes.runtime(db=runtimes.database(), threads=2, clock=utcnow) for _ in range(3)]
    for worker in workers:
        worker.register("step", handler)
        worker.start()
    keys = [f"lead:{k}" for k in range(5)]
    enqueue(workers[0], "step", [({"n": n}, key) for n in range(6) for key in keys])

    eventually(lambda: sum(map(len, seen.values())) == 30 and workers[0].counts() == {})
    assert overlaps == []
    assert {key: seen[key] for key in keys} == {key: list(range(6)) for key in keys}


def test_waiting_names_the_keys_with_a_job_queued_or_running_until_it_ends(
    runtimes: Runtimes, clock: Clock
) -> None:
    runtime = runtimes.runtime()
    runtime.register("triage", Recorder(fail=lambda job: "model down"), max_attempts=2)
    enqueue(runtime, "triage", named("a", key="triage:a"))
    enqueue(runtime, "triage", named("b", key="triage:b"), run_at=clock.now + timedelta(hours=1))
    assert runtime.waiting(["triage:a", "triage:b", "triage:c"]) == {"triage:a", "triage:b"}
    assert runtime.waiting([]) == set()

    assert runtime.run_due() == 1  # a fails once: waiting for its retry still counts
    assert runtime.waiting(["triage:a"]) == {"triage:a"}
    clock.advance(hours=2)
    assert runtime.run_due() == 2  # a fails for good, b fails once
    assert runtime.waiting(["triage:a", "triage:b"]) == {"triage:b"}, "a failed job waits no more"
