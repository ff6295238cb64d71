"""`opsloop demo` as a user runs it: a real process serving on a port, checked over HTTP,
then stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import eventually
from tests.sinks import free_port

OPSLOOP = Path(sys.executable).parent / "opsloop"


def get(url: str) -> Any:
    try:
        answer = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
    return answer.json() if answer.status_code == 200 else None


@pytest.mark.slow
def test_opsloop_demo_serves_a_sample_business_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OPSLOOP_PORT": str(port), "OPSLOOP_DEMO_RATE": "600"}
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

        decisions = get(f"{url}/api/decisions?limit=500")["decisions"]
        statuses = {d["status"] for d in decisions}
        assert {"pending", "approved"} <= statuses
        outbox = get(f"{url}/demo/outbox")
        assert outbox["totals"]["emails"] > 0
        assert outbox["emails"][0]["subject"].startswith("A few ideas for ")
        [metrics] = get(f"{url}/api/metrics")["playbooks"]
        assert metrics["override_rate"] is not None

        newest = get(f"{url}/api/events?limit=1")["events"][0]["id"]
        eventually(lambda: get(f"{url}/api/events?limit=1")["events"][0]["id"] > newest + 2)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(30)
    printed = log.read_text()
    assert code == 0, printed
    assert f"OpsLoop demo on {url}" in printed
    assert "decisions --status pending" in printed
    assert f"curl {url}/demo/outbox" in printed
    assert "Stopped." in printed
