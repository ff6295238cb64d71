"""A reviewer in a browser: clears the inbox by keyboard (j, a), overrides a decision with a
reason and finds it on the decision's page; edits an AI-drafted reply, approves it, and finds
the text that was sent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opsloop.service import OpsLoop
from tests.browser.conftest import sideways
from tests.browser.test_sign_in import sign_in
from tests.conftest import LiveServer, OpsFactory, lead_playbook
from tests.fake_llm import Answer, FakeOpenAI
from tests.people import REVIEWER
from tests.service.test_text_triage import EXAMPLE, label_answer, ticket
from tests.sinks import SmtpSink

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]
HOT = "Hot lead — hand to sales"
NURTURE = "Nurture by email"


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def live_app(
    make_ops: OpsFactory,
    sqlite_url: str,
    serve: Callable[[OpsLoop], LiveServer],
    llm: FakeOpenAI,
    smtp_sink: SmtpSink,
) -> LiveServer:
    """The app with two playbooks: lead qualification and support triage (its LLM a local
    stub), mail going to a local SMTP sink, and a reviewer."""
    ops = make_ops(
        sqlite_url,
        playbooks=[lead_playbook("recommend"), EXAMPLE.read_text()],
        use_clock=False,
        llm={"url": llm.url, "model": "tiny", "max_retries": 0},
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
    )
    ops.accounts.create_user(REVIEWER.email, REVIEWER.password, "reviewer", actor="tests")
    return serve(ops)


def send(ops: OpsLoop, *events: dict[str, Any]) -> None:
    ops.ingest.body(json.dumps({"events": list(events)}).encode())
    ops.run_jobs()


def lead(key: str, *, hot: bool) -> list[dict[str, Any]]:
    subject = f"lead:{key}"
    views = [
        {"type": "page.viewed", "subject": subject, "payload": {"path": "/pricing"}}
        for _ in range(6 if hot else 0)
    ]
    traits = {"name": f"Lead {key}", "email": f"{key}@example.com", "company": "Acme"}
    if hot:
        traits |= {"company_size": 40, "budget": 9000}
    return [*views, {"type": "lead.created", "subject": subject, "traits": traits}]


def ids_by_subject(ops: OpsLoop) -> dict[str, int]:
    return {row["subject"]: row["id"] for row in ops.decide.list_decisions(status="to_review")}


def signed_in_to_the_inbox(page: Any) -> None:
    page.goto("/")
    sign_in(page, REVIEWER.email, REVIEWER.password)
    page.wait_for_url("**/inbox")


def focused_id(page: Any) -> str:
    return page.evaluate("document.activeElement.id")  # type: ignore[no-any-return]


def test_a_reviewer_clears_the_inbox_by_keyboard_and_overrides_with_a_reason(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    ops = live_app.ops
    send(ops, *lead("1", hot=True), *lead("2", hot=False), *lead("3", hot=True))
    ids = ids_by_subject(ops)
    signed_in_to_the_inbox(page)
    assert page.get_by_test_id("waiting-count").inner_text() == "3"
    shoot(page, "inbox")

    # The newest is selected; j moves to the next one, a approves it.
    assert focused_id(page) == f"decision-{ids['lead:3']}"
    page.keyboard.press("j")
    assert focused_id(page) == f"decision-{ids['lead:2']}"
    page.keyboard.press("a")
    done = page.locator(f"#decision-{ids['lead:2']}[data-done]")
    done.wait_for()
    assert " ".join(done.inner_text().split()) == f"✓ lead:2 approved — runs “{NURTURE}”"
    assert ops.decide.decision_detail(ids["lead:2"])["status"] == "approved"
    assert ops.decide.decision_detail(ids["lead:2"])["reviews"][0]["reviewer"] == REVIEWER.email
    # The next waiting row has the focus, and the count went down.
    page.wait_for_function(f"document.activeElement.id === 'decision-{ids['lead:1']}'")
    assert page.get_by_test_id("waiting-count").inner_text() == "2"

    # o opens the override form on the selected row; Enter in the reason submits it.
    page.keyboard.press("o")
    row = page.locator(f"#decision-{ids['lead:1']}")
    option = row.locator("select[name=option]")
    assert page.evaluate("document.activeElement.name") == "option"
    option.select_option("nurture")
    reason = row.locator("details[data-panel=override] input[name=reason]")
    reason.fill("A student project: no budget behind it")
    reason.press("Enter")
    page.locator(f"#decision-{ids['lead:1']}[data-done]").wait_for()
    assert f"overridden — runs “{NURTURE}” instead" in row.inner_text()
    assert page.get_by_test_id("waiting-count").inner_text() == "1"
    shoot(page, "inbox-reviewed")
    # The last waiting row has the focus at once: Enter would open it, with no j/k first.
    page.wait_for_function(f"document.activeElement.id === 'decision-{ids['lead:3']}'")

    # ? shows the shortcuts; Esc hides them.
    page.keyboard.press("?")
    assert page.locator("#inbox-help").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#inbox-help").is_visible()

    # The decision's page tells what happened and why.
    row.get_by_role("link", name="lead:1").click()
    page.wait_for_url(f"**/decisions/{ids['lead:1']}")
    assert page.get_by_test_id("verdict").inner_text() == (
        f"overridden Overridden by {REVIEWER.email}: ran “{NURTURE}” instead of “{HOT}”."
    )
    review = page.get_by_test_id("review").inner_text()
    assert "A student project: no budget behind it" in review
    assert NURTURE in review
    assert "Engaged this week" in page.locator("table.explain").first.inner_text()
    shoot(page, "decision")

    # Back in the inbox, Enter opens the selected decision.
    page.goto("/inbox")
    assert focused_id(page) == f"decision-{ids['lead:3']}"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/decisions/{ids['lead:3']}")
    assert "Waiting for a person to review it" in page.get_by_test_id("verdict").inner_text()

    # The same keys work on a decision's page; once reviewed, the page shows the verdict.
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == f"reject-reason-{ids['lead:3']}"
    page.keyboard.type("Already a customer")
    page.keyboard.press("Enter")
    page.get_by_test_id("review").wait_for()
    assert page.get_by_test_id("verdict").inner_text() == (
        f"rejected Rejected by {REVIEWER.email}: nothing ran."
    )
    assert page.locator("form.review-approve").count() == 0


def test_a_reviewer_edits_the_ai_draft_approves_it_and_the_edited_reply_is_sent(
    page: Any, live_app: LiveServer, llm: FakeOpenAI, smtp_sink: SmtpSink, shoot: Shoot
) -> None:
    ops = live_app.ops
    llm.then(label_answer("refund"), Answer(content="Dear Sam, we are sorry. (AI draft)"))
    send(ops, ticket("7", "This is unacceptable: my kettle broke again and I want a refund!"))
    [decision_id] = ids_by_subject(ops).values()
    signed_in_to_the_inbox(page)

    row = page.locator(f"#decision-{decision_id}")
    draft = row.locator("textarea[name=draft]")
    assert draft.input_value() == "Dear Sam, we are sorry. (AI draft)"
    assert "my kettle broke again" in row.inner_text()
    shoot(page, "inbox-draft")

    # e puts the cursor in the reply; Esc goes back to the list, a approves.
    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.name") == "draft"
    final = "Dear Sam,\n\nSorry about the kettle. A new one ships today, at our cost.\n\nAna"
    draft.fill(final)
    page.keyboard.press("Escape")
    assert focused_id(page) == f"decision-{decision_id}"
    page.keyboard.press("a")
    page.locator(f"#decision-{decision_id}[data-done]").wait_for()
    assert "approved — runs “A person replies (AI draft)”" in row.inner_text()
    page.locator("#inbox-after").wait_for(state="visible")  # nothing else waits
    assert "All clear" in page.locator("#inbox-after").inner_text()

    ops.run_jobs()
    [mail] = smtp_sink.messages
    assert mail.body.replace("\r\n", "\n").strip() == final

    row.get_by_role("link", name="ticket:7").click()
    page.wait_for_url(f"**/decisions/{decision_id}")
    assert page.get_by_test_id("final-reply").inner_text() == final
    assert page.get_by_test_id("ai-draft").inner_text() == "Dear Sam, we are sorry. (AI draft)"
    shoot(page, "decision-draft")


def test_the_inbox_fits_a_phone(browser: Any, live_app: LiveServer, shoot: Shoot) -> None:
    send(live_app.ops, *lead("1", hot=True), *lead("2", hot=False))
    context = browser.new_context(
        base_url=live_app.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    try:
        phone = context.new_page()
        signed_in_to_the_inbox(phone)
        assert sideways(phone) == 0
        shoot(phone, "inbox-phone")
        phone.locator(".inbox-subject").first.click()
        phone.wait_for_url("**/decisions/*")
        assert sideways(phone) == 0
        shoot(phone, "decision-phone")
    finally:
        context.close()
