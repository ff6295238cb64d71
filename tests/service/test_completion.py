"""Completion speed and the funnel of the built-in onboarding playbook: weekly cohorts before
and after it went live, each sequence's steps counted, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests.conftest import ROOT, Clock, OpsFactory, grant_auto
from tests.sinks import SmtpSink

ONBOARDING = (ROOT / "playbooks" / "customer-onboarding.yaml").read_text()


def send(ops: Any, clock: Clock, kind: str, subject: str, *, days_ago: float = 0) -> None:
    event = {
        "type": kind,
        "subject": subject,
        "occurred_at": (clock.now - timedelta(days=days_ago)).isoformat(),
        "traits": {"email": f"{subject.split(':')[1]}@example.com", "first_name": "Sam"},
    }
    ops.ingest.body(json.dumps(event).encode())


def test_cohorts_before_and_after_and_the_step_funnel(
    make_ops: OpsFactory, database_url: str, clock: Clock, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(database_url, smtp_host="127.0.0.1", smtp_port=smtp_sink.port)
    # Three weeks of history before the playbook: each customer took four days.
    for n, days_ago in enumerate((20, 13, 6)):
        send(ops, clock, "signup.completed", f"customer:old{n}", days_ago=days_ago)
        send(ops, clock, "project.created", f"customer:old{n}", days_ago=days_ago - 4)
    ops.decide.apply_playbook(ONBOARDING, "customer-onboarding.yaml", actor="test")
    grant_auto(ops.ctx.db, "customer-onboarding")
    ops.ctx.catalog.invalidate()

    for name in ("ann", "bo", "cy", "dee"):
        send(ops, clock, "signup.completed", f"customer:{name}")
    ops.run_jobs()
    clock.advance(days=1, hours=1)
    send(ops, clock, "project.created", "customer:ann")  # ann acts after the welcome
    for _ in range(8):
        clock.advance(days=1)
        ops.run_jobs()

    report = ops.learn.completion("customer-onboarding", weeks=6)
    assert report["before"] == {
        "started": 3,
        "completed": 3,
        "completion_rate": 1.0,
        "median_hours": 96.0,
    }
    assert report["after"] == {
        "started": 1,
        "completed": 1,
        "completion_rate": 1.0,
        "median_hours": 25.0,
    }, "ann acted; the others' 14-day windows are still open"
    assert sum(c["open"] for c in report["cohorts"]) == 3
    assert report["median_change_hours"] == -71.0
    assert [c["live"] for c in report["cohorts"]] == [False] * 4 + [True] * 2
    assert [c["started"] for c in report["cohorts"]] == [0, 1, 1, 1, 4, 0]
    funnel = report["funnel"]
    assert (funnel["started"], funnel["stopped_acted"], funnel["completed"]) == (4, 1, 3)
    reached = {step["label"]: step["reached"] for step in funnel["steps"]}
    assert reached["Welcome"] == 4
    assert reached["Resources"] == 3, "ann's project stopped her sequence before it"
    tasks = [task["title"] for task in ops.deliver.list_tasks()]
    assert tasks == ["Call Sam: no project 7 days after signing up"] * 3
    assert len(smtp_sink.messages) == 4 + 3 + 3, "welcomes; resources and nudges to the three"

    clock.advance(days=10)  # every window has closed: ann completed in a day
    after = ops.learn.completion("customer-onboarding", weeks=6)["after"]
    assert after == {"started": 4, "completed": 1, "completion_rate": 0.25, "median_hours": 25.0}
