"""The operations chat on both databases: the router answers the common questions with the right
records and links; with a model, function calling over the read-only tools (the loopback stub
at the network boundary), citations limited to what the tools returned; every question logged
with its tools and cost; a viewer and a reviewer each see what their pages would show."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opsloop.core.errors import InvalidInput
from opsloop.service import OpsLoop
from tests.ask_business import PLAYBOOKS, REVIEWER, VIEWER, Business, build, principal
from tests.conftest import Clock, OpsFactory
from tests.fake_llm import COMPLETION_TOKENS, PROMPT_TOKENS, Answer, FakeOpenAI


@pytest.fixture
def business(make_ops: OpsFactory, database_url: str) -> tuple[OpsLoop, Business]:
    ops = make_ops(database_url, playbooks=PLAYBOOKS)
    return ops, build(ops)


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


def refs(answer: dict[str, object]) -> set[str]:
    return {c["ref"] for c in answer["citations"]}  # type: ignore[attr-defined]


def links(answer: dict[str, object]) -> set[str]:
    return {c["link"] for c in answer["citations"]}  # type: ignore[attr-defined]


def test_leads_needing_attention_today_are_the_ones_waiting_for_review(
    business: tuple[OpsLoop, Business],
) -> None:
    ops, shop = business
    answer = ops.ask.ask("Which leads need attention today?", principal=principal(REVIEWER))
    assert answer["route"] == "router"
    assert refs(answer) == {f"decision:{d}" for d in shop.waiting_leads}
    assert links(answer) == {f"/decisions/{d}" for d in shop.waiting_leads}
    assert "2 leads wait for review" in answer["text"]
    assert [t["name"] for t in answer["tools"]] == ["needs_attention"]


def test_what_happened_to_an_order_tells_its_events_with_links(
    business: tuple[OpsLoop, Business],
) -> None:
    ops, shop = business
    answer = ops.ask.ask("What happened to order 1042?", principal=principal(VIEWER))
    assert {"subject:order:1042"} | {f"event:{e}" for e in shop.order_events} <= refs(answer)
    assert f"/api/events/{shop.order_events[0]}" in links(answer)
    assert "/api/entities/order:1042" in links(answer)
    assert "order.placed" in answer["text"]
    assert "order.shipped" in answer["text"]
    placed = answer["text"].index("order.placed")
    assert placed < answer["text"].index("order.shipped"), "oldest first"


def test_how_a_playbook_is_doing_this_month_matches_its_name_loosely(
    business: tuple[OpsLoop, Business],
) -> None:
    ops, _shop = business
    answer = ops.ask.ask("How is Support Triage doing this month?", principal=principal(VIEWER))
    [record] = answer["citations"]
    assert record["ref"] == "metrics:support-triage"
    assert record["link"] == "/dashboard?playbook=support-triage"
    assert record["detail"].startswith("2 decisions, 1 waiting for review")
    assert answer["tools"][0]["arguments"] == {"period": "this_month", "playbook": "support-triage"}
    last = ops.ask.ask("how is suport triage doing last month", principal=principal(VIEWER))
    assert last["citations"][0]["detail"].startswith("0 decisions")


def test_what_is_waiting_for_a_reviewer_is_the_inbox_and_their_tasks(
    business: tuple[OpsLoop, Business],
) -> None:
    ops, shop = business
    answer = ops.ask.ask("What is waiting for me?", principal=principal(REVIEWER))
    waiting = {*shop.waiting_leads, shop.tickets[1]}
    assert refs(answer) == {f"decision:{d}" for d in waiting} | {f"task:{shop.task}"}
    assert f"/tasks?status=mine#task-{shop.task}" in links(answer)
    assert "3 decisions wait for review" in answer["text"]
    assert "You have 1 open task" in answer["text"]


def test_a_viewer_is_not_told_the_inbox_waits_for_them(business: tuple[OpsLoop, Business]) -> None:
    ops, shop = business
    answer = ops.ask.ask("What is waiting for me?", principal=principal(VIEWER))
    assert refs(answer) == set(), "a viewer reviews nothing and has no tasks"
    assert "3 decisions wait for a reviewer" in answer["text"]
    assert "You have 0 open tasks" in answer["text"]
    mine = ops.ask.ask("my tasks", principal=principal(VIEWER))
    assert mine["citations"] == []
    assert mine["text"] == "You have no open tasks."
    theirs = ops.ask.ask("my tasks", principal=principal(REVIEWER))
    assert refs(theirs) == {f"task:{shop.task}"}


def test_an_unknown_question_gets_the_list_of_what_can_be_asked(
    business: tuple[OpsLoop, Business],
) -> None:
    ops, _ = business
    answer = ops.ask.ask("Will it rain tomorrow?", principal=principal(VIEWER))
    assert answer["citations"] == []
    assert "I can answer questions" in answer["text"]
    assert "What happened to order 1042?" in answer["text"]
    assert "never review, send or change" in answer["text"]


def test_an_empty_question_is_refused_by_name(business: tuple[OpsLoop, Business]) -> None:
    ops, _ = business
    with pytest.raises(InvalidInput, match="question"):
        ops.ask.ask("   ", principal=principal(VIEWER))


def test_every_question_is_logged_with_its_tools_and_citations(
    business: tuple[OpsLoop, Business], clock: Clock
) -> None:
    ops, _shop = business
    answer = ops.ask.ask("What happened to order 1042?", principal=principal(VIEWER))
    ops.ask.ask("my tasks", principal=principal(REVIEWER))
    [logged] = ops.ask.questions(asked_by=VIEWER.email)
    assert logged["id"] == answer["id"]
    assert (logged["asked_by"], logged["permission"], logged["route"]) == (
        VIEWER.email,
        "read",
        "router",
    )
    assert logged["asked_at"] == clock.now
    assert logged["tools"] == [
        {
            "name": "search_subjects",
            "arguments": {"query": "order:1042"},
            "records": answer["tools"][0]["records"],
            "error": None,
        }
    ]
    assert {c["ref"] for c in logged["citations"]} == refs(answer)
    assert (logged["llm_calls"], logged["cost"]) == (0, None)
    assert [q["asked_by"] for q in ops.ask.questions()] == [REVIEWER.email, VIEWER.email]


# --- with a language model ---------------------------------------------------------------------


def test_the_model_plans_with_tools_and_cites_only_what_they_returned(
    make_ops: OpsFactory, database_url: str, llm: FakeOpenAI
) -> None:
    ops = make_ops(
        database_url,
        playbooks=PLAYBOOKS,
        llm={
            "url": llm.url,
            "model": "tiny",
            "max_retries": 0,
            "input_price_per_million": 1.0,
            "output_price_per_million": 2.0,
        },
    )
    shop = build(ops)
    placed = shop.order_events[0]
    llm.then(
        Answer(tool_calls=[("search_subjects", {"query": "order 1042"}), ("no_such_tool", {})]),
        Answer(
            content=f"Order 1042 was placed [event:{placed}] and shipped; it is "
            "[subject:order:1042]. It was refunded [decision:999999]."
        ),
    )
    answer = ops.ask.ask("What happened to order 1042?", principal=principal(VIEWER))

    assert answer["route"] == "llm"
    assert [c["ref"] for c in answer["citations"]] == [f"event:{placed}", "subject:order:1042"]
    assert "decision:999999" not in answer["text"], "a record no tool returned is dropped"
    assert answer["text"].startswith("Order 1042 was placed")
    first, second = llm.requests
    offered = {tool["function"]["name"] for tool in first.body["tools"]}
    assert offered == {
        "search_subjects",
        "recent_decisions",
        "inbox",
        "waiting_for_me",
        "needs_attention",
        "tasks",
        "metrics",
        "playbooks",
        "documents",
    }, "reading tools only: nothing reviews, sends, or reads settings and accounts"
    replies = [m for m in second.body["messages"] if m["role"] == "tool"]
    assert len(replies) == 2
    assert "subject:order:1042" in replies[0]["content"]
    assert "there is no tool 'no_such_tool'" in replies[1]["content"]

    [logged] = ops.ask.questions()
    cost = 2 * (PROMPT_TOKENS * 1.0 + COMPLETION_TOKENS * 2.0) / 1_000_000
    assert logged["llm_calls"] == answer["llm_calls"] == 2
    assert logged["cost"] == pytest.approx(cost)
    assert answer["cost"] == pytest.approx(cost)
    assert (logged["prompt_tokens"], logged["completion_tokens"]) == (
        2 * PROMPT_TOKENS,
        2 * COMPLETION_TOKENS,
    )
    assert [t["name"] for t in logged["tools"]] == ["search_subjects", "no_such_tool"]
    assert logged["tools"][1]["error"].startswith("there is no tool")
    usage = ops.decide.llm_usage()["tiny"]
    assert usage["calls"] == 2, "the calls are booked in the LLM ledger too"


def test_the_model_gets_at_most_four_rounds_of_tools(
    make_ops: OpsFactory, sqlite_url: str, llm: FakeOpenAI
) -> None:
    ops = make_ops(sqlite_url, playbooks=PLAYBOOKS, llm={"url": llm.url, "model": "tiny"})
    build(ops)
    llm.default = Answer(tool_calls=[("playbooks", {})])
    answer = ops.ask.ask("Which playbooks are there?", principal=principal(REVIEWER))
    assert len(llm.requests) == 5
    assert answer["llm_calls"] == 5
    assert [t["name"] for t in answer["tools"]] == ["playbooks"] * 4
    assert "could not put an answer together" in answer["text"]
    assert refs(answer) == {"playbook:lead-qualification", "playbook:support-triage"}


def test_when_the_model_fails_the_router_answers_and_says_so(
    make_ops: OpsFactory, sqlite_url: str, llm: FakeOpenAI
) -> None:
    ops = make_ops(
        sqlite_url, playbooks=PLAYBOOKS, llm={"url": llm.url, "model": "tiny", "max_retries": 0}
    )
    shop = build(ops)
    llm.then(Answer(status=500))
    answer = ops.ask.ask("my tasks", principal=principal(REVIEWER))
    assert answer["route"] == "router"
    assert answer["error"]
    assert "HTTP 500" in answer["error"]
    assert "could not answer, so this is the simple answer" in answer["text"]
    assert refs(answer) == {f"task:{shop.task}"}
    assert ops.ask.questions()[0]["llm_calls"] == 1


def test_other_questions_are_answered_from_the_documents_with_the_passage_cited(
    business: tuple[OpsLoop, Business],
) -> None:
    ops, _ = business
    added = ops.ask.add_document(
        name="policy.md",
        content=b"# Returns\n\nWe accept returns within 30 days of delivery, unused and in the "
        b"original box.\n\n# Shipping\n\nOrders ship within two working days from Leeds.\n",
        actor="olga",
    )
    answer = ops.ask.ask("Do you accept returns after delivery?", principal=principal(VIEWER))
    assert [t["name"] for t in answer["tools"]] == ["documents"]
    first = answer["citations"][0]
    assert first["kind"] == "document"
    assert first["ref"].startswith(f"document:{added['id']}#p")
    assert first["link"].startswith(f"/documents/{added['id']}#p")
    assert "30 days" in answer["text"]
    unrelated = ops.ask.ask("Will it rain tomorrow?", principal=principal(VIEWER))
    assert unrelated["citations"] == [], "a loose passage is no answer"
    assert "I can answer questions" in unrelated["text"]
