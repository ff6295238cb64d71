"""What `opsloop demo` shows on its dashboard: the default 90 days of history give every
weekly chart several points, with the simulated reviewer's real waiting time as time to action
and the customers' ratings of their demos as satisfaction."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from opsloop.demo.run import DemoBusiness, prepare_demo, review_time
from opsloop.service import OpsLoop
from opsloop.settings import Settings
from tests.conftest import LiveServer
from tests.people import VIEWER, sign_in


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoBusiness]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("demo"), worker_poll_seconds=0.05)
    # History up to the real now, as `opsloop demo` loads it: the service's clock is the real
    # one once the history is in, and the dashboard's recent period is the last 30 days.
    business = prepare_demo(settings, days=90, seed=7, console=Console(file=io.StringIO()))
    yield business
    business.close()


def test_the_reviewer_works_the_inbox_at_four_on_working_days() -> None:
    friday_evening = datetime(2026, 2, 27, 17, 0, tzinfo=UTC)
    assert review_time(friday_evening) == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    tuesday_morning = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)
    assert review_time(tuesday_morning) == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    assert review_time(datetime(2026, 3, 3, 16, 0, tzinfo=UTC)).day == 4


@pytest.mark.slow
def test_ninety_days_give_every_weekly_chart_several_points(
    demo: DemoBusiness, serve: Callable[[OpsLoop], LiveServer]
) -> None:
    board = demo.ops.learn.dashboard()
    [row] = [r for r in board["playbooks"] if r["playbook"] == "lead-qualification"]
    weeks = row["weeks"]
    assert len(weeks) >= 12
    assert sum(w["success_rate"] is not None for w in weeks) >= 4
    assert sum(w["override_rate"] is not None for w in weeks) >= 10
    waits = [w["median_time_to_action_seconds"] for w in weeks if w["actions_timed"]]
    assert len(waits) >= 10
    # Reviewed at the next 16:00 of a working day: hours, never more than three days.
    assert all(timedelta(hours=1) < timedelta(seconds=s) < timedelta(days=3) for s in waits)
    versus = row["vs_baseline"]
    assert versus["recent"] is not None
    # Time saved and the time-to-action comparison are made of the same medians: they agree.
    saved, waited = row["time_saved_seconds"], versus["median_time_to_action_seconds"]
    assert saved is not None
    assert waited["change"] is not None
    assert (saved > 0) == (waited["change"] < 0)
    # The simulated salesperson made the follow-up calls: task completion time, before and after.
    assert versus["median_task_completion_seconds"]["baseline"] is not None
    assert versus["median_task_completion_seconds"]["recent"] is not None
    assert row["tasks_done"] > row["tasks_open"] > 0
    rated = [w for w in board["csat"]["weeks"] if w["responses"]]
    assert len(rated) >= 10
    assert 3.0 < board["csat"]["mean_rating"] < 4.5
    assert board["pending_reviews"] > 0, "recent decisions wait for the person trying the demo"

    server = serve(demo.ops)
    demo.ops.accounts.create_user(VIEWER.email, VIEWER.password, "viewer", actor="tests")
    client, _ = sign_in(server.url, VIEWER)
    with closing(client):
        page = client.get("/dashboard").text
    found = dict(re.findall(r'id="([\w-]+)-spec">(.*?)</script>', page, re.S))
    assert sorted(found) == ["csat", "override-rate", "success-rate", "time-to-action"]
    for text in found.values():
        [values] = json.loads(text)["datasets"].values()
        assert len(values) >= 4
    # Ninety days of data: the lead playbook's baseline is long over, and what has no recent
    # value says why. (The shop's stock playbooks went live at the end: theirs has not.)
    lead = page.split('data-playbook="lead-qualification"', 1)[1].split("</section>", 1)[0]
    assert "period is still running" not in lead
    assert "the baseline period runs until" not in lead
    assert "are still within their outcome window: success is known up to 45 days" in lead
    assert "For lead-qualification, success is known up to 45 days after the trigger" in page
    assert 'data-metric="task_completion"' in page
