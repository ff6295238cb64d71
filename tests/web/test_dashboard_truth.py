"""The dashboard never contradicts itself, and says why in words where numbers could seem to:
time saved is made of the same medians as the time-to-action comparison; a comparison without
a recent value says what it waits for; the success chart says why it ends weeks before the
others; weeks the data covers only in part are left out or drawn apart, and the page says
which; task completion time is there, baseline → recent; a decision with nothing to do is
settled without review, and its page says so.

The history, on a fake clock (outcomes count within 45 days):

    Wednesday 4 March 2026 (ISO week 10, which the data starts in after its Monday), then each
    Monday up to 4 May (week 19): leads a and b (size 40 → call: a task) and c (size 3 → wait,
    which does nothing)
      a and b reviewed after REVIEWED_AFTER hours (1 in the baseline's weeks 10-14, 2 from
      week 15), their tasks done TASK_HOURS later (3, then 1); a's deal won a day later
    now: Wednesday 6 May 2026 08:00 — week 19 is not over; the baseline is 4 March to 3 April,
    recent is the 30 days up to now (weeks 15 to 19); windows closed up to week 12
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from opsloop.core.decisions import ReviewRequest
from opsloop.service import OpsLoop
from tests.conftest import Clock
from tests.people import VIEWER
from tests.web.test_dashboard_pages import metric, specs
from tests.web.test_playbook_pages import AppFor, Browse, app_for, browse, text_of

__all__ = ["app_for", "browse"]  # fixtures used here

FOLLOW_UP = """
name: follow-up
subject: lead
mode: recommend
trigger:
  events: [lead.created]
features:
  company_size:
    trait: company_size
    default: 0
rules:
  - when: company_size >= 10
    choose: call
otherwise: wait
options:
  call:
    actions:
      - kind: task
        title: "Call {{ subject }}"
  wait:
    label: Wait and see
outcome:
  success: deal.won
  within: 45d
