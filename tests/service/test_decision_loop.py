"""The loop end to end through the service, on SQLite and on PostgreSQL: events in, decision
with explanation, review, delivery to a real SMTP server and a real HTTP endpoint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from standardwebhooks import Webhook

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import Conflict, InvalidInput
from tests.conftest import WEBHOOK_SECRET, Clock, OpsFactory, lead_playbook
from tests.sinks import HttpSink, SmtpSink


def send(ops: Any, *events: dict[str, Any]) -> list[int]:
    ingested = ops.ingest.body(json.dumps({"events": list(events)}).encode())
    return [a.id for a in ingested.accepted]


def hot_lead(key: str, clock: Clock) -> list[dict[str, Any]]:
    views = [
        {
            "type": "page.viewed",
            "subject": f"lead:{key}",
            "payload": {"path": "/pricing" if i == 0 else "/blog"},
            "occurred_at": (clock.now.replace(hour=8)).isoformat(),
        }
        for i in range(6)
    ]
    created = {
        "type": "lead.created",
        "subject": f"lead:{key}",
        "traits": {
            "email": f"{key}@example.com",
            "name": "Ana",
            "company": "Acme",
            "company_size": 40,
            "budget": 8000,
        },
    }
    return [*views, created]


def cold_lead(key: str) -> dict[str, Any]:
    return {
        "type": "lead.created",
        "subject": f"lead:{key}",
        "traits": {"email": f"{key}@example.com", "first_name": "Bo", "company_size": 3},
    }


def settings_for(smtp: SmtpSink, sink: HttpSink) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "notify_channels": {"sales": f"{sink.url}/chat"},
    }


def test_recommended_decision_waits_then_approval_sends_the_email(
    make_ops: OpsFactory, database_url: str, clock: Clock, smtp_sink: SmtpSink, http_sink: HttpSink
) -> None:
    ops = make_ops(
        database_url, playbooks=[lead_playbook("recommend")], **settings_for(smtp_sink, http_sink)
    )
    send(ops, cold_lead("7"))
    ops.run_jobs()

    [pending] = ops.decide.list_decisions(status="pending")
    assert pending["choice"] == "nurture"
    assert pending["subject"] == "lead:7"
    assert ops.deliver.list_actions() == [], "nothing may run before a person approves"

    ops.review.verdict(pending["id"], ReviewRequest(verdict="approve", reviewer="ana"))
    ops.run_jobs()

    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == ["7@example.com"]
    assert mail.message["Subject"] == "A few ideas for your team"
    assert "Hi Bo," in mail.body
    detail = ops.decide.decision_detail(pending["id"])
    assert detail["status"] == "approved"
    assert detail["reviews"][0]["reviewer"] == "ana"
    [action] = detail["actions"]
    assert action["status"] == "delivered"
    assert mail.message["Message-ID"] == f"<{action['idempotency_key']}@opsloop>"
    assert [a["outcome"] for a in action["attempt_log"]] == ["ok"]
    verbs = [row["verb"] for row in detail["audit"]]
    assert verbs == ["decision.pending", "decision.approved", "action.delivered"]


def test_explanation_lists_every_scorecard_line_with_the_values_it_saw(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("shadow")])
    send(ops, *hot_lead("1", clock))
    ops.run_jobs()

    [decision] = ops.decide.list_decisions()
    explanation = ops.decide.decision_detail(decision["id"])["explanation"]
    lines = {line["label"]: line for line in explanation["scorecard"]}
    assert len(lines) == 6
    assert lines["Engaged this week"] == {
        "label": "Engaged this week",
        "when": "visits_7d >= 5",
        "saw": {"visits_7d": 6},
        "matched": True,
        "points": 25,
    }
    assert lines["Right size (10-500 people)"]["saw"] == {"company_size": 40}
    assert lines["Asked for a demo"]["matched"] is False
    assert lines["Asked for a demo"]["points"] == 0
    assert explanation["points"] == 80
    assert explanation["rules"][0]["matched"] is True
    assert explanation["chosen_by"]["label"] == "Engaged, right size and funded"
    assert decision["choice"] == "hot"
    assert decision["status"] == "logged", "shadow mode decides and logs, nothing else"
    assert "Engaged this week +25" in decision["why"]
    assert ops.deliver.list_actions() == []


def test_override_runs_the_option_the_person_chose_with_notify_and_task(
    make_ops: OpsFactory, database_url: str, clock: Clock, smtp_sink: SmtpSink, http_sink: HttpSink
) -> None:
    ops = make_ops(
        database_url, playbooks=[lead_playbook("recommend")], **settings_for(smtp_sink, http_sink)
    )
    send(ops, cold_lead("8"))
    ops.run_jobs()
    [pending] = ops.decide.list_decisions(status="pending")

    ops.review.verdict(
        pending["id"],
        ReviewRequest(verdict="override", reviewer="ana", option="hot", reason="CEO called us"),
    )
    ops.run_jobs()

    detail = ops.decide.decision_detail(pending["id"])
    assert detail["status"] == "overridden"
    assert detail["choice"] == "nurture"
    assert detail["final_choice"] == "hot"
    assert detail["reviews"][0]["reason"] == "CEO called us"
    assert [a["kind"] for a in detail["actions"]] == ["notify", "task"]
    assert all(a["status"] == "delivered" for a in detail["actions"])
    [chat] = http_sink.to("/chat")
    assert (
        chat.json()["text"]
        == "Hot lead lead:8 (unknown company) scored 0: no scorecard line matched"
    )
    [task] = ops.deliver.list_tasks()
    assert task["title"] == "Call lead:8 at their company"
    assert task["assignee"] == "sales"
    assert smtp_sink.messages == [], "the nurture email was overridden and must not be sent"


def test_reject_runs_nothing_and_a_settled_decision_cannot_be_reviewed_again(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("recommend")])
    send(ops, cold_lead("9"))
    ops.run_jobs()
    [pending] = ops.decide.list_decisions(status="pending")

    with pytest.raises(InvalidInput, match="reason"):
        ops.review.verdict(pending["id"], ReviewRequest(verdict="reject", reviewer="ana"))
    ops.review.verdict(
        pending["id"], ReviewRequest(verdict="reject", reviewer="ana", reason="a competitor")
    )
    with pytest.raises(Conflict, match="rejected, not pending"):
        ops.review.verdict(pending["id"], ReviewRequest(verdict="approve", reviewer="bo"))
    ops.run_jobs()
    assert ops.deliver.list_actions() == []
    assert ops.learn.metrics()[0]["override_rate"] == 1.0


def test_auto_mode_acts_at_once_and_signs_its_webhook(
    make_ops: OpsFactory, database_url: str, clock: Clock, http_sink: HttpSink
) -> None:
    playbook = lead_playbook(
        "auto",
        **{
            "      - kind: task\n": f'      - kind: webhook\n        url: {http_sink.url}/crm\n        body:\n          lead: "{{{{ subject }}}}"\n          score: "{{{{ score }}}}"\n      - kind: task\n',
        },
    )
    ops = make_ops(
        database_url, playbooks=[playbook], notify_channels={"sales": f"{http_sink.url}/chat"}
    )
    send(ops, *hot_lead("5", clock))
    ops.run_jobs()

    [decision] = ops.decide.list_decisions()
    assert decision["status"] == "auto"
    [hook] = http_sink.to("/crm")
    payload = Webhook(WEBHOOK_SECRET).verify(hook.body, hook.headers)
    assert payload["data"] == {"lead": "lead:5", "score": 80}, "a lone {{ value }} keeps its type"
    assert payload["type"] == "opsloop.action"
    action = next(
        a for a in ops.decide.decision_detail(decision["id"])["actions"] if a["kind"] == "webhook"
    )
    assert hook.headers["webhook-id"] == action["idempotency_key"]
    assert hook.headers["idempotency-key"] == action["idempotency_key"]


def test_same_idempotency_key_stores_one_event_and_answers_with_the_first_id(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("recommend")])
    event = {**cold_lead("3"), "idempotency_key": "form-123"}
    first = ops.ingest.body(json.dumps(event).encode()).accepted
    second = ops.ingest.body(json.dumps(event).encode()).accepted
    batch = ops.ingest.body(json.dumps([event, event]).encode()).accepted
    assert first[0].status == "created"
    assert [(a.id, a.status) for a in second] == [(first[0].id, "duplicate")]
    assert [(a.id, a.status) for a in batch] == [(first[0].id, "duplicate")] * 2
    ops.run_jobs()
    assert len(ops.ingest.list_events()) == 1
    assert len(ops.decide.list_decisions()) == 1


def test_outcome_links_to_the_decision_and_feeds_the_metrics(
    make_ops: OpsFactory, database_url: str, clock: Clock, smtp_sink: SmtpSink, http_sink: HttpSink
) -> None:
    ops = make_ops(
        database_url, playbooks=[lead_playbook("auto")], **settings_for(smtp_sink, http_sink)
    )
    send(ops, cold_lead("a"), cold_lead("b"), cold_lead("c"))
    ops.run_jobs()
    clock.advance(days=3)
    send(ops, {"type": "deal.won", "subject": "lead:a"}, {"type": "deal.lost", "subject": "lead:b"})
    ops.run_jobs()

    by_subject = {
        d["subject"]: ops.decide.decision_detail(d["id"]) for d in ops.decide.list_decisions()
    }
    assert by_subject["lead:a"]["outcome"]["kind"] == "success"
    assert by_subject["lead:a"]["outcome"]["after_seconds"] == pytest.approx(3 * 86400)
    assert by_subject["lead:b"]["outcome"]["kind"] == "failure"
    assert by_subject["lead:c"]["outcome"] is None, "its window is still open"

    clock.advance(days=45)
    assert ops.learn.close_outcome_windows() == 1
    [row] = ops.learn.metrics()
    assert row["decisions"]["auto"] == 3
    assert (row["successes"], row["failures"]) == (1, 2)
    assert row["success_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert row["median_time_to_action_seconds"] is not None
    assert row["pending_reviews"] == 0


def test_an_outcome_stored_before_its_decision_is_still_linked(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("shadow")])
    send(ops, cold_lead("z"), {"type": "deal.won", "subject": "lead:z"})
    ops.run_jobs()
    [decision] = ops.decide.list_decisions()
    assert ops.decide.decision_detail(decision["id"])["outcome"]["kind"] == "success"


def test_cooldown_skips_a_second_trigger_within_the_window(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("shadow")])
    send(ops, cold_lead("q"))
    ops.run_jobs()
    clock.advance(minutes=10)
    send(ops, {"type": "demo.requested", "subject": "lead:q"})
    ops.run_jobs()
    assert len(ops.decide.list_decisions()) == 1
    clock.advance(hours=2)
    send(ops, {"type": "demo.requested", "subject": "lead:q"})
    ops.run_jobs()
    assert len(ops.decide.list_decisions()) == 2


def test_cooldown_holds_for_new_and_known_leads_in_one_batch(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    """A lead seen for the first time has no decision to look up; its own triggers in the batch
    still cool each other down, and a known lead beside it keeps its cooldown."""
    ops = make_ops(database_url, playbooks=[lead_playbook("shadow")])
    send(ops, cold_lead("known"))
    clock.advance(minutes=10)
    later = (clock.now.replace(microsecond=0)).isoformat()
    send(
        ops,
        cold_lead("new"),
        {"type": "demo.requested", "subject": "lead:new", "occurred_at": later},
        {"type": "demo.requested", "subject": "lead:known"},
    )
    ops.run_jobs()
    decided = sorted(d["subject"] for d in ops.decide.list_decisions())
    assert decided == ["lead:known", "lead:new"]


def test_new_playbook_version_is_recorded_on_later_decisions(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("shadow")])
    send(ops, cold_lead("v1"))
    ops.run_jobs()
    applied = ops.decide.apply_playbook(
        lead_playbook("shadow", **{"when: score >= 60": "when: score >= 0"}),
        "v2.yaml",
        actor="test",
    )
    assert (applied.version, applied.changed) == (2, True)
    assert (
        ops.decide.apply_playbook(
            lead_playbook("shadow", **{"when: score >= 60": "when: score >= 0"}),
            "v2.yaml",
            actor="test",
        ).changed
        is False
    )
    send(ops, cold_lead("v2"))
    ops.run_jobs()
    versions = {
        d["subject"]: (d["playbook_version"], d["choice"]) for d in ops.decide.list_decisions()
    }
    assert versions == {"lead:v1": (1, "nurture"), "lead:v2": (2, "hot")}


def test_a_template_that_fails_dead_letters_its_action_but_keeps_the_decision(
    make_ops: OpsFactory, database_url: str, smtp_sink: SmtpSink, http_sink: HttpSink
) -> None:
    broken = lead_playbook(
        "auto",
        **{
            'subject: "A few ideas for': 'subject: "{{ entity.first_name.title() }} — a few ideas for'
        },
    )
    ops = make_ops(database_url, playbooks=[broken], **settings_for(smtp_sink, http_sink))
    send(ops, {"type": "lead.created", "subject": "lead:t1", "traits": {"email": "t1@example.com"}})
    ops.run_jobs()

    [decision] = ops.decide.list_decisions()
    assert decision["status"] == "auto", "the decision is recorded even though its email cannot be"
    [action] = ops.decide.decision_detail(decision["id"])["actions"]
    assert action["status"] == "dead"
    assert action["last_error"].startswith("a template of this action failed: UndefinedError")
    assert smtp_sink.messages == []
    with pytest.raises(Conflict, match="fix the playbook's template"):
        ops.deliver.retry_action(action["id"], actor="ana")
