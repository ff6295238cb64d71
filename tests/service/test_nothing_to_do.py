"""A `recommend` decision whose chosen option does nothing has nothing for a person to approve:
it is settled (`logged`) at once, stays in the ledger with its explanation, and never waits in
the inbox, unless the playbook holds it for a person (a guardrail) or learns from reviews (a
`review:<option>` model). It is no evidence for earning `auto`. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import Conflict
from opsloop.service import OpsLoop
from tests.conftest import OpsFactory

WATCH = """
name: lead-watch
subject: lead
mode: recommend
trigger:
  events: [lead.created]
features:
  company_size:
    trait: company_size
    default: 0
  vip:
    trait: vip
    default: 0
rules:
  - when: company_size >= 10
    choose: call
  - when: company_size == 5
    choose: later
otherwise: wait
options:
  call:
    actions:
      - kind: task
        title: "Call {{ subject }}"
  wait:
    label: Wait and see
  later:
    label: Look again in a week
    steps:
      - wait: 7d
guardrails:
  - when: choice == "wait" and vip == 1
    reason: a VIP's lead is looked at by a person, whatever the score
outcome:
  success: deal.won
  within: 2d
"""


def lead(ops: OpsLoop, key: str, **traits: Any) -> dict[str, Any]:
    body = {"type": "lead.created", "subject": f"lead:{key}", "traits": traits}
    ops.ingest.body(json.dumps(body).encode())
    ops.run_jobs()
    [decision] = ops.decide.list_decisions(subject=f"lead:{key}")
    return decision


@pytest.fixture
def ops(make_ops: OpsFactory, database_url: str) -> OpsLoop:
    return make_ops(database_url, playbooks=[WATCH])


def test_a_choice_that_does_nothing_is_settled_without_waiting_for_review(ops: OpsLoop) -> None:
    small = lead(ops, "small", company_size=3)
    waiting = lead(ops, "later", company_size=5)  # a sequence that only waits sends nothing
    big = lead(ops, "big", company_size=40)

    assert (small["choice"], small["status"]) == ("wait", "logged")
    assert (waiting["choice"], waiting["status"]) == ("later", "logged")
    assert (big["choice"], big["status"]) == ("call", "pending")
    # Only the decision with something to approve waits in the inbox.
    inbox = ops.review.inbox()
    assert [item["subject"] for item in inbox["items"]] == ["lead:big"]
    assert ops.review.count_waiting() == {"lead-watch": 1}
    # Still in the ledger, with why, and the audit trail says it was logged.
    detail = ops.decide.decision_detail(small["id"])
    assert detail["explanation"]["nothing_to_do"] is True
    assert detail["explanation"]["why"]
    assert detail["decided_at"] is not None
    assert detail["actions"] == []
    assert [entry["verb"] for entry in detail["audit"]] == ["decision.logged"]
    assert ops.decide.list_decisions(status="logged", playbook="lead-watch")
    # Nothing to review, so a review is refused like any other settled decision's.
    with pytest.raises(Conflict, match="is logged, not pending"):
        ops.review.verdict(small["id"], ReviewRequest("approve", "maria"))


def test_a_guardrail_still_holds_a_do_nothing_choice_for_a_person(ops: OpsLoop) -> None:
    vip = lead(ops, "vip", company_size=3, vip=1)
    assert (vip["choice"], vip["status"]) == ("wait", "pending")
    detail = ops.decide.decision_detail(vip["id"])
    assert "nothing_to_do" not in detail["explanation"]
    assert detail["explanation"]["guardrails"][0]["reason"].startswith("a VIP's lead")


def test_settled_do_nothing_decisions_are_no_evidence_for_autonomy_or_the_metrics(
    ops: OpsLoop,
) -> None:
    for n in range(5):
        lead(ops, f"small{n}", company_size=3)
    big = lead(ops, "big", company_size=40)
    ops.review.verdict(big["id"], ReviewRequest("approve", "maria"))

    readiness = ops.review.readiness("lead-watch")
    assert (readiness["reviewed"], readiness["agreed"]) == (1, 1), "only the one real review"
    [row] = ops.learn.metrics(playbook="lead-watch")
    assert row["decisions"]["logged"] == 5
    assert (row["total"], row["reviewed"], row["pending_reviews"]) == (6, 1, 0)
    assert row["override_rate"] == 0.0
    # They did not act, so they are not in the success rate's denominator either.
    assert row["open_windows"] == 1


def test_a_playbook_that_learns_from_reviews_still_sends_them_for_review(
    make_ops: OpsFactory, database_url: str
) -> None:
    """Its model learns which choice a reviewer makes: "wait" overridden to "call" is the label
    worth most, so a do-nothing choice still waits for a person."""
    learning = WATCH + "model:\n  as: p_call\n  predicts: review:call\n  features: [company_size]\n"
    ops = make_ops(database_url, playbooks=[learning])
    small = lead(ops, "small", company_size=3)
    assert (small["choice"], small["status"]) == ("wait", "pending")
    ops.review.verdict(small["id"], ReviewRequest("override", "maria", "call", "they asked"))
    assert ops.review.readiness("lead-watch")["overridden"] == 1


def test_other_modes_are_unchanged(make_ops: OpsFactory, database_url: str) -> None:
    shadow = make_ops(database_url, playbooks=[WATCH.replace("mode: recommend", "mode: shadow")])
    decision = lead(shadow, "shadowed", company_size=3)
    assert decision["status"] == "logged"
    assert "nothing_to_do" not in shadow.decide.decision_detail(decision["id"])["explanation"]

    auto = make_ops(database_url, playbooks=[WATCH.replace("mode: recommend", "mode: auto")])
    assert lead(auto, "automatic", company_size=3)["status"] == "auto"
