"""Kill the server with SIGKILL between "decided" and "delivered", start it again, and check
that every action is delivered, and delivered once."""

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

pytestmark = pytest.mark.slow


class Child:
    """`opsloop serve` in its own process, on a given data dir."""

    def __init__(self, data_dir: Path, env: dict[str, str], token: str) -> None:
        self.data_dir = data_dir
        self.env = env
        self.headers = {"Authorization": f"Bearer {token}"}
        self.port = int(env["OPSLOOP_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.data_dir / "server.log").open("ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [sys.executable, "-m", "opsloop", "serve"], env=self.env, stdout=log, stderr=log
            )
        eventually(self._ready, timeout=30)

    def _ready(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, (self.data_dir / "server.log").read_text()
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def get(self, path: str, **params: Any) -> Any:
        return httpx.get(
            f"{self.url}{path}", params=params, headers=self.headers, timeout=10
        ).json()


@pytest.fixture
def child(tmp_path: Path) -> Iterator[Child]:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "lead.yaml").write_text(lead_playbook("auto"))
    env = {
        **os.environ,
        "OPSLOOP_DATA_DIR": str(tmp_path / "data"),
        "OPSLOOP_PLAYBOOKS_DIR": str(playbooks),
        "OPSLOOP_PORT": str(free_port()),
        "OPSLOOP_SMTP_HOST": "127.0.0.1",
        "OPSLOOP_SMTP_PORT": str(free_port()),
        "OPSLOOP_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OPSLOOP_OUTBOX_BACKOFF_BASE_SECONDS": "0.2",
        "OPSLOOP_OUTBOX_BACKOFF_MAX_SECONDS": "0.5",
        "OPSLOOP_OUTBOX_MAX_ATTEMPTS": "1000",
        "OPSLOOP_WORKER_POLL_SECONDS": "0.1",
        "OPSLOOP_LOG_LEVEL": "INFO",
    }
    env.pop("OPSLOOP_DATABASE_URL", None)
    env["TEST_CHAT_PORT"] = str(free_port())
    env["OPSLOOP_NOTIFY_CHANNELS"] = json.dumps(
        {"sales": f"http://127.0.0.1:{env['TEST_CHAT_PORT']}/chat"}
    )
    (tmp_path / "data").mkdir()
    # The playbook has earned `auto` before this story starts.
    settings = Settings(data_dir=tmp_path / "data", playbooks_dir=playbooks)
    with contextlib.closing(OpsLoop(settings)) as ops:
        ops.prepare()
        grant_auto(ops.ctx.db, "lead-qualification")
        token = ops.accounts.create_token("crash-test", "review", actor="tests").token
    process = Child(tmp_path / "data", env, token)
    yield process
    process.stop()


def leads(count: int, start: int = 0) -> list[dict[str, Any]]:
    """Half hot (engaged, sized, funded: notify + task), half cold (nurture email)."""
    events: list[dict[str, Any]] = []
    for n in range(start, start + count):
        subject = f"lead:{n}"
        hot = n % 2 == 0
        if hot:
            events += [
                {"type": "page.viewed", "subject": subject, "payload": {"path": "/pricing"}}
                for _ in range(5)
            ]
        traits = {
            "email": f"l{n}@shop.test",
            "company_size": 50 if hot else 2,
            "budget": 9000 if hot else 0,
        }
        events.append(
            {
                "type": "lead.created",
                "subject": subject,
                "traits": traits,
                "idempotency_key": f"lead-{n}",
            }
        )
    return events


def all_actions(child: Child) -> list[dict[str, Any]]:
    return child.get("/api/actions", limit=500)["actions"]


def test_actions_decided_before_a_crash_are_delivered_exactly_once_after_restart(
    child: Child,
) -> None:
    # The mail server and chat endpoint are down: decisions are made, deliveries cannot happen.
    child.start()
    response = httpx.post(
        f"{child.url}/api/events", json={"events": leads(20)}, headers=child.headers, timeout=30
    )
    assert response.status_code == 201
    eventually(lambda: child.get("/api/metrics")["playbooks"][0]["total"] == 20, timeout=30)
    external = eventually(
        lambda: (
            [a for a in all_actions(child) if a["kind"] in ("email", "notify")]
            if all(
                a["status"] == "retrying"
                for a in all_actions(child)
                if a["kind"] in ("email", "notify")
            )
            and len([a for a in all_actions(child) if a["kind"] in ("email", "notify")]) == 20
            else None
        ),
        timeout=30,
    )
    child.kill()

    smtp = SmtpSink(port=int(child.env["OPSLOOP_SMTP_PORT"]))
    chat = HttpSink(port=int(child.env["TEST_CHAT_PORT"]))
    smtp.start()
    chat.start()
    try:
        child.start()
        eventually(lambda: all(a["status"] == "delivered" for a in all_actions(child)), timeout=60)
        keys = {a["idempotency_key"]: a["kind"] for a in external}
        received = Counter(m.message["X-OpsLoop-Idempotency-Key"] for m in smtp.messages)
        received.update(r.headers["idempotency-key"] for r in chat.requests)
        assert received == Counter(list(keys)), "each action arrives once, none lost, none repeated"
        assert len(child.get("/api/tasks", limit=500)["tasks"]) == 10
        assert child.get("/api/metrics")["playbooks"][0]["total"] == 20, (
            "no decision was made twice"
        )
    finally:
        smtp.stop()
        chat.stop()


def test_a_crash_in_the_middle_of_the_work_loses_nothing(child: Child) -> None:
    smtp = SmtpSink(port=int(child.env["OPSLOOP_SMTP_PORT"]))
    chat = HttpSink(port=int(child.env["TEST_CHAT_PORT"]))
    smtp.start()
    chat.start()
    try:
        child.start()
        for start in range(0, 200, 50):
            response = httpx.post(
                f"{child.url}/api/events",
                json={"events": leads(50, start)},
                headers=child.headers,
                timeout=30,
            )
            assert response.status_code == 201
        child.kill()  # decisions and deliveries are still under way (about 50 of 200 decided here)

        child.start()
        eventually(lambda: child.get("/api/metrics")["playbooks"][0]["total"] == 200, timeout=60)
        eventually(
            lambda: (
                len(all_actions(child)) == 300
                and all(a["status"] == "delivered" for a in all_actions(child))
            ),
            timeout=90,
        )
        actions = all_actions(child)
        received = Counter(m.message["X-OpsLoop-Idempotency-Key"] for m in smtp.messages)
        received.update(r.headers["idempotency-key"] for r in chat.requests)
        external = {a["idempotency_key"] for a in actions if a["kind"] in ("email", "notify")}
        assert set(received) == external, "every action reached its receiver"
        # A repeat can only come from an attempt cut off by the kill, and carries the same key.
        repeats = sum(count - 1 for count in received.values())
        interrupted = sum(
            1
            for a in actions
            for attempt in child.get(f"/api/actions/{a['id']}")["attempt_log"]
            if attempt["outcome"] == "interrupted"
        )
        assert repeats <= interrupted
        assert len(child.get("/api/tasks", limit=500)["tasks"]) == 100
    finally:
        smtp.stop()
        chat.stop()
