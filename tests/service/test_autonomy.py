"""Earned autonomy end to end, on SQLite and PostgreSQL: `auto` in YAML is not granted;
promotion is refused until reviewers' agreement clears the target; in `auto` a sample is still
reviewed after the fact; when reviewers start disagreeing the playbook drops back by itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import Conflict
from opsloop.service import OpsLoop
from opsloop.store import audit as audit_store
from tests.conftest import OpsFactory
from tests.sinks import HttpSink


def triage_playbook(sink: HttpSink, mode: str = "recommend") -> str:
    # A small target and window keep the test quick; the math is the same as the defaults'.
    return f"""\
name: triage
subject: ticket
mode: {mode}
trigger:
  events: ticket.opened
rules:
  - when: event.payload.urgent == true
    choose: escalate
otherwise: reply
options:
  reply:
    actions:
      - kind: webhook
        url: {sink.url}/reply
  escalate:
    actions:
      - kind: webhook
        url: {sink.url}/escalate
autonomy:
  target: 0.8
  min_reviews: 20
  window: 40
  sample: 0.5
"""


def open_tickets(ops: OpsLoop, start: int, count: int) -> list[int]:
    events = [
        {"type": "ticket.opened", "subject": f"ticket:{n}", "payload": {"urgent": False}}
        for n in range(start, start + count)
    ]
    ops.ingest.body(json.dumps({"events": events}).encode())
    ops.run_jobs()
    found = ops.decide.list_decisions(playbook="triage", limit=500)
    wanted = {f"ticket:{n}" for n in range(start, start + count)}
    return sorted(d["id"] for d in found if d["subject"] in wanted)


def audit_verbs(ops: OpsLoop) -> list[str]:
    with ops.ctx.db.read() as conn:
        return [row["verb"] for row in audit_store.trail(conn, "playbook", "triage")]


def test_auto_in_yaml_is_not_granted(
    make_ops: OpsFactory, database_url: str, http_sink: HttpSink
) -> None:
    ops = make_ops(database_url)
    applied = ops.decide.apply_playbook(
        triage_playbook(http_sink, "auto"), "triage.yaml", actor="ana"
    )
    assert applied.mode == "recommend"
    assert "must be earned" in str(applied.notice)
    [decision_id] = open_tickets(ops, 0, 1)
    assert ops.decide.decision_detail(decision_id)["status"] == "pending"


def test_promotion_is_refused_until_agreement_clears_the_target_then_granted_and_audited(
    make_ops: OpsFactory, database_url: str, http_sink: HttpSink
) -> None:
    ops = make_ops(database_url, playbooks=[triage_playbook(http_sink)])
    ids = open_tickets(ops, 0, 20)

    with pytest.raises(Conflict, match="needs 20 reviewed decisions, has 0"):
        ops.review.change_mode("triage", "auto", actor="ana")

    for decision_id in ids[:19]:
        ops.review.verdict(decision_id, ReviewRequest(verdict="approve", reviewer="ana"))
    ops.review.verdict(
        ids[19],
        ReviewRequest(verdict="override", reviewer="ana", option="escalate", reason="angry"),
    )
    # 19 of 20: 95% agreement, but the lower bound (76.4%) is under the 80% target.
    ready = ops.review.readiness("triage")
    assert (ready["ready"], ready["reviewed"], ready["agreed"]) == (False, 20, 19)
    assert ready["lower_bound"] == pytest.approx(0.7639, abs=1e-3)
    with pytest.raises(Conflict, match="under the target 80%"):
        ops.review.change_mode("triage", "auto", actor="ana")

    more = open_tickets(ops, 100, 10)
    for decision_id in more:
        ops.review.verdict(decision_id, ReviewRequest(verdict="approve", reviewer="ana"))
    ready = ops.review.readiness("triage")
    assert ready["ready"], ready["why"]

    promoted = ops.review.change_mode("triage", "auto", actor="ana", reason="agreement is there")
    assert (promoted["changed"], promoted["mode"]) == (True, "auto")
    assert "playbook.promoted" in audit_verbs(ops)
    later = open_tickets(ops, 200, 1)
    assert ops.decide.decision_detail(later[0])["status"] == "auto"


def test_in_auto_a_sample_is_reviewed_after_the_fact_and_disagreement_demotes(
    make_ops: OpsFactory, database_url: str, http_sink: HttpSink
) -> None:
    ops = make_ops(database_url, playbooks=[triage_playbook(http_sink)])
    for decision_id in open_tickets(ops, 0, 20):
        ops.review.verdict(decision_id, ReviewRequest(verdict="approve", reviewer="ana"))
    ops.run_jobs()
    ops.review.change_mode("triage", "auto", actor="ana")

    auto_ids = open_tickets(ops, 100, 20)
    ops.run_jobs()
    decided = [ops.decide.decision_detail(i) for i in auto_ids]
    assert {d["status"] for d in decided} == {"auto"}
    sampled = [d["id"] for d in decided if d["sampled"]]
    assert 4 <= len(sampled) <= 16, "about half are sampled at sample: 0.5"
    to_review = {
        d["id"] for d in ops.decide.list_decisions(status="to_review", playbook="triage", limit=100)
    }
    assert to_review == set(sampled)
    delivered = len(http_sink.to("/reply"))
    assert delivered == 40, "every decision acted once: 20 approved, 20 auto"

    # Agreeing after the fact changes nothing outside; the decision leaves the review list.
    ops.review.verdict(sampled[0], ReviewRequest(verdict="approve", reviewer="ana"))
    with pytest.raises(Conflict, match="already reviewed"):
        ops.review.verdict(sampled[0], ReviewRequest(verdict="approve", reviewer="ana"))
    # Disagreeing: no second set of actions, and 21 of 23 puts the bound under the target.
    ops.review.verdict(
        sampled[1],
        ReviewRequest(verdict="override", reviewer="ana", option="escalate", reason="VIP"),
    )
    ops.review.verdict(
        sampled[2],
        ReviewRequest(verdict="override", reviewer="ana", option="escalate", reason="VIP"),
    )
    ops.run_jobs()
    assert len(http_sink.to("/reply")) == delivered
    assert http_sink.to("/escalate") == []

    assert ops.review.readiness("triage")["mode"] == "recommend"
    assert "playbook.demoted" in audit_verbs(ops)
    [after] = open_tickets(ops, 300, 1)
    assert ops.decide.decision_detail(after)["status"] == "pending"

    # The reviews after the fact count in the override rate: in auto they are all there is.
    [row] = ops.learn.metrics(playbook="triage")
    assert (row["reviewed"], row["overridden"], row["decisions"]["auto"]) == (23, 2, 20)
    assert row["override_rate"] == pytest.approx(2 / 23, abs=1e-4)


def test_readiness_and_promotion_over_http(
    make_ops: OpsFactory, sqlite_url: str, http_sink: HttpSink, serve: Any
) -> None:
    ops = make_ops(sqlite_url, playbooks=[triage_playbook(http_sink)], use_clock=False)
    ops.start()
    server = serve(ops)
    with server.client() as api:
        ready = api.get("/api/playbooks/triage/readiness").json()
        assert (ready["ready"], ready["reviewed"], ready["min_reviews"]) == (False, 0, 20)
        refused = api.post("/api/playbooks/triage/mode", json={"mode": "auto", "actor": "ana"})
        assert refused.status_code == 409
        assert "has not earned auto" in refused.json()["message"]
        down = api.post(
            "/api/playbooks/triage/mode", json={"mode": "shadow", "actor": "ana", "reason": "try"}
        )
        assert (down.status_code, down.json()["mode"]) == (200, "shadow")
        missing = api.get("/api/playbooks/nope/readiness")
        assert missing.status_code == 404
