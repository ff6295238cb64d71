"""`opsloop demo` as a user runs it: a real process serving on a port, checked over HTTP with
the API token and the sign-in it prints, then stopped with Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import eventually
from tests.people import Person, sign_in
from tests.sinks import free_port

OPSLOOP = Path(sys.executable).parent / "opsloop"


def get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.get(url, headers=headers, timeout=5)
    except httpx.TransportError:
        return None
    return answer.json() if answer.status_code == 200 else None


@pytest.mark.slow
def test_opsloop_demo_serves_a_sample_business_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OPSLOOP_PORT": str(port),
        "OPSLOOP_DEMO_RATE": "600",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "demo.out"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(OPSLOOP), "--data-dir", str(tmp_path / "data"), "demo", "--days", "5"],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = eventually(lambda: get(f"{url}/readyz"), timeout=60, interval=0.2)
        assert ready["status"] == "ready"
        printed = eventually(lambda: "export OPSLOOP_TOKEN=" in log.read_text() and log.read_text())
        token = re.search(r"export OPSLOOP_TOKEN=(\S+)", printed).group(1)  # type: ignore[union-attr]
        assert get(f"{url}/api/decisions") is None, "the API needs the token"

        decisions = get(f"{url}/api/decisions?limit=500", token)["decisions"]
        statuses = {d["status"] for d in decisions}
        assert {"pending", "approved"} <= statuses
        outbox = get(f"{url}/demo/outbox")
        assert outbox["totals"]["emails"] > 0
        assert outbox["emails"][0]["subject"].startswith("A few ideas for ")
        by_name = {m["playbook"]: m for m in get(f"{url}/api/metrics", token)["playbooks"]}
        metrics = by_name["lead-qualification"]
        assert metrics["override_rate"] is not None

        newest = get(f"{url}/api/events?limit=1", token)["events"][0]["id"]
        eventually(lambda: get(f"{url}/api/events?limit=1", token)["events"][0]["id"] > newest + 2)

        # The printed sign-in works in a browser's way: the form, then the session cookie.
        found = re.search(r"as (\S+@\S+) with the password (\S+) ", printed)
        assert found, printed
        owner = Person(found.group(1), found.group(2), "owner")
        browser, _ = sign_in(url, owner)
        with closing(browser):
            assert browser.get("/api/me").json()["role"] == "owner"
            dashboard = browser.get("/dashboard")
            assert dashboard.status_code == 200
            assert 'data-playbook="lead-qualification"' in dashboard.text
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(30)
    printed = log.read_text()
    assert code == 0, printed
    assert f"OpsLoop demo on {url}" in printed
    assert "decisions --status pending" in printed
    assert "its win-back test sent" in printed
    assert "experiments win-back" in printed
    assert f"curl {url}/demo/outbox" in printed
    assert f"Open {url}/dashboard and sign in as owner@demo-business.example" in printed
    assert "Stopped." in printed
