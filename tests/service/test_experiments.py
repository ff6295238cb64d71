"""Message experiments end to end, on SQLite and PostgreSQL: an email action with variants
sends one per decision (Thompson sampling on the outcome), the ledger says which, the report
reads the outcomes, and a person ends the experiment keeping a variant (audited) after which
only that variant is sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opsloop.core.errors import Conflict, NotFound
from opsloop.service import OpsLoop
from opsloop.store import audit
from tests.conftest import Clock, OpsFactory

PLAYBOOK = """
name: welcome
subject: lead
mode: auto
trigger:
  events: [lead.created]
otherwise: send
options:
  send:
    actions:
      - kind: email
        to: "{{ entity.email }}"
        subject: "Welcome"
        body: "Hello {{ subject }}"
        variants:
          - name: plain
            subject: "Welcome, {{ subject }}"
          - name: offer
            subject: "10% off for {{ subject }}"
            body: "Use code HELLO, {{ subject }}"
outcome:
  success: purchase
  within: 7d
"""


def send(ops: OpsLoop, *events: dict[str, Any]) -> None:
    ops.ingest.body(json.dumps({"events": list(events)}, default=str).encode())


def lead(key: int) -> dict[str, Any]:
    return {
        "type": "lead.created",
        "subject": f"lead:{key}",
        "traits": {"email": f"p{key}@example.com"},
    }


def emails(ops: OpsLoop) -> dict[str, dict[str, Any]]:
    """subject → the email action's request."""
    found = {}
    for action in ops.deliver.list_actions(limit=1000):
        detail = ops.decide.decision_detail(action["decision_id"])
        found[detail["subject"]] = action["request"]
    return found


@pytest.fixture
def ops(make_ops: OpsFactory, database_url: str) -> OpsLoop:
    return make_ops(database_url, playbooks=[PLAYBOOK])


def test_variants_are_chosen_recorded_reported_and_ended(ops: OpsLoop, clock: Clock) -> None:
    send(ops, *(lead(i) for i in range(30)))
    sent = emails(ops)
    assert len(sent) == 30
    # Rendered as the action itself would be; the ledger's request names the variant.
    for subject, request in sent.items():
        assert request["variant"] in {"plain", "offer"}
        if request["variant"] == "plain":
            assert request["subject"] == f"Welcome, {subject}"
            assert request["body"] == f"Hello {subject}"
        else:
            assert request["subject"] == f"10% off for {subject}"
            assert request["body"] == f"Use code HELLO, {subject}"
    first = ops.decide.list_decisions(subject="lead:0")[0]
    detail = ops.decide.decision_detail(first["id"])
    [chosen] = detail["explanation"]["variants"]
    assert chosen["option"] == "send"
    assert chosen["action"] == 0
    assert chosen["how"] == "thompson"
    assert set(chosen["draws"]) == {"plain", "offer"}
    assert f"Sends variant {chosen['variant']!r}" in detail["why"]

    # Only the offer converts; the plain sends' windows close without a purchase.
    buyers = [s for s, r in sent.items() if r["variant"] == "offer"]
    assert buyers, "with no data the draws are even: both variants are sent"
    clock.advance(hours=1)
    send(ops, *({"type": "purchase", "subject": s} for s in buyers))
    clock.advance(days=8)
    ops.learn.close_outcome_windows()

    [report] = ops.learn.experiments("welcome")
    figures = {v["name"]: v for v in report["variants"]}
    plain, offer = figures["plain"], figures["offer"]
    assert offer["sends"] == offer["resolved"] == offer["successes"] == len(buyers)
    assert plain["sends"] == plain["resolved"] == 30 - len(buyers)
    assert plain["successes"] == 0
    assert offer["rate"] == 1.0
    assert plain["rate"] == 0.0
    assert offer["low"] < 1.0
    assert 0.0 < plain["high"] < 0.5
    assert offer["probability_best"] > 0.99
    assert report["leader"] == "offer"
    assert report["winner"] == "offer"
    assert report["expected_loss"] < report["threshold"]
    assert report["ended"] is None

    # The bandit now sends the offer almost always.
    send(ops, *(lead(i) for i in range(100, 120)))
    later = [r["variant"] for s, r in emails(ops).items() if int(s.split(":")[1]) >= 100]
    assert later.count("offer") >= 18

    # A person ends it, keeping the plain one (their call, not the bandit's).
    with pytest.raises(Conflict, match="no variant 'nope'"):
        ops.learn.end_experiment("welcome", option="send", action=0, keep="nope", actor="ana")
    with pytest.raises(NotFound):
        ops.learn.end_experiment("welcome", option="send", action=1, keep="plain", actor="ana")
    ended = ops.learn.end_experiment("welcome", option="send", action=0, keep="plain", actor="ana")
    assert ended["ended"] is not None
    assert ended["ended"]["winner"] == "plain"
    assert ended["verdict"].startswith("Ended by ana: only 'plain' is sent now.")
    with pytest.raises(Conflict, match="ended by ana"):
        ops.learn.end_experiment("welcome", option="send", action=0, keep="offer", actor="ana")
    with ops.ctx.db.read() as conn:
        [entry] = audit.trail(conn, "experiment", "welcome/send/0")
    assert entry["verb"] == "experiment.ended"
    assert entry["actor"] == "ana"
    assert entry["detail"]["winner"] == "plain"
    assert entry["detail"]["leader"] == "offer"
    send(ops, *(lead(i) for i in range(200, 210)))
    last = [r["variant"] for s, r in emails(ops).items() if int(s.split(":")[1]) >= 200]
    assert last == ["plain"] * 10
    detail = ops.decide.decision_detail(ops.decide.list_decisions(subject="lead:200")[0]["id"])
    assert detail["explanation"]["variants"][0]["how"] == "kept"


def test_no_experiments_and_unknown_playbook(ops: OpsLoop) -> None:
    with pytest.raises(NotFound):
        ops.learn.experiments("nope")
