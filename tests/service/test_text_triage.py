"""Text triage end to end: support messages in, the LLM classifies (seeing only the fields the
playbook names), angry or high-value customers wait for a person with an AI-drafted reply that
the person finalizes, and the reply sent is the person's text. A real SMTP sink receives the
mail; the LLM is a loopback stub speaking the OpenAI HTTP API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import InvalidInput, PlaybookInvalid
from opsloop.service import OpsLoop
from tests.conftest import Clock, OpsFactory, grant_auto
from tests.fake_llm import Answer, FakeOpenAI
from tests.sinks import SmtpSink

EXAMPLE = Path(__file__).parents[2] / "examples" / "support-triage.yaml"


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


def triage_ops(
    make_ops: OpsFactory, url: str, llm: FakeOpenAI, smtp: SmtpSink, **overrides: Any
) -> OpsLoop:
    return make_ops(
        url,
        playbooks=[EXAMPLE.read_text()],
        llm={"url": llm.url, "model": "tiny", "max_retries": 0},
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        **overrides,
    )


def ticket(key: str, body: str, **payload: Any) -> dict[str, Any]:
    return {
        "type": "ticket.created",
        "subject": f"ticket:{key}",
        "payload": {
            "email": f"{key}@example.com",
            "subject": payload.pop("subject", "About my order"),
            "body": body,
            "order_id": f"A-{key}",
            "phone": "+44 20 7946 0000",
            **payload,
        },
        "traits": {"name": "Sam", "lifetime_value": payload.pop("ltv", 120)},
    }


def send(ops: OpsLoop, *events: dict[str, Any]) -> None:
    ops.ingest.body(json.dumps({"events": list(events)}).encode())


def draft_answer(text: str) -> Answer:
    return Answer(content=text)


def label_answer(label: str, confidence: float = 0.93) -> Answer:
    return Answer(content=json.dumps({"label": label, "confidence": confidence, "reason": "r"}))


def test_an_angry_customer_waits_for_a_person_who_finalizes_the_ai_draft(
    make_ops: OpsFactory, database_url: str, llm: FakeOpenAI, smtp_sink: SmtpSink
) -> None:
    ops = triage_ops(make_ops, database_url, llm, smtp_sink)
    llm.then(label_answer("refund"), draft_answer("Dear Sam, I am sorry. (AI draft)"))
    send(
        ops,
        ticket(
            "1",
            "This is UNACCEPTABLE. Third broken kettle, I want my money back or I call my lawyer!",
        ),
    )
    assert ops.decide.list_decisions() == [], "the LLM is asked outside the ingest transaction"
    ops.run_jobs()

    [pending] = ops.decide.list_decisions(status="pending")
    assert pending["choice"] == "personal_reply"
    detail = ops.decide.decision_detail(pending["id"])
    text = detail["explanation"]["text"]
    assert text["upset"] is True
    assert any("lawyer" in reason for reason in text["upset_reasons"])
    assert text["classify"]["label"] == "refund"
    assert text["draft"] == "Dear Sam, I am sorry. (AI draft)"
    reasons = [hold["reason"] for hold in detail["explanation"]["guardrails"]]
    assert any("upset" in reason for reason in reasons)
    assert any("drafted by AI" in reason for reason in reasons)
    assert "message: upset" in pending["why"]
    assert ops.deliver.list_actions() == []
    assert smtp_sink.messages == []

    # Only the message and the named fields left the machine: never the phone or the email.
    classify, draft = llm.requests
    assert classify.user_content["fields"] == {"event.payload.subject": "About my order"}
    assert set(draft.user_content["context"]) == {"entity.name", "event.payload.order_id"}
    for request in (classify, draft):
        sent = json.dumps(request.body)
        assert "+44 20 7946 0000" not in sent
        assert "1@example.com" not in sent
    assert [call["purpose"] for call in text["llm_calls"]] == ["classify", "draft"]

    final = "Dear Sam,\n\nI am so sorry about the kettle. I have refunded you in full today.\n\nAna"
    ops.review.verdict(pending["id"], ReviewRequest(verdict="approve", reviewer="ana", draft=final))
    ops.run_jobs()

    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == ["1@example.com"]
    assert mail.body.replace("\r\n", "\n").strip() == final
    settled = ops.decide.decision_detail(pending["id"])
    assert settled["reviews"][0]["draft"] == final
    approved = next(row for row in settled["audit"] if row["verb"] == "decision.approved")
    assert approved["detail"]["draft_edited"] is True


def test_approving_without_edits_sends_the_draft_as_prepared(
    make_ops: OpsFactory, sqlite_url: str, llm: FakeOpenAI, smtp_sink: SmtpSink
) -> None:
    ops = triage_ops(make_ops, sqlite_url, llm, smtp_sink)
    llm.then(label_answer("billing"), draft_answer("Hello Sam, here is your invoice."))
    send(ops, ticket("2", "Could you send me the invoice for May?", subject="Invoice"))
    ops.run_jobs()
    [pending] = ops.decide.list_decisions(status="pending")
    ops.review.verdict(pending["id"], ReviewRequest(verdict="approve", reviewer="ana"))
    ops.run_jobs()
    [mail] = smtp_sink.messages
    assert mail.body.strip() == "Hello Sam, here is your invoice."


def test_a_calm_order_question_is_answered_at_once_without_a_draft(
    make_ops: OpsFactory, database_url: str, llm: FakeOpenAI, smtp_sink: SmtpSink
) -> None:
    ops = triage_ops(make_ops, database_url, llm, smtp_sink)
    grant_auto(ops.ctx.db, "support-triage")
    ops.ctx.catalog.invalidate()
    llm.then(label_answer("order_status"))
    send(ops, ticket("3", "Hi! Where is my order? Thanks", tracking_url="https://track.example/3"))
    ops.run_jobs()
    ops.run_jobs()

    [decision] = ops.decide.list_decisions()
    assert decision["choice"] == "tracking_reply"
    assert decision["status"] == "auto"
    assert len(llm.requests) == 1, "no draft is asked for a templated reply"
    [mail] = smtp_sink.messages
    assert "https://track.example/3" in mail.body
    assert "Hello Sam" in mail.body


def test_a_high_value_customer_gets_a_person_even_when_calm(
    make_ops: OpsFactory, sqlite_url: str, llm: FakeOpenAI, smtp_sink: SmtpSink
) -> None:
    ops = triage_ops(make_ops, sqlite_url, llm, smtp_sink)
    grant_auto(ops.ctx.db, "support-triage")
    ops.ctx.catalog.invalidate()
    llm.then(label_answer("order_status"), draft_answer("Hi Sam, it ships today."))
    send(ops, ticket("4", "Where is my order?", ltv=4800))
    ops.run_jobs()
    [decision] = ops.decide.list_decisions()
    assert decision["choice"] == "personal_reply"
    assert decision["status"] == "pending", "a drafted reply waits for a person even in auto"
    assert smtp_sink.messages == []


def test_when_the_llm_fails_the_message_waits_for_a_person_and_nothing_is_lost(
    make_ops: OpsFactory, database_url: str, llm: FakeOpenAI, smtp_sink: SmtpSink
) -> None:
    ops = triage_ops(make_ops, database_url, llm, smtp_sink)
    grant_auto(ops.ctx.db, "support-triage")
    ops.ctx.catalog.invalidate()
    llm.default = Answer(status=500)
    send(ops, ticket("5", "Where is my order?"))
    ops.run_jobs()

    [decision] = ops.decide.list_decisions()
    assert decision["status"] == "pending"
    detail = ops.decide.decision_detail(decision["id"])
    reasons = " ".join(hold["reason"] for hold in detail["explanation"]["guardrails"])
    assert "could not be classified" in reasons
    assert "language model failed" in reasons
    assert "draft_error" in detail["explanation"]["text"]
    assert smtp_sink.messages == []
    # With no draft, the person writes the reply; without one the review is refused.
    with pytest.raises(InvalidInput, match="draft"):
        ops.review.verdict(decision["id"], ReviewRequest(verdict="approve", reviewer="ana"))
    ops.review.verdict(
        decision["id"], ReviewRequest(verdict="approve", reviewer="ana", draft="It ships today.")
    )
    ops.run_jobs()
    assert smtp_sink.messages[0].body.strip() == "It ships today."


def test_a_job_run_twice_decides_once(
    make_ops: OpsFactory, sqlite_url: str, llm: FakeOpenAI, smtp_sink: SmtpSink
) -> None:
    from opsloop.service.decide.llm_decisions import decide_with_llm

    ops = triage_ops(make_ops, sqlite_url, llm, smtp_sink)
    send(ops, ticket("6", "Where is my order?"))
    ops.run_jobs()
    [decision] = ops.decide.list_decisions()
    assert decide_with_llm(ops.ctx, "support-triage", decision["event_id"]) is None
    assert len(ops.decide.list_decisions()) == 1


def test_a_playbook_that_needs_an_llm_is_refused_at_its_line_when_none_is_configured(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    with pytest.raises(PlaybookInvalid) as refused:
        ops.decide.apply_playbook(EXAMPLE.read_text(), "support-triage.yaml", actor="test")
    [problem] = refused.value.problems
    assert problem.field == "text.classify.using"
    assert problem.line == EXAMPLE.read_text().splitlines().index("    using: llm") + 1
    assert "OPSLOOP_LLM__URL" in problem.message


def test_a_playbook_whose_llm_went_away_holds_its_decisions_with_the_reason(
    make_ops: OpsFactory, sqlite_url: str, llm: FakeOpenAI, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    configured = triage_ops(make_ops, sqlite_url, llm, smtp_sink)
    grant_auto(configured.ctx.db, "support-triage")
    # The same database, started without LLM settings.
    ops = make_ops(sqlite_url, smtp_host="127.0.0.1", smtp_port=smtp_sink.port)
    send(ops, ticket("7", "Where is my order?"))
    ops.run_jobs()
    [decision] = ops.decide.list_decisions()
    assert decision["status"] == "pending"
    detail = ops.decide.decision_detail(decision["id"])
    reasons = " ".join(hold["reason"] for hold in detail["explanation"]["guardrails"])
    assert "no language model is configured" in reasons or "OPSLOOP_LLM__URL" in reasons
    assert llm.requests == []


def test_draft_in_a_template_without_a_draft_block_is_a_problem_at_its_line(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock
) -> None:
    text = EXAMPLE.read_text()
    start = text.index("  draft:\n")
    end = text.index("\nrules:")
    without = text[:start] + text[end + 1 :]
    without = without.replace("    using: llm", "    using: model").replace(
        "    fields: [event.payload.subject]\n", ""
    )
    without = without.split("    instructions: >")[0] + "\nrules:" + without.split("\nrules:")[1]
    ops = make_ops(sqlite_url)
    with pytest.raises(PlaybookInvalid, match=r"\{\{ draft \}\}"):
        ops.decide.apply_playbook(without, "t.yaml", actor="test")
