"""PostgreSQL scale-out with real processes: one `opsloop serve --no-worker` takes the events
and decides; three `opsloop worker` processes race for the deliveries on Procrastinate. Every
action reaches its receiver once; a worker killed with SIGKILL mid-run loses nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsloop.service import OpsLoop
from opsloop.settings import Settings
from tests.conftest import WEBHOOK_SECRET, eventually, grant_auto, lead_playbook
from tests.sinks import HttpSink, SmtpSink, free_port
from tests.test_crash_restart import leads

pytestmark = pytest.mark.slow


class Process:
    """An `opsloop` command in its own process, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "opsloop", *args], env=env, stdout=out, stderr=out
            )

    def alive(self) -> bool:
        assert self.popen.poll() is None, self.log.read_text()
        return True

    def kill(self) -> None:
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            return self.popen.wait(30)
        return self.popen.returncode


class Cluster:
    def __init__(self, tmp_path: Path, pg_url: str) -> None:
        self.tmp = tmp_path
        playbooks = tmp_path / "playbooks"
        playbooks.mkdir()
        (playbooks / "lead.yaml").write_text(lead_playbook("auto"))
        (tmp_path / "data").mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.smtp = SmtpSink(port=free_port())
        self.chat = HttpSink(port=free_port())
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")},
            "OPSLOOP_DATABASE_URL": pg_url,
            "OPSLOOP_DATA_DIR": str(tmp_path / "data"),
            "OPSLOOP_PLAYBOOKS_DIR": str(playbooks),
            "OPSLOOP_CONFIG": str(tmp_path / "none.toml"),
            "OPSLOOP_PORT": str(self.port),
            "OPSLOOP_SMTP_HOST": "127.0.0.1",
            "OPSLOOP_SMTP_PORT": str(self.smtp.port),
            "OPSLOOP_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "OPSLOOP_NOTIFY_CHANNELS": json.dumps(
                {"sales": f"http://127.0.0.1:{self.chat.port}/chat"}
            ),
            "OPSLOOP_OUTBOX_BACKOFF_BASE_SECONDS": "0.2",
            "OPSLOOP_OUTBOX_BACKOFF_MAX_SECONDS": "0.5",
            "OPSLOOP_WORKER_POLL_SECONDS": "0.1",
            # A killed worker's jobs go to the others after 2 s without its heartbeat.
            "OPSLOOP_WORKER_STALE_SECONDS": "2",
            "OPSLOOP_LOG_LEVEL": "INFO",
        }
        settings = Settings(
            database_url=pg_url, data_dir=tmp_path / "data", playbooks_dir=playbooks
        )
        with contextlib.closing(OpsLoop(settings)) as ops:
            ops.prepare()
            grant_auto(ops.ctx.db, "lead-qualification")
            token = ops.accounts.create_token("scale-test", "review", actor="tests").token
        self.headers = {"Authorization": f"Bearer {token}"}
        self.processes: list[Process] = []

    def start(self, workers: int) -> list[Process]:
        self.smtp.start()
        self.chat.start()
        web = Process(["serve", "--no-worker"], self.env, self.tmp / "web.log")
        self.processes.append(web)
        started = [
            Process(["worker", "--concurrency", "2"], self.env, self.tmp / f"worker{n}.log")
            for n in range(workers)
        ]
        self.processes += started
        eventually(lambda: web.alive() and self._ready(), timeout=60)
        return started

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def send(self, events: list[dict[str, Any]]) -> None:
        answer = httpx.post(
            f"{self.url}/api/events", json={"events": events}, headers=self.headers, timeout=30
        )
        assert answer.status_code == 201, answer.text

    def actions(self) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.url}/api/actions", params={"limit": 500}, headers=self.headers, timeout=10
        )
        return answer.json()["actions"]  # type: ignore[no-any-return]

    def received(self) -> Counter[str]:
        counts = Counter(m.message["X-OpsLoop-Idempotency-Key"] for m in self.smtp.messages)
        counts.update(r.headers["idempotency-key"] for r in self.chat.requests)
        return counts

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        self.smtp.stop()
        self.chat.stop()


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    made = Cluster(tmp_path, pg_url)
    yield made
    made.close()


def delivered(cluster: Cluster, count: int) -> list[dict[str, Any]] | None:
    actions = cluster.actions()
    if len(actions) == count and all(a["status"] == "delivered" for a in actions):
        return actions
    return None


def test_three_workers_racing_on_one_outbox_deliver_each_action_once(cluster: Cluster) -> None:
    workers = cluster.start(workers=3)
    for start in range(0, 60, 20):
        cluster.send(leads(20, start))

    # 30 hot leads: a chat notification and a task each; 30 cold ones: an email each.
    actions = eventually(lambda: delivered(cluster, 90), timeout=90)
    external = [a["idempotency_key"] for a in actions if a["kind"] in ("email", "notify")]
    assert len(external) == 60
    assert cluster.received() == Counter(external), "each action arrives once, none lost"
    assert all(worker.alive() for worker in workers)

    # The web process ran no job; the workers did (Procrastinate logs each job it ends).
    assert "ended with status" not in (cluster.tmp / "web.log").read_text()
    ran = [
        (cluster.tmp / f"worker{n}.log").read_text().count("ended with status") for n in range(3)
    ]
    assert sum(ran) >= 90, ran

    for worker in workers:
        assert worker.stop() == 0, "SIGTERM: the worker finishes its jobs and exits cleanly"


def test_a_worker_killed_mid_run_loses_nothing(cluster: Cluster) -> None:
    workers = cluster.start(workers=3)
    cluster.send(leads(40))
    workers[0].kill()  # deliveries are under way; its jobs go to the others after the stall timeout
    cluster.send(leads(40, 40))

    actions = eventually(lambda: delivered(cluster, 120), timeout=120)
    external = {a["idempotency_key"] for a in actions if a["kind"] in ("email", "notify")}
    received = cluster.received()
    assert set(received) == external, "every action reached its receiver"
    # A repeat can only come from an attempt the kill cut off, and carries the same key.
    repeats = sum(count - 1 for count in received.values())
    assert repeats <= 2 * 2, "at most one repeat per job the killed worker held (2 at once)"