"""

FIRST = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday
MONDAYS = [datetime(2026, 3, 9, 9, 0, tzinfo=UTC) + timedelta(weeks=n) for n in range(9)]
RECENT_FROM = datetime(2026, 4, 6, tzinfo=UTC)  # week 15
NOW = datetime(2026, 5, 6, 8, 0, tzinfo=UTC)


def send(ops: OpsLoop, *events: dict[str, Any]) -> None:
    ops.ingest.body(json.dumps({"events": list(events)}).encode())
    ops.run_jobs()


def build(ops: OpsLoop, clock: Clock) -> None:
    for n, start in enumerate([FIRST, *MONDAYS]):
        recent = start >= RECENT_FROM
        clock.now = start
        send(
            ops,
            *(
                {
                    "type": "lead.created",
                    "subject": f"lead:{n}{key}",
                    "traits": {"company_size": size},
                }
                for key, size in (("a", 40), ("b", 40), ("c", 3))
            ),
        )
        clock.now = start + timedelta(hours=2 if recent else 1)
        for key in "ab":
            [decision] = ops.decide.list_decisions(subject=f"lead:{n}{key}")
            ops.review.verdict(decision["id"], ReviewRequest("approve", "maria"))
        ops.run_jobs()  # the tasks are created now
        clock.now += timedelta(hours=1 if recent else 3)
        for task in ops.deliver.list_tasks(status="open"):
            ops.deliver.complete_task(task["id"], by="sales")
        clock.now = start + timedelta(days=1)
        send(ops, {"type": "deal.won", "subject": f"lead:{n}a"})
    clock.now = NOW


def story(app_for: AppFor, clock: Clock) -> OpsLoop:
    clock.now = FIRST
    ops = app_for(FOLLOW_UP)
    build(ops, clock)
    return ops


def test_time_saved_agrees_with_a_slower_time_to_action(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    page = browse(story(app_for, clock), VIEWER).get("/dashboard").text

    assert metric(page, "time_to_action").startswith(
        "Time to action 1.5 h baseline 1.0 h → recent 2.0 h +100%"
    )
    assert 'class="change bad">+100%' in page
    saved = metric(page, "time_saved")
    assert saved.startswith("Time saved none the recent period's actions came 1.0 h later")
    assert "(median 1.0 h → 2.0 h, as Time to action shows), so nothing was saved" in saved
    tile = text_of(page.split('data-tile="time-saved">')[1].split("</section>")[0])
    assert (
        tile
        == "Time saved none actions came no sooner than in the baseline: see Time to action below"
    )


def test_each_comparison_without_a_recent_value_says_why(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    page = browse(story(app_for, clock), VIEWER).get("/dashboard").text

    periods = text_of(page.split('data-testid="periods">')[1].split("</p>")[0])
    assert periods == (
        "Baseline 4 Mar – 3 Apr 2026; recent 6 Apr – 6 May 2026, the same length of time up to now."
    )
    # The recent decisions' success is not known yet: the baseline is long over.
    success = metric(page, "success_rate")
    assert success.startswith("Decision success rate 50% baseline 50% (the 10 decisions that acted")
    assert (
        "in the recent period are still within their outcome window: success is known up to "
        "45 days after the trigger)" in success
    )
    assert "baseline period" not in success
    assert "still running" not in text_of(page)


def test_the_success_chart_says_why_it_ends_before_the_others(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    page = browse(story(app_for, clock), VIEWER).get("/dashboard").text

    charts = specs(page)
    weeks_of = {
        chart: sorted({row["week"] for row in next(iter(spec["datasets"].values()))})
        for chart, spec in charts.items()
    }
    assert weeks_of["time-to-action"][-1] == "2026-W19"
    assert weeks_of["success-rate"][-1] == "2026-W12"
    note = text_of(page.split('id="success-rate"')[1].split('data-testid="chart-note">')[1])
    assert note.startswith(
        "Success is known up to 45 days after the triggering event (the playbook's outcome "
        "window), so the weeks from 23 Mar 2026 on are still open (14 decisions waiting for "
        "their outcome) and have no point yet."
    )


def test_partial_weeks_are_left_out_or_drawn_apart_and_the_page_says_which(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    page = browse(story(app_for, clock), VIEWER).get("/dashboard").text

    [rows] = specs(page)["time-to-action"]["datasets"].values()
    by_week = {row["week"]: row for row in rows}
    assert "2026-W10" not in by_week, "the data starts on week 10's Wednesday"
    assert sorted(by_week)[0] == "2026-W11"
    assert by_week["2026-W19"]["so_far"] is True
    assert by_week["2026-W19"]["label"] == "2026-W19, so far (the week is not over)"
    assert not any(row["so_far"] for week, row in by_week.items() if week != "2026-W19")
    said = [text_of(s) for s in re.findall(r'data-testid="partial-weeks">(.*?)</p>', page, re.S)]
    assert said == [
        "A first week the data starts after its Monday covers only part of the week, so it is "
        "left out of the charts (follow-up, week of 2 Mar 2026); the numbers above still count "
        "it.",
        "This week is not over: its point is hollow and not joined to the line, because its "
        "numbers will still move (decisions waiting for review are timed once they act).",
    ]


def test_task_completion_time_before_and_after(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    ops = story(app_for, clock)
    page = browse(ops, VIEWER).get("/dashboard").text

    assert metric(page, "task_completion") == (
        "Task completion time 2.0 h baseline 3.0 h → recent 1.0 h −67% median, from a task's "
        "creation to someone marking it done, over 20 tasks done"
    )
    assert 'class="change good">−67%' in page
    # The same numbers over the API.
    [row] = ops.learn.metrics_report()["playbooks"]
    assert row["vs_baseline"]["median_task_completion_seconds"] == {
        "baseline": 10800.0,
        "recent": 3600.0,
        "change": -0.6667,
    }
    assert (row["vs_baseline"]["recent"]["tasks_done"], row["tasks_open"]) == (10, 0)


def test_a_decision_with_nothing_to_do_is_settled_not_sent_for_review(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    ops = story(app_for, clock)
    viewer = browse(ops, VIEWER)

    line = text_of(viewer.get("/dashboard").text.split('data-playbook="follow-up"')[1])
    assert "0 waiting for review, 10 logged without review (nothing to do" in line
    assert "lead:0c" not in viewer.get("/inbox").text
    [settled] = ops.decide.list_decisions(subject="lead:0c")
    page = text_of(viewer.get(f"/decisions/{settled['id']}").text)
    assert "Nothing to do, so not sent for review: “Wait and see” has no actions to run." in page


def test_while_the_baseline_runs_every_comparison_says_until_when(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    clock.now = FIRST
    ops = app_for(FOLLOW_UP)
    send(ops, {"type": "lead.created", "subject": "lead:1", "traits": {"company_size": 40}})
    clock.now = FIRST + timedelta(days=10)
    page = browse(ops, VIEWER).get("/dashboard").text

    periods = text_of(page.split('data-testid="periods">')[1].split("</p>")[0])
    assert (
        periods
        == "Baseline 4 Mar – 3 Apr 2026, still running: the recent numbers start when it ends."
    )
    assert "(the baseline period runs until 3 Apr 2026)" in metric(page, "override_rate")
    assert metric(page, "time_saved") == (
        "Time saved — shown once the baseline period is over, on 3 Apr 2026"
    )
