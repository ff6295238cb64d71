"""Guardrails hold in every mode, end to end through the service on SQLite and PostgreSQL: a
refund, an action marked sensitive, or a playbook guardrail that matches always waits for a
person, and nothing reaches the outside world before that person says yes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from standardwebhooks import Webhook

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import Conflict
from opsloop.service import OpsLoop
from tests.conftest import WEBHOOK_SECRET, OpsFactory
from tests.sinks import HttpSink

REFUND_REASON = "`refund` actions always need a person's approval"
SENSITIVE_REASON = "the `webhook` action is marked sensitive"
MANAGER_REASON = "Orders over 500 need a manager"


def support_playbook(mode: str, sink: HttpSink) -> str:
    return f"""\
name: support
subject: customer
mode: {mode}
trigger:
  events: complaint.filed
features:
  amount:
    trait: last_order_amount
    default: 0
rules:
  - when: event.payload.want == "refund"
    choose: refund
  - when: event.payload.want == "credit"
    choose: credit
otherwise: apologize
options:
  apologize:
    actions:
      - kind: webhook
        url: {sink.url}/apology
  refund:
    actions:
      - kind: refund
        url: {sink.url}/refund
        body:
          customer: "{{{{ subject }}}}"
          amount: "{{{{ amount }}}}"
  credit:
    actions:
      - kind: webhook
        sensitive: true
        url: {sink.url}/credit
guardrails:
  - when: amount > 500
    reason: {MANAGER_REASON}
"""


def complain(ops: OpsLoop, customer: str, *, want: str = "sorry", amount: int = 80) -> int:
    """Ingest one complaint, decide it, and return the decision's id."""
    event = {
        "type": "complaint.filed",
        "subject": f"customer:{customer}",
        "payload": {"want": want},
        "traits": {"last_order_amount": amount},
    }
    ops.ingest.body(json.dumps(event).encode())
    ops.run_jobs()
    [decision] = ops.decide.list_decisions(subject=f"customer:{customer}")
    return int(decision["id"])


def approve(ops: OpsLoop, decision_id: int) -> None:
    ops.review.verdict(decision_id, ReviewRequest(verdict="approve", reviewer="ana"))
    ops.run_jobs()


def reasons(ops: OpsLoop, decision_id: int) -> list[str]:
    explanation = ops.decide.decision_detail(decision_id)["explanation"]
    return [hold["reason"] for hold in explanation["guardrails"]]


def test_shadow_mode_never_runs_anything_not_even_a_guarded_choice(
    make_ops: OpsFactory, database_url: str, http_sink: HttpSink
) -> None:
    ops = make_ops(database_url, playbooks=[support_playbook("shadow", http_sink)])
    ids = [
        complain(ops, "1"),
        complain(ops, "2", want="refund"),
        complain(ops, "3", want="credit"),
        complain(ops, "4", amount=900),
    ]

    statuses = {d["subject"]: d["status"] for d in ops.decide.list_decisions()}
    assert set(statuses.values()) == {"logged"}
    for decision_id in ids:
        with pytest.raises(Conflict, match="is logged, not pending"):
            ops.review.verdict(decision_id, ReviewRequest(verdict="approve", reviewer="ana"))
    ops.run_jobs()
    assert ops.deliver.list_actions() == []
    assert http_sink.requests == []


def test_recommend_mode_waits_and_the_refund_is_sent_once_after_approval(
    make_ops: OpsFactory, database_url: str, http_sink: HttpSink
) -> None:
    ops = make_ops(database_url, playbooks=[support_playbook("recommend", http_sink)])
    decision_id = complain(ops, "1", want="refund")

    [pending] = ops.decide.list_decisions(status="pending")
    assert (pending["id"], pending["choice"], pending["needs_approval"]) == (
        decision_id,
        "refund",
        True,
    )
    assert reasons(ops, decision_id) == [REFUND_REASON]
    ops.run_jobs()
    assert ops.deliver.list_actions() == []
    assert http_sink.requests == [], "nothing may run before a person approves"

    approve(ops, decision_id)
    ops.run_jobs()

    [refund] = http_sink.to("/refund")
    assert len(http_sink.requests) == 1
    payload = Webhook(WEBHOOK_SECRET).verify(refund.body, refund.headers)
    assert payload["type"] == "opsloop.refund"
    assert payload["data"] == {"customer": "customer:1", "amount": 80}
    detail = ops.decide.decision_detail(decision_id)
    assert detail["status"] == "approved"
    [action] = detail["actions"]
    assert (action["kind"], action["status"]) == ("refund", "delivered")
    assert refund.headers["webhook-id"] == action["idempotency_key"]


