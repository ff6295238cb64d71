"""The playbooks pages in a browser: the list and a playbook in plain words; the editor marks a
typo at its line as you type; a backtest of the edited YAML shows its report and draws its
chart; an owner promotes a ready playbook and is refused, with the reason, for an unready one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from opsloop.core.decisions import ReviewRequest
from opsloop.service import OpsLoop
from tests.browser.conftest import sideways
from tests.browser.test_sign_in import sign_in
from tests.conftest import LiveServer, lead_playbook
from tests.people import OWNER, add_people
from tests.web import test_playbook_pages

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]
LEAD = "lead-qualification"


def sign_in_as_owner(page: Any, live_app: LiveServer, path: str) -> None:
    add_people(live_app.ops)
    page.goto(path)
    sign_in(page, OWNER.email, OWNER.password)
    page.wait_for_url(f"**{path}")


def leads(ops: OpsLoop, count: int) -> None:
    """Leads of a right-size company, half with a budget: all nurtured by the built-in rules
    (scores 20 and 40), so a hot threshold of 40 changes half of them."""
    events = [
        {
            "type": "lead.created",
            "subject": f"lead:{n}",
            "traits": {"company_size": 40, "budget": 6000 if n % 2 else 1000},
        }
        for n in range(count)
    ]
    ops.ingest.body(json.dumps({"events": events}).encode())
    ops.run_jobs()


def test_an_owner_reads_a_playbook_then_fixes_a_typo_the_editor_marks_at_its_line(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    live_app.ops.decide.apply_playbook(lead_playbook(), "lead.yaml", actor="ana")
    sign_in_as_owner(page, live_app, "/playbooks")
    assert page.get_by_role("link", name="Playbooks").get_attribute("aria-current") == "page"
    item = page.get_by_test_id(f"playbook-{LEAD}")
    assert "0 of 200 reviews" in item.inner_text()
    shoot(page, "playbooks-list")

    item.get_by_role("link", name=LEAD).click()
    page.wait_for_url(f"**/playbooks/{LEAD}")
    main = page.inner_text("main")
    assert "Runs when a lead.created or demo.requested event arrives about a lead." in main
    assert "Hot lead — hand to sales" in main
    shoot(page, "playbook-detail")

    page.get_by_role("link", name="Edit YAML").click()
    page.wait_for_url(f"**/playbooks/{LEAD}/edit")
    page.get_by_test_id("valid").wait_for()  # checked once on load
    typo = lead_playbook(**{"when: visits_7d >= 5": "when: vists_7d >= 5"})
    line = typo.splitlines().index("    when: vists_7d >= 5") + 1
    page.fill("#source", typo)

    problem = page.locator(f'#problems li[data-line="{line}"]')
    problem.wait_for()
    assert f"line {line}: scorecard[0].when: unknown name 'vists_7d'" in problem.inner_text()
    assert "did you mean 'visits_7d'?" in problem.inner_text()
    marked = page.locator(".pb-gutter .pb-bad-line")
    # The gutter is redrawn just after htmx settles the problem list: wait for it.
    expect(marked).to_have_text([str(line)])
    problem.get_by_role("link", name=f"line {line}").click()
    selected = page.evaluate(
        "(() => { const a = document.querySelector('#source');"
        " return a.value.slice(a.selectionStart, a.selectionEnd); })()"
    )
    assert selected == "    when: vists_7d >= 5"
    shoot(page, "playbook-editor")

    page.fill("#source", lead_playbook(**{"score >= 60": "score >= 40"}))
    page.get_by_test_id("valid").wait_for()
    expect(page.locator(".pb-gutter .pb-bad-line")).to_have_count(0)
    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_url(f"**/playbooks/{LEAD}?saved=2")
    assert "Saved as version 2." in page.inner_text("main")
    assert "From version 1 to version 2" in page.inner_text("#compare")
    page.select_option("#diff-view", "split")  # htmx swaps the side-by-side comparison in
    changed = page.locator(".pb-diff-split tr.pb-changed")
    changed.wait_for()
    assert changed.inner_text().split() == [
        "61",
        "when:",
        "score",
        ">=",
        "60",
        "61",
        "when:",
        "score",
        ">=",
        "40",
    ]
    assert live_app.ops.decide.get_playbook(LEAD)["version"] == 2


def test_a_backtest_of_the_edited_yaml_shows_its_report_and_chart(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    live_app.ops.decide.apply_playbook(lead_playbook(), "lead.yaml", actor="ana")
    leads(live_app.ops, 10)
    sign_in_as_owner(page, live_app, f"/playbooks/{LEAD}/edit")
    page.get_by_test_id("valid").wait_for()
    page.fill("#source", lead_playbook(**{"score >= 60": "score >= 40"}))
    page.select_option("#since", "30d")
    page.get_by_role("button", name="Backtest this YAML").click()

    report = page.get_by_test_id("backtest-report")
    report.wait_for()
    text = report.inner_text()
    assert "Backtest of lead-qualification: draft against the active version 1" in text
    assert "10 decisions from 10 triggering events" in text
    assert "5 of 10 decisions change" in text
    page.wait_for_selector(".pb-chart-box[data-drawn=true] svg")
    bars = page.locator(".pb-chart-box svg path[aria-roledescription='bar']")
    assert bars.count() == 2
    assert live_app.ops.decide.get_playbook(LEAD)["version"] == 1, "a backtest changes nothing"
    report.scroll_into_view_if_needed()
    shoot(page, "playbook-backtest")

    # The saved version, from the playbook's page.
    page.goto(f"/playbooks/{LEAD}")
    page.get_by_role("button", name="Run backtest").click()
    page.get_by_test_id("backtest-report").wait_for()
    assert "This is the active version" in page.get_by_test_id("backtest-report").inner_text()
    page.wait_for_selector(".pb-chart-box[data-drawn=true] svg")


def test_an_owner_promotes_a_ready_playbook_and_is_refused_for_an_unready_one(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    ops = live_app.ops
    ops.decide.apply_playbook(lead_playbook(), "lead.yaml", actor="ana")
    ops.decide.apply_playbook(test_playbook_pages.TRIAGE, "triage.yaml", actor="ana")
    events = [{"type": "ticket.opened", "subject": f"ticket:{n}"} for n in range(20)]
    ops.ingest.body(json.dumps({"events": events}).encode())
    ops.run_jobs()
    for decision in ops.decide.list_decisions(playbook="triage", limit=50):
        ops.review.verdict(decision["id"], ReviewRequest(verdict="approve", reviewer="rui"))
    sign_in_as_owner(page, live_app, "/playbooks/triage")

    page.get_by_role("link", name="Promote to auto…").click()
    page.wait_for_url("**/playbooks/triage/promote")
    assert "Ready for auto: reviewers agreed 20 of 20 times" in page.inner_text("main")
    page.fill("#reason", "reviewers agreed with every decision")
    shoot(page, "playbook-promote")
    page.get_by_role("button", name="Promote to auto").click()
    page.wait_for_url("**/playbooks/triage?moved=auto")
    assert page.get_by_test_id("mode").first.inner_text() == "auto"
    assert ops.decide.get_playbook("triage")["mode"] == "auto"

    page.goto(f"/playbooks/{LEAD}")
    page.get_by_role("link", name="Promote to auto…").click()
    refusal = page.get_by_test_id("refused")
    assert refusal.inner_text() == (
        "Not ready for auto: needs 200 reviewed decisions, has 0: 200 more to go. "
        "It stays in recommend; keep reviewing its decisions."
    )
    assert page.get_by_role("button", name="Promote to auto").count() == 0
    shoot(page, "playbook-promote-refused")
    assert ops.decide.get_playbook(LEAD)["mode"] == "recommend"


def test_the_playbook_pages_fit_a_phone(browser: Any, live_app: LiveServer, shoot: Shoot) -> None:
    live_app.ops.decide.apply_playbook(lead_playbook(), "lead.yaml", actor="ana")
    add_people(live_app.ops)
    context = browser.new_context(
        base_url=live_app.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    try:
        phone = context.new_page()
        phone.goto("/playbooks")
        sign_in(phone, OWNER.email, OWNER.password)
        phone.wait_for_url("**/playbooks")
        for path in ("/playbooks", f"/playbooks/{LEAD}", f"/playbooks/{LEAD}/edit"):
            phone.goto(path)
            fits = sideways(phone) == 0
            assert fits, f"{path} is wider than the phone"
        shoot(phone, "playbook-editor-phone")
    finally:
        context.close()
