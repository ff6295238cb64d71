"""Sequences: an option's steps — send, wait, wait for an event with then/else, stop when the
subject acts — run one step at a time, on SQLite with the in-process runtime and on PostgreSQL
with Procrastinate, the clock moved by hand and email received by a real SMTP server."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import PlaybookInvalid
from opsloop.core.events import NewEvent
from opsloop.core.playbooks import parse_playbook
from tests.conftest import Clock, OpsFactory
from tests.sinks import SmtpSink

ONBOARDING = """\
name: onboarding
subject: customer
mode: auto
trigger:
  events: [signup.completed]
otherwise: onboard
options:
  onboard:
    stop_when: [project.created, unsubscribed]
    steps:
      - send: {kind: email, to: "{{ entity.email }}", subject: Welcome, body: Hello}
      - wait: 1d
      - send: {kind: email, to: "{{ entity.email }}", subject: Resources, body: Guides}
      - wait_for: login
        where: payload.device != "bot"
        within: 2d
        then:
          - send: {kind: email, to: "{{ entity.email }}", subject: Good to see you, body: Hi}
        else:
          - send: {kind: task, title: "Call {{ subject }}"}
      - send: {kind: email, to: "{{ entity.email }}", subject: Last tip, body: Bye}
"""


def send(ops: Any, clock: Clock, kind: str, subject: str, **payload: Any) -> None:
    event = {
        "type": kind,
        "subject": subject,
        "occurred_at": clock.now.isoformat(),
        "traits": {"email": f"{subject.split(':')[1]}@example.com"},
        "payload": payload,
    }
    ops.ingest.body(json.dumps(event).encode())


def mail(smtp: SmtpSink) -> list[tuple[str, str]]:
    return [(m.rcpt_tos[0].split("@")[0], str(m.message["Subject"])) for m in smtp.messages]


def sequences(ops: Any) -> dict[str, dict[str, Any]]:
    return {s["subject"]: s for s in ops.deliver.list_sequences()}


@pytest.fixture
def onboarding(make_ops: OpsFactory, database_url: str, smtp_sink: SmtpSink) -> Any:
    return make_ops(
        database_url,
        playbooks=[ONBOARDING],
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
    )


def test_each_customer_walks_the_steps_until_they_act(
    onboarding: Any, clock: Clock, smtp_sink: SmtpSink
) -> None:
    ops = onboarding
    for who in ("ann", "bo", "cy"):
        send(ops, clock, "signup.completed", f"customer:{who}")
    ops.run_jobs()
    assert sorted(mail(smtp_sink)) == [("ann", "Welcome"), ("bo", "Welcome"), ("cy", "Welcome")]

    clock.advance(hours=12)
    send(ops, clock, "project.created", "customer:cy")  # cy acted: the sequence stops
    clock.advance(hours=12, seconds=1)
    ops.run_jobs()
    assert sorted(mail(smtp_sink)[3:]) == [("ann", "Resources"), ("bo", "Resources")]

    clock.advance(hours=12)
    send(ops, clock, "login", "customer:bo", device="bot")  # not the login waited for
    send(ops, clock, "login", "customer:ann", device="laptop")
    ops.run_jobs()
    assert mail(smtp_sink)[5:] == [("ann", "Good to see you"), ("ann", "Last tip")]

    clock.advance(days=2)  # bo's window closes without a real login
    ops.run_jobs()
    assert mail(smtp_sink)[7:] == [("bo", "Last tip")]
    assert [task["title"] for task in ops.deliver.list_tasks()] == ["Call customer:bo"]

    found = sequences(ops)
    assert {who: s["status"] for who, s in found.items()} == {
        "customer:ann": "completed",
        "customer:bo": "completed",
        "customer:cy": "stopped",
    }
    assert found["customer:cy"]["stop_reason"].startswith("project.created at ")
    assert found["customer:ann"]["steps_done"] == 6
    ops.run_jobs()
    assert len(smtp_sink.messages) == 8, "nothing is sent twice"


def test_a_stop_stored_between_a_waits_end_and_its_job_is_honoured(
    onboarding: Any, clock: Clock, smtp_sink: SmtpSink
) -> None:
    from opsloop.service.ingest.storing import store_now

    ops = onboarding
    send(ops, clock, "signup.completed", "customer:dee")
    ops.run_jobs()
    clock.advance(days=1, minutes=5)  # the wait is over; its job has not run yet
    # Stored by a path that does not look at sequences (an import of history):
    # the step job finds the event itself.
    unsubscribed = NewEvent(
        "import", "unsubscribed", "customer:dee", clock.now, clock.now, {}, {}, None
    )
    store_now(ops.ctx, [unsubscribed], decide=False)
    ops.run_jobs()
    assert mail(smtp_sink) == [("dee", "Welcome")]
    assert sequences(ops)["customer:dee"]["status"] == "stopped"


def test_a_step_run_twice_is_done_once_and_a_second_sequence_waits_its_turn(
    onboarding: Any, clock: Clock, smtp_sink: SmtpSink
) -> None:
    from opsloop.service.deliver.sequences import run_step

    ops = onboarding
    send(ops, clock, "signup.completed", "customer:eve")
    [started] = ops.deliver.list_sequences()
    assert run_step(ops.ctx, started["id"], "0") == "sent"
    assert run_step(ops.ctx, started["id"], "0") == "stale", "a rerun after a crash"
    clock.advance(minutes=1)
    send(ops, clock, "signup.completed", "customer:eve")  # signs up again while onboarding
    again = sequences_by_id(ops)
    assert len(again) == 2
    skipped = next(s for s in again.values() if s["status"] == "skipped")
    assert skipped["stop_reason"] == "customer:eve already has 1 active sequence (max_active: 1)"
    ops.run_jobs()
    assert mail(smtp_sink) == [("eve", "Welcome")]


def sequences_by_id(ops: Any) -> dict[int, dict[str, Any]]:
    return {s["id"]: s for s in ops.deliver.list_sequences()}


def test_in_recommend_mode_the_sequence_starts_when_a_person_approves(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock, smtp_sink: SmtpSink
) -> None:
    ops = make_ops(
        sqlite_url,
        playbooks=[ONBOARDING.replace("mode: auto", "mode: recommend")],
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
    )
    send(ops, clock, "signup.completed", "customer:fay")
    ops.run_jobs()
    assert ops.deliver.list_sequences() == []
    [pending] = ops.decide.list_decisions(playbook="onboarding")
    ops.review.verdict(pending["id"], ReviewRequest(verdict="approve", reviewer="owner@shop"))
    ops.run_jobs()
    assert mail(smtp_sink) == [("fay", "Welcome")]
    fay = sequences(ops)["customer:fay"]
    assert (fay["position"], fay["next_step"]) == ("2", 'email "Resources"')
    assert fay["next_at"] == clock.now + timedelta(days=1), "after the one-day wait"


def test_a_person_stops_a_sequence(onboarding: Any, clock: Clock, smtp_sink: SmtpSink) -> None:
    ops = onboarding
    send(ops, clock, "signup.completed", "customer:gus")
    ops.run_jobs()
    [running] = ops.deliver.list_sequences(status="open")
    assert ops.deliver.stop_sequence(running["id"], who="owner@shop", reason="asked us to")
    assert not ops.deliver.stop_sequence(running["id"], who="owner@shop", reason="again")
    clock.advance(days=5)
    ops.run_jobs()
    assert mail(smtp_sink) == [("gus", "Welcome")]
    assert sequences(ops)["customer:gus"]["stop_reason"] == "stopped by owner@shop: asked us to"


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (
            ("    steps:\n", "    actions: [{kind: task, title: x}]\n    steps:\n"),
            "options.onboard.steps",
            "not both",
        ),
        (("        within: 2d\n", ""), "options.onboard.steps[3].within", "needs `within`"),
        (
            ("      - wait: 1d\n", "      - wait: 1d\n        within: 1d\n"),
            "options.onboard.steps[1].within",
            "belongs to a `wait_for`",
        ),
        (
            ("      - wait: 1d\n", "      - wiat: 1d\n"),
            "options.onboard.steps[1].wiat",
            "did you mean 'wait'",
        ),
        (("payload.device", "payload.device +"), "options.onboard.steps[3].where", "expression"),
    ],
)
def test_a_bad_step_is_refused_with_its_line(
    change: tuple[str, str], where: str, says: str
) -> None:
    from opsloop.reasoning.compiler import compile_playbook

    with pytest.raises(PlaybookInvalid) as raised:
        compile_playbook(*parse_playbook(ONBOARDING.replace(*change), "onboarding.yaml"))
    found = [p for p in raised.value.problems if p.field == where]
    assert found, raised.value.problems
    assert says in found[0].message
    assert found[0].line is not None


def test_sequence_positions_walk_into_branches_and_back_out() -> None:
    from opsloop.service.deliver.sequences import after, branch_start

    steps = parse_playbook(ONBOARDING)[0].options["onboard"].steps
    assert after(steps, "0") == "1"
    assert branch_start(steps, "3", "then") == "3.then.0"
    assert after(steps, "3.then.0") == "4"
    assert after(steps, "3.else.0") == "4"
    assert after(steps, "4") is None


def test_a_backtest_says_what_a_sequence_would_have_sent_and_when_it_would_have_stopped(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock
) -> None:
    ops = make_ops(sqlite_url, playbooks=[ONBOARDING])
    start = clock.now
    for who in ("x1", "x2", "x3", "x4"):
        send(ops, clock, "signup.completed", f"customer:{who}")
    clock.advance(hours=12)
    send(ops, clock, "project.created", "customer:x3")
    clock.advance(hours=17)  # 1.2 days in
    send(ops, clock, "login", "customer:x4", device="bot")
    clock.advance(hours=7)  # 1.5 days in
    send(ops, clock, "login", "customer:x2", device="laptop")
    clock.advance(days=10)
    send(ops, clock, "login", "customer:x9", device="laptop")  # the data goes on past day 3

    report = ops.learn.backtest(playbook="onboarding", since="30d", save=False)
    [replayed] = report["sequences"]
    assert (replayed["option"], replayed["started"]) == ("onboard", 4)
    sends = {s["step"]: (s["would_send"], s["median_after_hours"]) for s in replayed["sends"]}
    assert sends == {
        'email "Welcome"': (4, 0.0),
        'email "Resources"': (3, 24.0),
        'email "Good to see you"': (1, 36.0),
        'task "Call {{ subject }}"': (2, 72.0),
        'email "Last tip"': (3, 72.0),
    }
    assert (replayed["completed"], replayed["stopped"], replayed["running_at_data_end"]) == (
        3,
        1,
        0,
    )
    assert replayed["median_hours_to_stop"] == 12.0
    x3 = next(e for e in replayed["examples"] if e["subject"] == "customer:x3")
    assert x3["sent"] == [{"step": 'email "Welcome"', "at": start.isoformat()}]
    assert x3["ended"] == "stopped"