def test_auto_mode_runs_an_unguarded_choice_at_once(
    make_ops: OpsFactory, database_url: str, http_sink: HttpSink
) -> None:
    ops = make_ops(database_url, playbooks=[support_playbook("auto", http_sink)])
    decision_id = complain(ops, "1", amount=80)

    detail = ops.decide.decision_detail(decision_id)
    assert (detail["choice"], detail["status"], detail["needs_approval"]) == (
        "apologize",
        "auto",
        False,
    )
    assert detail["explanation"]["guardrails"] == []
    [apology] = http_sink.to("/apology")
    assert Webhook(WEBHOOK_SECRET).verify(apology.body, apology.headers)["data"]["choice"] == (
        "apologize"
    )


@pytest.mark.parametrize(
    ("want", "amount", "choice", "path", "reason"),
    [
        ("refund", 80, "refund", "/refund", REFUND_REASON),
        ("credit", 80, "credit", "/credit", SENSITIVE_REASON),
        ("sorry", 900, "apologize", "/apology", MANAGER_REASON),
    ],
    ids=["refund", "sensitive-action", "guardrail-expression"],
)
def test_auto_mode_holds_a_guarded_choice_until_a_person_approves_it(
    make_ops: OpsFactory,
    database_url: str,
    http_sink: HttpSink,
    want: str,
    amount: int,
    choice: str,
    path: str,
    reason: str,
) -> None:
    ops = make_ops(database_url, playbooks=[support_playbook("auto", http_sink)])
    decision_id = complain(ops, "1", want=want, amount=amount)

    detail = ops.decide.decision_detail(decision_id)
    assert (detail["choice"], detail["status"], detail["needs_approval"]) == (
        choice,
        "pending",
        True,
    )
    assert reasons(ops, decision_id) == [reason]
    ops.run_jobs()
    assert ops.deliver.list_actions() == []
    assert http_sink.requests == [], "a guarded choice must not run in auto mode"

    approve(ops, decision_id)
    ops.run_jobs()

    assert len(http_sink.to(path)) == 1
    assert len(http_sink.requests) == 1
    assert ops.decide.decision_detail(decision_id)["status"] == "approved"


@pytest.mark.parametrize(("mode", "amount"), [("recommend", 80), ("auto", 900)])
def test_a_person_overriding_to_a_guarded_option_runs_it(
    make_ops: OpsFactory, database_url: str, http_sink: HttpSink, mode: str, amount: int
) -> None:
    ops = make_ops(database_url, playbooks=[support_playbook(mode, http_sink)])
    decision_id = complain(ops, "1", amount=amount)
    assert ops.decide.decision_detail(decision_id)["status"] == "pending"

    ops.review.verdict(
        decision_id,
        ReviewRequest(
            verdict="override", reviewer="ana", option="refund", reason="third late delivery"
        ),
    )
    ops.run_jobs()

    [refund] = http_sink.to("/refund")
    assert Webhook(WEBHOOK_SECRET).verify(refund.body, refund.headers)["data"] == {
        "customer": "customer:1",
        "amount": amount,
    }
    assert http_sink.to("/apology") == [], "the option the playbook chose was overridden"
    detail = ops.decide.decision_detail(decision_id)
    assert (detail["status"], detail["final_choice"]) == ("overridden", "refund")
    assert [(a["kind"], a["status"]) for a in detail["actions"]] == [("refund", "delivered")]


def test_rejecting_a_held_decision_runs_nothing(
    make_ops: OpsFactory, database_url: str, http_sink: HttpSink
) -> None:
    ops = make_ops(database_url, playbooks=[support_playbook("auto", http_sink)])
    decision_id = complain(ops, "1", want="refund")

    ops.review.verdict(
        decision_id, ReviewRequest(verdict="reject", reviewer="ana", reason="already refunded")
    )
    ops.run_jobs()

    detail: dict[str, Any] = ops.decide.decision_detail(decision_id)
    assert (detail["status"], detail["final_choice"]) == ("rejected", None)
    assert detail["actions"] == []
    assert ops.deliver.list_actions() == []
    assert http_sink.requests == []
    with pytest.raises(Conflict, match="is rejected, not pending"):
        approve(ops, decision_id)
    assert http_sink.requests == []
