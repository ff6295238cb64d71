"""Absences: `after` an event, `unless` another one `within` a window, decided when the window
closes — on SQLite with the in-process runtime and on PostgreSQL with Procrastinate, the clock
moved by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opsloop.core.errors import PlaybookInvalid
from opsloop.core.playbooks import parse_playbook
from tests.conftest import Clock, OpsFactory

NUDGE = """\
name: first-project-nudge
subject: customer
mode: recommend
trigger:
  after: signup.completed
  unless: [project.created, account.closed]
  within: 3d
features:
  logins:
    count: login
    within: 3d
    label: Logins since signing up
scorecard:
  - label: Came back at least twice
    when: logins >= 2
    points: 10
rules:
  - label: Engaged but stuck
    when: points >= 10
    choose: help
otherwise: nudge
options:
  help:
    actions:
      - kind: task
        title: "Offer {{ subject }} a setup call"
  nudge:
    actions:
      - kind: email
        to: "{{ entity.email }}"
        subject: Your first project takes two minutes
        body: Start here.
"""


def send(ops: Any, clock: Clock, *events: tuple[str, str]) -> None:
    body = {
        "events": [
            {
                "type": kind,
                "subject": subject,
                "occurred_at": clock.now.isoformat(),
                "traits": {"email": f"{subject.split(':')[1]}@example.com"},
            }
            for kind, subject in events
        ]
    }
    ops.ingest.body(json.dumps(body).encode())


def decided(ops: Any) -> dict[str, dict[str, Any]]:
    return {
        d["subject"]: ops.decide.decision_detail(d["id"])
        for d in ops.decide.list_decisions(playbook="first-project-nudge")
    }


def test_the_window_closes_without_the_event_and_only_then_is_decided(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[NUDGE])
    send(ops, clock, ("signup.completed", "customer:ann"), ("signup.completed", "customer:bo"))
    send(ops, clock, ("signup.completed", "customer:cy"))
    clock.advance(hours=1)
    send(ops, clock, ("login", "customer:ann"), ("login", "customer:ann"))
    clock.advance(days=1)
    send(ops, clock, ("project.created", "customer:bo"))  # bo acted: never nudged
    ops.run_jobs()
    assert decided(ops) == {}, "nothing is decided while the windows are open"

    clock.advance(days=2)  # three days and an hour after the signups: all three closed
    ops.run_jobs()
    ops.run_jobs()  # a second pass finds nothing more to do
    found = decided(ops)
    assert sorted(found) == ["customer:ann", "customer:cy"]
    ann, cy = found["customer:ann"], found["customer:cy"]
    assert ann["choice"] == "help", "features read the whole window: ann logged in twice"
    assert ann["inputs"]["features"]["logins"] == 2
    assert cy["choice"] == "nudge"
    assert cy["why"].startswith("No project.created or account.closed within 3 days of ")
    absence = cy["explanation"]["absence"]
    assert absence["after"]["type"] == "signup.completed"
    assert absence["within"] == "3 days"
    assert cy["status"] == "pending", "recommend mode: a person approves the nudge"


def test_an_unless_event_at_the_same_moment_counts_and_a_rerun_decides_once(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    from opsloop.service.decide.absences import decide_absence

    ops = make_ops(database_url, playbooks=[NUDGE])
    send(ops, clock, ("signup.completed", "customer:dee"), ("account.closed", "customer:dee"))
    send(ops, clock, ("signup.completed", "customer:eve"))
    clock.advance(days=3)
    ops.run_jobs()
    assert sorted(decided(ops)) == ["customer:eve"]

    # A worker killed after its commit runs the job again: the decision is not made twice.
    signup = decided(ops)["customer:eve"]["event_id"]
    assert decide_absence(ops.ctx, "first-project-nudge", signup) is None
    assert len(ops.decide.list_decisions(playbook="first-project-nudge")) == 1


def test_a_backtest_replays_absences_as_the_live_loop_decides_them(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock
) -> None:
    ops = make_ops(sqlite_url, playbooks=[NUDGE])
    for day in range(6):
        send(ops, clock, *[("signup.completed", f"customer:d{day}-{n}") for n in range(4)])
        send(ops, clock, ("project.created", f"customer:d{day}-0"))
        clock.advance(hours=1)
        send(ops, clock, ("login", f"customer:d{day}-1"))
        clock.advance(hours=11)
        send(ops, clock, ("login", f"customer:d{day}-1"))
        clock.advance(hours=12)
        ops.run_jobs()
    clock.advance(days=3)
    ops.run_jobs()
    live = ops.decide.list_decisions(playbook="first-project-nudge")
    assert len(live) == 6 * 3, "every signup but the one with a project each day"

    report = ops.learn.backtest(playbook="first-project-nudge", since="20d", save=False)
    assert report["live_record"]["stored"] == len(live)
    assert report["live_record"]["reproduced"] == len(live)
    routed = {c["choice"]: c["decisions"] for c in report["choices"]}
    assert routed == {"help": 6, "nudge": 12}


@pytest.mark.parametrize(
    ("trigger", "where", "line", "says"),
    [
        ("after: signup.completed\n  within: 3d", "trigger.unless", 4, "needs `unless`"),
        ("after: signup.completed\n  unless: login", "trigger.within", 4, "needs `within`"),
        ("events: [login]\n  unless: login", "trigger.unless", 6, "belongs to an absence"),
        (
            "events: [login]\n  after: signup.completed\n  unless: login\n  within: 1d",
            "trigger.after",
            6,
            "not both",
        ),
        ("cooldown: 1h", "trigger.events", 4, "say what starts a decision"),
    ],
)
def test_a_half_written_absence_is_refused_with_its_line(
    trigger: str, where: str, line: int, says: str
) -> None:
    text = NUDGE.replace(
        "  after: signup.completed\n  unless: [project.created, account.closed]\n  within: 3d",
        f"  {trigger}",
    )
    with pytest.raises(PlaybookInvalid) as raised:
        parse_playbook(text, "nudge.yaml")
    [problem] = raised.value.problems
    assert (problem.field, problem.line) == (where, line)
    assert says in problem.message
