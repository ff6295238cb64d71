"""Seed metrics on a hand-built history, on SQLite and PostgreSQL: success and override rates,
time to action and task completion (median and p90), per ISO week and against a baseline
period, and customer satisfaction before and after.

The history, with a fake clock (2026-03-02 is the Monday of ISO week 10; outcomes count
after 2 days):

    week 10 (baseline)  a1 call, approved after 1 h, task done 2 h later, deal won
                        a2 wait, overridden to call after 2 h, task done 4 h later, no outcome
                        a3 call, rejected (never acted: no outcome counts)
    week 12 (recent)    b1 b2 b3 call, approved after 10 min; tasks done after 30 and 60 min,
                        b3's left open; b1 and b2 won, b3 lost
                        c1 call, approved after 10 min, won at once, but its window is open
    now: Friday 2026-03-20 09:00
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.decisions import ReviewRequest
from opsloop.core.periods import parse_baseline
from opsloop.service import OpsLoop
from opsloop.service.learn.metrics import percentile
from tests.conftest import Clock, LiveServer, OpsFactory

PLAYBOOK = """
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
    actions:
      - kind: update_traits
        traits:
          status: waiting
outcome:
  success: deal.won
  failure: deal.lost
  within: 2d
"""

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
WEEK = parse_baseline("7d")


def send(ops: OpsLoop, *events: dict[str, Any]) -> None:
    ops.ingest.body(json.dumps({"events": list(events)}, default=str).encode())


def lead(key: str, size: int) -> dict[str, Any]:
    return {"type": "lead.created", "subject": f"lead:{key}", "traits": {"company_size": size}}


def at(clock: Clock, when: datetime) -> None:
    assert when >= clock.now, "the story only moves forward"
    clock.now = when


def decision_of(ops: OpsLoop, subject: str) -> int:
    [row] = ops.decide.list_decisions(subject=subject)
    return int(row["id"])


def review(ops: OpsLoop, subject: str, verdict: str, **more: Any) -> None:
    request = ReviewRequest(verdict=verdict, reviewer="maria", **more)  # type: ignore[arg-type]
    ops.review.verdict(decision_of(ops, subject), request)
    ops.run_jobs()  # the task is created (and the action delivered) now


def finish_task(ops: OpsLoop, subject: str) -> None:
    [task] = [t for t in ops.deliver.list_tasks(status="open") if t["subject"] == subject]
    ops.deliver.complete_task(task["id"], by="sales")


def csat(when: datetime, rating: Any, **extra: Any) -> dict[str, Any]:
    return {
        "type": extra.pop("type", "csat.submitted"),
        "subject": f"customer:{when:%d%H}",
        "occurred_at": when.isoformat(),
        "payload": {extra.pop("field", "rating"): rating},
    }


@pytest.fixture
def ops(make_ops: OpsFactory, database_url: str, clock: Clock) -> OpsLoop:
    clock.now = MONDAY
    ops = make_ops(database_url, playbooks=[PLAYBOOK])
    hour = timedelta(hours=1)

    send(ops, lead("a1", 40), lead("a2", 3), lead("a3", 50))
    at(clock, MONDAY + hour)
    review(ops, "lead:a1", "approve")
    review(ops, "lead:a3", "reject", reason="a student project")
    at(clock, MONDAY + 2 * hour)
    review(ops, "lead:a2", "override", option="call", reason="they asked for a call")
    at(clock, MONDAY + 3 * hour)
    finish_task(ops, "lead:a1")  # created at +1 h: 2 h
    at(clock, MONDAY + 6 * hour)
    finish_task(ops, "lead:a2")  # created at +2 h: 4 h
    at(clock, MONDAY + timedelta(days=1))
    send(ops, {"type": "deal.won", "subject": "lead:a1"})

    week12 = MONDAY + timedelta(days=14)
    at(clock, week12)
    send(ops, lead("b1", 40), lead("b2", 20), lead("b3", 30))
    at(clock, week12 + timedelta(minutes=10))
    for key in ("b1", "b2", "b3"):
        review(ops, f"lead:{key}", "approve")
    at(clock, week12 + timedelta(minutes=40))
    finish_task(ops, "lead:b1")  # 30 min
    at(clock, week12 + timedelta(minutes=70))
    finish_task(ops, "lead:b2")  # 60 min; b3's stays open
    at(clock, week12 + timedelta(days=1))
    send(
        ops,
        {"type": "deal.won", "subject": "lead:b1"},
        {"type": "deal.won", "subject": "lead:b2"},
        {"type": "deal.lost", "subject": "lead:b3"},
    )
    thursday = week12 + timedelta(days=3)
    at(clock, thursday)
    send(ops, lead("c1", 40))
    at(clock, thursday + timedelta(minutes=10))
    review(ops, "lead:c1", "approve")
    at(clock, thursday + timedelta(hours=3))
    send(ops, {"type": "deal.won", "subject": "lead:c1"})

    # Satisfaction answers are stored with their own times; the last two are not ratings.
    answers = [
        (MONDAY + timedelta(hours=1), 2),
        (MONDAY + timedelta(days=1), 4),
        (MONDAY + timedelta(days=2), 3),
        (MONDAY + timedelta(days=3), "five"),
        (MONDAY + timedelta(days=4), 9),
        (week12 + timedelta(hours=1), 5),
        (week12 + timedelta(days=1, hours=1), 4),
        (week12 + timedelta(days=2, hours=1), 3),
        (week12 + timedelta(days=3, hours=1), "4"),
    ]
    send(ops, *(csat(when, rating) for when, rating in answers))
    at(clock, NOW)
    return ops


def test_all_time_numbers_keep_their_names_and_count_closed_windows_only(ops: OpsLoop) -> None:
    [row] = ops.learn.metrics()
    assert row["playbook"] == "follow-up"
    assert row["decisions"]["approved"] == 5
    assert (row["decisions"]["overridden"], row["decisions"]["rejected"]) == (1, 1)
    assert (row["total"], row["pending_reviews"], row["reviewed"]) == (7, 0, 7)
    assert row["override_rate"] == pytest.approx(2 / 7, abs=1e-4)
    # a1, b1, b2 won; a2's window closed without a win; b3 lost; c1 won but its window is open.
    assert (row["successes"], row["failures"], row["open_windows"]) == (3, 2, 1)
    assert row["success_rate"] == 0.6
    # Time to action: 1 h, 2 h and four times 10 min.
    assert row["actions_timed"] == 6
    assert row["median_time_to_action_seconds"] == 600
    assert row["p90_time_to_action_seconds"] == 5400  # between 3600 and 7200
    # Task completion: 2 h, 4 h, 30 min and 60 min; b3's and c1's tasks are open.
    assert (row["tasks_done"], row["tasks_open"]) == (4, 2)
    assert row["median_task_completion_seconds"] == 5400
    assert row["p90_task_completion_seconds"] == 12240  # 7200 + 0.7 * 7200
    assert row["weeks"] is None, "weeks only when asked for"


def test_a_week_the_data_starts_in_after_its_monday_is_marked_as_the_first(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    wednesday = MONDAY + timedelta(days=2)
    clock.now = wednesday
    ops = make_ops(database_url, playbooks=[PLAYBOOK])
    send(ops, lead("w1", 40))
    at(clock, MONDAY + timedelta(days=7))
    send(ops, lead("w2", 40))
    at(clock, MONDAY + timedelta(days=14))  # week 11 has just ended
    [row] = ops.learn.metrics_report(by="week")["playbooks"]
    parts = {week["week"]: week["partial"] for week in row["weeks"]}
    assert parts == {"2026-W10": "first", "2026-W11": None}
    # Satisfaction's first week is judged from the first decision, not the first answer,
    # since answers trail the work they rate.
    send(ops, csat(MONDAY + timedelta(days=8), 4))
    [week] = ops.learn.metrics_report(by="week")["csat"]["weeks"]
    assert (week["week"], week["partial"]) == ("2026-W11", None)


def test_a_closed_window_counts_as_a_failure_before_the_periodic_job_records_it(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[PLAYBOOK])
    send(ops, lead("z1", 40))
    review(ops, "lead:z1", "approve")
    clock.advance(days=1)
    assert ops.learn.metrics()[0]["open_windows"] == 1
    clock.advance(days=2)
    before = ops.learn.metrics()[0]
    assert (before["successes"], before["failures"], before["open_windows"]) == (0, 1, 0)
    assert ops.learn.close_outcome_windows() == 1
    assert ops.learn.metrics()[0] == before


def test_each_iso_week_has_its_own_numbers(ops: OpsLoop) -> None:
    [row] = ops.learn.metrics_report(by="week", baseline=WEEK)["playbooks"]
    weeks = {week["week"]: week for week in row["weeks"]}
    assert list(weeks) == ["2026-W10", "2026-W12"], "a week without decisions is left out"
    first, third = weeks["2026-W10"], weeks["2026-W12"]
    assert first["starts"] == date(2026, 3, 2)
    assert third["starts"] == date(2026, 3, 16)
    assert (first["total"], first["reviewed"], first["override_rate"]) == (3, 3, 0.6667)
    assert (first["successes"], first["failures"], first["success_rate"]) == (1, 1, 0.5)
    assert first["median_time_to_action_seconds"] == 5400
    assert first["p90_time_to_action_seconds"] == 6840
    assert first["median_task_completion_seconds"] == 10800
    assert first["p90_task_completion_seconds"] == 13680
    assert (third["total"], third["override_rate"]) == (4, 0.0)
    # The data starts on week 10's Monday, so it is whole; week 12 is not over on Friday.
    assert (first["partial"], third["partial"]) == (None, "current")
    assert row["outcome_within_seconds"] == 2 * 86400
    assert (third["successes"], third["failures"], third["open_windows"]) == (2, 1, 1)
    assert third["median_time_to_action_seconds"] == 600
    assert third["p90_time_to_action_seconds"] == 600
    assert third["median_task_completion_seconds"] == 2700
    assert third["p90_task_completion_seconds"] == 3420
    assert third["tasks_open"] == 2


def test_the_recent_week_against_the_first_week_of_data(ops: OpsLoop) -> None:
    [row] = ops.learn.metrics_report(baseline=WEEK)["playbooks"]
    versus = row["vs_baseline"]
    # Each period also counts what its numbers are over, so a reader can say why one is empty.
    assert versus["baseline"] == {
        "since": MONDAY,
        "until": MONDAY + timedelta(days=7),
        "total": 3,
        "open_windows": 0,
        "reviewed": 3,
        "actions_timed": 2,
        "tasks_done": 2,
        "tasks_open": 0,
    }
    assert versus["recent"] == {
        "since": NOW - timedelta(days=7),
        "until": NOW,
        "total": 4,
        "open_windows": 1,
        "reviewed": 4,
        "actions_timed": 4,
        "tasks_done": 2,
        "tasks_open": 2,
    }
    assert versus["success_rate"]["baseline"] == 0.5
    assert versus["success_rate"]["recent"] == 0.6667
    assert versus["success_rate"]["change"] == pytest.approx(1 / 3, abs=1e-3)
    assert versus["override_rate"] == {"baseline": 0.6667, "recent": 0.0, "change": -1.0}
    assert versus["median_time_to_action_seconds"] == {
        "baseline": 5400,
        "recent": 600,
        "change": pytest.approx(-8 / 9, abs=1e-4),
    }
    assert versus["p90_time_to_action_seconds"]["baseline"] == 6840
    assert versus["median_task_completion_seconds"] == {
        "baseline": 10800,
        "recent": 2700,
        "change": -0.75,
    }
    assert versus["p90_task_completion_seconds"]["recent"] == 3420


def test_an_explicit_baseline_period_gives_the_same_comparison(ops: OpsLoop) -> None:
    dates = parse_baseline("2026-03-02..2026-03-08")
    [row] = ops.learn.metrics_report(baseline=dates)["playbooks"]
    versus = row["vs_baseline"]
    assert versus["baseline"]["since"] == datetime(2026, 3, 2, tzinfo=UTC)
    assert versus["baseline"]["until"] == datetime(2026, 3, 9, tzinfo=UTC), "END is included"
    assert versus["baseline"]["total"] == 3
    assert versus["recent"]["since"] == NOW - timedelta(days=7)
    assert versus["median_task_completion_seconds"]["change"] == -0.75


def test_the_default_baseline_is_the_first_30_days_so_nothing_is_recent_yet(
    ops: OpsLoop,
) -> None:
    report = ops.learn.metrics_report()
    assert report["baseline"] == "30d"
    versus = report["playbooks"][0]["vs_baseline"]
    assert versus["baseline"]["total"] == 7
    assert versus["recent"] is None
    assert versus["success_rate"] == {"baseline": 0.6, "recent": None, "change": None}


def test_customer_satisfaction_before_and_after(ops: OpsLoop) -> None:
    report = ops.learn.metrics_report(by="week", baseline=WEEK)
    score = report["csat"]
    assert (score["event"], score["field"]) == ("csat.submitted", "rating")
    assert (score["responses"], score["ignored"]) == (7, 2), "'five' and 9 are not 1-5 ratings"
    assert score["mean_rating"] == pytest.approx(25 / 7, abs=1e-3)
    assert (score["satisfied"], score["satisfied_share"]) == (4, 0.5714)
    versus = score["vs_baseline"]
    assert versus["baseline"]["responses"] == 3
    assert versus["recent"]["responses"] == 4
    assert versus["mean_rating"] == {"baseline": 3.0, "recent": 4.0, "change": 0.3333}
    assert versus["satisfied_share"]["baseline"] == 0.3333
    assert versus["satisfied_share"]["recent"] == 0.75
    assert versus["satisfied_share"]["change"] == pytest.approx(1.25, abs=1e-3)
    weeks = {week["week"]: week for week in score["weeks"]}
    assert weeks["2026-W10"]["mean_rating"] == 3.0
    assert weeks["2026-W12"]["satisfied_share"] == 0.75


def test_the_satisfaction_event_and_field_are_configurable(ops: OpsLoop) -> None:
    send(ops, csat(NOW - timedelta(days=1), 1, type="csat.rated", field="score"))
    score = ops.learn.metrics_report(csat_event="csat.rated", csat_field="score")["csat"]
    assert (score["responses"], score["mean_rating"], score["satisfied_share"]) == (1, 1.0, 0.0)
    nothing = ops.learn.metrics_report(csat_event="survey.answered")["csat"]
    assert (nothing["responses"], nothing["mean_rating"], nothing["vs_baseline"]) == (0, None, None)


def test_since_keeps_the_decisions_made_in_the_window(ops: OpsLoop) -> None:
    [row] = ops.learn.metrics(since=timedelta(days=7))
    assert row["total"] == 4
    assert row["success_rate"] == pytest.approx(0.6667, abs=1e-4)


def test_percentiles_interpolate_between_the_nearest_values() -> None:
    assert percentile([], 0.9) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 0.0], 0.9) == 9.0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a month", "is not a baseline"),
        ("0d", "above zero"),
        ("2026-03-08..2026-03-02", "ends before it starts"),
        ("2026-03-02..soon", "is not a date"),
    ],
)
def test_a_bad_baseline_says_what_to_write(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_baseline(text)


def test_the_command_shows_weeks_the_comparison_and_satisfaction(
    ops: OpsLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(Path(ops.settings.data_dir)))
    monkeypatch.setenv("OPSLOOP_DATABASE_URL", ops.settings.resolved_database_url)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    args = ["metrics", "--by", "week", "--baseline", "2026-03-02..2026-03-08"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "human override rate" in text
    assert "29% (2/7)" in text
    assert "baseline 2026-03-02 to 2026-03-08" in text
    assert "2026-W10 (02 Mar)" in text
    assert "2026-W12 (16 Mar)" in text
    assert "Customer satisfaction" in text
    assert "mean rating 3.57 of 5" in text

    as_json = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert as_json["by"] == "week"
    assert as_json["playbooks"][0]["weeks"][0]["week"] == "2026-W10"

    for bad in (["--by", "day"], ["--baseline", "lately"]):
        result = runner.invoke(app, ["metrics", *bad])
        assert result.exit_code == 2
        assert bad[0] in result.output


def test_the_api_answers_with_the_same_report(
    ops: OpsLoop, serve: Callable[[OpsLoop], LiveServer]
) -> None:
    server = serve(ops)
    with server.client() as api:
        answer = api.get("/api/metrics", params={"by": "week", "baseline": "7d"})
        assert answer.status_code == 200
        body = answer.json()
        assert body["by"] == "week"
        assert body["baseline"] == "7d"
        [row] = body["playbooks"]
        assert row["weeks"][0] == {**row["weeks"][0], "week": "2026-W10", "starts": "2026-03-02"}
        assert row["vs_baseline"]["median_task_completion_seconds"]["change"] == -0.75
        assert row["vs_baseline"]["recent"]["tasks_done"] == 2
        assert [week["partial"] for week in row["weeks"]] == [None, "current"]
        assert row["outcome_within_seconds"] == 172800
        assert body["csat"]["vs_baseline"]["mean_rating"]["recent"] == 4.0

        for name, value in (("by", "day"), ("baseline", "lately"), ("since", "a week")):
            bad = api.get("/api/metrics", params={name: value})
            assert bad.status_code == 422
            assert bad.json()["errors"][0]["field"] == name
