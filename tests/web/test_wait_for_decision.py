"""`POST /api/events?wait=decision`: the decisions in the answer, as an n8n webhook → score →
respond workflow answers, over real HTTP. A scorecard decides in the ingest transaction; a
playbook that asks the language model (a loopback stub of the OpenAI API) decides in a job,
which the answer waits for up to its timeout."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from opsloop.service import OpsLoop
from tests.conftest import LiveServer, OpsFactory, lead_playbook
from tests.fake_llm import Answer, FakeOpenAI

TRIAGE = (Path(__file__).parents[2] / "examples" / "support-triage.yaml").read_text()

HOT_LEAD = {
    "type": "lead.created",
    "subject": "lead:ada",
    "traits": {"email": "ada@shop.test", "company_size": 50, "budget": 9000},
}


def ticket(key: str) -> dict[str, object]:
    return {
        "type": "ticket.created",
        "subject": f"ticket:{key}",
        "payload": {
            "email": f"{key}@example.com",
            "subject": "Where is my parcel?",
            "body": "It is a week late.",
            "order_id": f"A-{key}",
        },
        "traits": {"name": "Sam", "lifetime_value": 120},
    }


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


def client(
    make_ops: OpsFactory,
    sqlite_url: str,
    serve: Callable[[OpsLoop], LiveServer],
    llm: FakeOpenAI,
    *,
    workers: bool,
) -> httpx.Client:
    ops = make_ops(
        sqlite_url,
        playbooks=[lead_playbook("recommend"), TRIAGE],
        use_clock=False,
        llm={"url": llm.url, "model": "tiny", "max_retries": 0},
        worker_poll_seconds=0.05,
    )
    ops.start(workers=workers)
    return serve(ops).client(timeout=30)


def test_a_scorecard_decision_comes_back_in_the_answer(
    make_ops: OpsFactory, sqlite_url: str, serve: Callable[[OpsLoop], LiveServer], llm: FakeOpenAI
) -> None:
    with client(make_ops, sqlite_url, serve, llm, workers=False) as api:
        answer = api.post("/api/events", params={"wait": "decision"}, json=HOT_LEAD)
        assert answer.status_code == 201
        body = answer.json()
        assert body["status"] == "created"
        assert body["pending"] == []
        [decision] = body["decisions"]
        assert decision["playbook"] == "lead-qualification"
        assert decision["event_id"] == body["id"]
        assert decision["status"] == "pending", "recommend mode: it waits for a person"
        [listed] = api.get("/api/decisions").json()["decisions"]
        same = ("id", "choice", "score", "why", "reasons")
        assert {k: decision[k] for k in same} == {k: listed[k] for k in same}
        assert decision["choice"]
        assert decision["why"]

        # Without `wait`, the answer is as it always was.
        plain = api.post("/api/events", json={**HOT_LEAD, "subject": "lead:bob"}).json()
        assert set(plain) == {"id", "status"}


def test_a_batch_answers_each_events_decisions_and_a_repeat_its_first_ones(
    make_ops: OpsFactory, sqlite_url: str, serve: Callable[[OpsLoop], LiveServer], llm: FakeOpenAI
) -> None:
    with client(make_ops, sqlite_url, serve, llm, workers=False) as api:
        events = [
            {"type": "page.viewed", "subject": "lead:ada", "idempotency_key": "v1"},
            {**HOT_LEAD, "idempotency_key": "lead-ada"},
        ]
        first = api.post("/api/events", params={"wait": "decision"}, json={"events": events})
        view, lead = first.json()["events"]
        assert (view["decisions"], view["pending"]) == ([], [])
        assert [d["playbook"] for d in lead["decisions"]] == ["lead-qualification"]

        again = api.post("/api/events?wait=decision", json={"events": events[1:]})
        assert again.status_code == 200
        [repeat] = again.json()["events"]
        assert repeat["status"] == "duplicate"
        assert repeat["decisions"] == lead["decisions"], "no second decision for a repeat"


def test_a_language_model_decision_is_waited_for(
    make_ops: OpsFactory, sqlite_url: str, serve: Callable[[OpsLoop], LiveServer], llm: FakeOpenAI
) -> None:
    llm.then(
        Answer(
            content=json.dumps(
                {"label": "where_is_my_order", "confidence": 0.9, "reason": "asks about delivery"}
            )
        )
    )
    with client(make_ops, sqlite_url, serve, llm, workers=True) as api:
        answer = api.post(
            "/api/events", params={"wait": "decision", "timeout": 20}, json=ticket("t1")
        )
        assert answer.status_code == 201
        body = answer.json()
        assert body["pending"] == []
        [decision] = body["decisions"]
        assert decision["playbook"] == "support-triage"
        assert decision["choice"], decision


def test_a_decision_still_being_made_when_the_time_runs_out_is_named_as_pending(
    make_ops: OpsFactory, sqlite_url: str, serve: Callable[[OpsLoop], LiveServer], llm: FakeOpenAI
) -> None:
    # No worker runs the language-model job here: it stays queued.
    with client(make_ops, sqlite_url, serve, llm, workers=False) as api:
        answer = api.post(
            "/api/events", params={"wait": "decision", "timeout": 0.3}, json=ticket("t2")
        )
        assert answer.status_code == 201, "the event is stored whatever the wait gives"
        assert (answer.json()["decisions"], answer.json()["pending"]) == ([], ["support-triage"])


def test_a_bad_wait_or_timeout_is_refused_naming_it_and_nothing_is_stored(
    make_ops: OpsFactory, sqlite_url: str, serve: Callable[[OpsLoop], LiveServer], llm: FakeOpenAI
) -> None:
    with client(make_ops, sqlite_url, serve, llm, workers=False) as api:
        for params, field in (
            ({"wait": "everything"}, "wait"),
            ({"wait": "decision", "timeout": 600}, "timeout"),
        ):
            answer = api.post("/api/events", params=params, json=HOT_LEAD)
            assert answer.status_code == 422
            assert field in answer.text
        assert api.get("/api/decisions").json()["decisions"] == []
