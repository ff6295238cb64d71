"""Sequences across a `kill -9`: N subjects each walk a five-step sequence; the worker running
them is killed with SIGKILL partway, a new one finishes the work. Prints the steps lost and
repeated (both must be 0) and steps per second.

    .venv/bin/python bench/sequences_kill.py                          # SQLite, 10,000 subjects
    .venv/bin/python bench/sequences_kill.py --backend postgres       # Procrastinate workers
    .venv/bin/python bench/sequences_kill.py --subjects 2000 --kill-at 0.3

The playbook (in `auto`) gives each `signup.completed` a sequence of five steps: a task, a
one-second wait, a task, a one-second wait, a task (tasks are local actions, so no receiver is
needed and each one is a row a person would see). The signups are stored first with no worker
running, so every sequence waits at its first step; then `opsloop worker` starts, is killed
with SIGKILL once `--kill-at` of the steps are done, and a second `opsloop worker` runs until
every sequence has completed.

Lost: subjects whose sequence did not complete, or with fewer than three tasks once every
queued action is delivered. Repeated: tasks beyond three for a subject (a step done twice).
Steps/s: steps done over the time from the first worker's start until every sequence completed,
the kill and the restart included (the last tasks' deliveries are waited for after that).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from harness import PYTHON, create_pg_database, drop_pg_database

OPSLOOP = [PYTHON, "-m", "opsloop"]
STEPS_PER_SEQUENCE = 5
TASKS_PER_SEQUENCE = 3

PLAYBOOK = """\
name: bench-onboarding
subject: customer
mode: auto
trigger:
  events: [signup.completed]
otherwise: onboard
options:
  onboard:
    steps:
      - send: {kind: task, title: "Welcome {{ subject }}"}
      - wait: 1s
      - send: {kind: task, title: "Resources for {{ subject }}"}
      - wait: 1s
      - send: {kind: task, title: "Nudge {{ subject }}"}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--kill-at", type=float, default=0.4, help="share of steps done")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="opsloop-seq-kill-"))
    pg_name = None
    if args.backend == "postgres":
        pg_name, url = create_pg_database(args.admin_url)
    else:
        url = f"sqlite:///{work / 'opsloop.db'}"
    playbooks = work / "playbooks"
    playbooks.mkdir()
    (playbooks / "onboarding.yaml").write_text(PLAYBOOK)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")},
        "OPSLOOP_DATABASE_URL": url,
        "OPSLOOP_DATA_DIR": str(work / "data"),
        "OPSLOOP_PLAYBOOKS_DIR": str(playbooks),
        "OPSLOOP_CONFIG": str(work / "none.toml"),
        "OPSLOOP_LOG_LEVEL": "ERROR",
        "OPSLOOP_WORKER_STALE_SECONDS": "5",
    }
    engine = sa.create_engine(url)
    try:
        run = _Run(env, engine, work)
        run.prepare(args.subjects)
        total = args.subjects * STEPS_PER_SEQUENCE
        started = time.monotonic()
        first = run.worker(args.concurrency)
        killed_at = run.wait_for(lambda done: done >= total * args.kill_at)
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = run.worker(args.concurrency)
        run.wait_for(lambda _: run.open_sequences() == 0, timeout=1800)
        elapsed = time.monotonic() - started
        run.wait_for(lambda _: run.undelivered() == 0, timeout=600)  # the last steps' tasks
        second.send_signal(signal.SIGTERM)
        second.wait(60)
        report = run.report(args.subjects, killed_at, elapsed)
        report["backend"] = args.backend
        print(json.dumps(report, indent=2))
        if report["steps_lost"] or report["steps_repeated"]:
            sys.exit(1)
    finally:
        engine.dispose()
        if pg_name is not None:
            drop_pg_database(args.admin_url, pg_name)
        shutil.rmtree(work, ignore_errors=True)


class _Run:
    def __init__(self, env: dict[str, str], engine: sa.Engine, work: Path) -> None:
        self.env = env
        self.engine = engine
        self.work = work
        self.logs = 0

    def prepare(self, subjects: int) -> None:
        subprocess.run([*OPSLOOP, "migrate"], env=self.env, check=True, capture_output=True)
        playbook = str(Path(self.env["OPSLOOP_PLAYBOOKS_DIR"]) / "onboarding.yaml")
        subprocess.run(
            [*OPSLOOP, "playbook", "apply", playbook],
            env=self.env,
            check=True,
            capture_output=True,
        )
        with self.engine.begin() as conn:  # autonomy granted by hand, as the tests do
            conn.execute(sa.text("UPDATE playbooks SET mode = 'auto'"))
        events = self.work / "signups.jsonl"
        with events.open("w") as out:
            for n in range(subjects):
                out.write(json.dumps({"type": "signup.completed", "subject": f"customer:{n}"}))
                out.write("\n")
        # `opsloop ingest` stores and decides; with no worker running, every sequence waits.
        subprocess.run(
            [*OPSLOOP, "ingest", str(events)], env=self.env, check=True, capture_output=True
        )
        assert self.open_sequences() == subjects, "every signup started a sequence"

    def worker(self, concurrency: int) -> subprocess.Popen[bytes]:
        log = (self.work / f"worker-{self.logs}.log").open("wb")
        self.logs += 1
        command = [*OPSLOOP, "worker", "--concurrency", str(concurrency)]
        return subprocess.Popen(command, env=self.env, stdout=log, stderr=log)

    def steps_done(self) -> int:
        return self._one("SELECT coalesce(sum(steps_done), 0) FROM sequences")

    def undelivered(self) -> int:
        return self._one("SELECT count(*) FROM actions WHERE status <> 'delivered'")

    def open_sequences(self) -> int:
        return self._one("SELECT count(*) FROM sequences WHERE status IN ('active', 'waiting')")

    def wait_for(self, done: object, timeout: float = 900) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            steps = self.steps_done()
            if done(steps):  # type: ignore[operator]
                return steps
            time.sleep(0.5)
        raise SystemExit(f"timed out after {timeout} s with {self.steps_done()} steps done")

    def report(self, subjects: int, killed_at: int, elapsed: float) -> dict[str, object]:
        per_subject = self._rows(
            "SELECT s.subject, s.status, count(t.id) FROM sequences s "
            "LEFT JOIN actions a ON a.decision_id = s.decision_id "
            "LEFT JOIN tasks t ON t.action_id = a.id GROUP BY s.subject, s.status"
        )
        lost = sum(
            max(0, TASKS_PER_SEQUENCE - int(tasks)) + (status != "completed")
            for _, status, tasks in per_subject
        )
        repeated = sum(max(0, int(tasks) - TASKS_PER_SEQUENCE) for _, _, tasks in per_subject)
        steps = self.steps_done()
        return {
            "subjects": subjects,
            "steps_expected": subjects * STEPS_PER_SEQUENCE,
            "steps_done": steps,
            "killed_after_steps": killed_at,
            "steps_lost": lost,
            "steps_repeated": repeated,
            "tasks": sum(int(tasks) for _, _, tasks in per_subject),
            "seconds": round(elapsed, 1),
            "steps_per_s": round(steps / elapsed, 1),
        }

    def _one(self, sql: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())

    def _rows(self, sql: str) -> list[tuple[object, ...]]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]


if __name__ == "__main__":
    main()
