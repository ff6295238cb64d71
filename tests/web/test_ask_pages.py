"""The Ask page and `POST /api/ask` through the test client, signed in through the real /login
form: a question answered with its records as links, the person's recent questions, htmx
answers, errors by name, and each person seeing what their role may see."""

from __future__ import annotations

import re

from tests.ask_business import PLAYBOOKS, REVIEWER, VIEWER, build
from tests.conftest import OpsFactory
from tests.fake_llm import Answer, FakeOpenAI
from tests.people import OWNER, add_people
from tests.web.test_playbook_pages import AppFor, Browse, app_for, browse, text_of

__all__ = ["app_for", "browse"]  # fixtures used here


def test_a_question_on_the_page_is_answered_with_links_to_its_records(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(*PLAYBOOKS)
    shop = build(ops)
    reviewer = browse(ops, REVIEWER)

    empty = reviewer.get("/ask")
    assert empty.status_code == 200
    assert 'href="/ask"' in empty.text, "the navigation bar links the page"
    words = text_of(empty.text)
    assert "You have not asked anything yet." in words
    assert "No language model is configured" in words
    assert "Which leads need attention today?" in words, "examples to try"

    answered = reviewer.post("/ask", {"question": "Which leads need attention today?"})
    assert answered.status_code == 200
    for decision in shop.waiting_leads:
        assert f'href="/decisions/{decision}" data-ref="decision:{decision}"' in answered.text
    assert "2 leads wait for review" in text_of(answered.text)
    assert "Answered by the built-in router with needs_attention." in text_of(answered.text)

    again = reviewer.get("/ask")
    assert "Which leads need attention today?" in again.text.split('data-testid="answers"')[1]
    assert "You have not asked anything yet." not in text_of(again.text)
    other = browse(ops, VIEWER).get("/ask")
    assert "You have not asked anything yet." in text_of(other.text), "one's own questions"


def test_htmx_gets_the_answer_alone_and_an_empty_question_by_name(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(*PLAYBOOKS)
    shop = build(ops)
    reviewer = browse(ops, REVIEWER)
    fragment = reviewer.htmx("/ask", {"question": "my tasks"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert f'href="/tasks?status=mine#task-{shop.task}"' in fragment.text
    assert "Your open tasks:" in text_of(fragment.text)

    refused = reviewer.htmx("/ask", {"question": "  "})
    assert refused.status_code == 200
    assert 'data-testid="ask-error"' in refused.text
    assert "Question: ask a question." in text_of(refused.text)
    page = reviewer.post("/ask", {"question": ""})
    assert page.status_code == 422
    assert "Question: ask a question." in text_of(page.text)


def test_an_answer_escapes_what_the_ledger_holds(app_for: AppFor, browse: Browse) -> None:
    ops = app_for(*PLAYBOOKS)
    build(ops)
    page = browse(ops, VIEWER).post("/ask", {"question": "tell me about <script>x</script>"})
    assert page.status_code == 200
    assert "<script>x" not in page.text
    assert "&lt;script&gt;x" in page.text


def test_the_api_answers_as_the_caller_and_lists_their_questions(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(*PLAYBOOKS)
    shop = build(ops)
    viewer = browse(ops, VIEWER)
    headers = {"X-CSRF-Token": viewer.csrf}
    answer = viewer.client.post(
        "/api/ask", json={"question": "What is waiting for me?"}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["citations"] == [], "a viewer reviews nothing"
    assert "3 decisions wait for a reviewer" in body["text"]

    reviewer = browse(ops, REVIEWER)
    theirs = reviewer.client.post(
        "/api/ask",
        json={"question": "What is waiting for me?"},
        headers={"X-CSRF-Token": reviewer.csrf},
    ).json()
    assert f"task:{shop.task}" in {c["ref"] for c in theirs["citations"]}

    bad = viewer.client.post("/api/ask", json={"question": "x" * 1001}, headers=headers)
    assert bad.status_code == 422
    assert "question" in bad.text
    unknown = viewer.client.post("/api/ask", json={"asked": "x"}, headers=headers)
    assert unknown.status_code == 422

    mine = viewer.get("/api/questions").json()["questions"]
    assert [q["asked_by"] for q in mine] == [VIEWER.email]
    assert mine[0]["route"] == "router"
    assert viewer.get("/api/questions?everyone=true").status_code == 403
    everyone = browse(ops, OWNER).get("/api/questions?everyone=true").json()["questions"]
    assert [q["asked_by"] for q in everyone] == [REVIEWER.email, VIEWER.email]


def test_asking_without_signing_in_goes_to_the_login(app_for: AppFor) -> None:
    from fastapi.testclient import TestClient

    from opsloop.web.app import create_app

    ops = app_for()
    with TestClient(create_app(ops.settings, service=ops), follow_redirects=False) as client:
        page = client.get("/ask")
        assert page.status_code == 303
        assert re.search(r"/login\?next=/ask$", page.headers["location"])
        assert client.post("/api/ask", json={"question": "hi"}).status_code == 401


def test_with_a_model_the_page_says_so_and_shows_what_the_answer_cost(
    make_ops: OpsFactory, sqlite_url: str, browse: Browse
) -> None:
    fake = FakeOpenAI()
    fake.start()
    try:
        ops = make_ops(
            sqlite_url,
            playbooks=PLAYBOOKS,
            llm={"url": fake.url, "model": "tiny", "max_retries": 0, "input_price_per_million": 10},
        )
        add_people(ops)
        shop = build(ops)
        fake.then(
            Answer(tool_calls=[("tasks", {"mine": True})]),
            Answer(content=f"You have one task: call Ana [task:{shop.task}]."),
        )
        reviewer = browse(ops, REVIEWER)
        assert "A language model plans each answer" in text_of(reviewer.get("/ask").text)
        page = reviewer.htmx("/ask", {"question": "anything for me?"})
        words = text_of(page.text)
        assert "Answered by the language model with tasks · cost 0.0024." in words
        assert f'<a href="/tasks?status=mine#task-{shop.task}" data-ref="task:{shop.task}">' in (
            page.text
        )
    finally:
        fake.stop()
