"""The playbook form in a browser: an owner adds a scorecard line and an action with the buttons,
sees a typo marked next to its field as they type and the YAML it will save, and saves a new
version; the form fits a phone and a laptop without sideways scrolling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from opsloop.core.playbooks import TaskAction, parse_playbook
from tests.browser.conftest import sideways
from tests.browser.test_playbooks import sign_in_as_owner
from tests.browser.test_sign_in import sign_in
from tests.conftest import LiveServer, lead_playbook
from tests.people import OWNER, add_people

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]
LEAD = "lead-qualification"


def test_an_owner_adds_a_scorecard_line_and_an_action_with_the_buttons_and_saves(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    ops = live_app.ops
    ops.decide.apply_playbook(lead_playbook(), "lead.yaml", actor="ana")
    sign_in_as_owner(page, live_app, f"/playbooks/{LEAD}")
    page.get_by_role("link", name="Edit with the form").click()
    page.wait_for_url(f"**/playbooks/{LEAD}/form")
    page.get_by_test_id("valid").wait_for()

    page.get_by_role("button", name="Add a scorecard line").click()
    line = page.locator('[data-row="scorecard-6"]')
    expect(line.get_by_label("Label", exact=True)).to_be_focused()
    line.get_by_label("Label", exact=True).fill("Big company")
    line.get_by_label("Points", exact=True).fill("10")
    line.get_by_label("When", exact=True).fill("compny_size >= 1000")
    # Checked as you type: the problem next to the field, the field marked.
    problem = page.locator("#e-scorecard-6-when")
    expect(problem).to_have_text("unknown name 'compny_size'; did you mean 'company_size'?")
    expect(line.get_by_label("When", exact=True)).to_have_attribute("aria-invalid", "true")
    assert page.get_by_test_id("problem-count").inner_text() == "1 problem to fix before saving:"
    shoot(page, "playbook-form-problem")
    line.get_by_label("When", exact=True).fill("company_size >= 1000")
    page.get_by_test_id("valid").wait_for()
    expect(problem).to_be_hidden()

    nurture = page.locator('[data-row="options-1"]')
    nurture.get_by_role("button", name="Add an action").click()
    action = page.locator('[data-row="options-1-actions-1"]')
    expect(action.get_by_label("To", exact=True)).to_be_visible()  # a new action is an email
    action.get_by_label("Kind").select_option("task")
    expect(action.get_by_label("To", exact=True)).to_be_hidden()
    action.get_by_label("Title").fill("Check in with {{ entity.name or subject }}")
    action.get_by_label("Assignee").fill("sales")
    action.get_by_label("Due in").fill("3d")
    # Removing a row: the hot option's chat message goes.
    page.locator('[data-row="options-0-actions-0"]').get_by_role("button", name="Remove").click()
    expect(page.locator('[data-row="options-0-actions-0"]')).to_have_count(0)
    preview = page.get_by_test_id("preview")
    expect(preview).to_contain_text("title: Check in with {{ entity.name or subject }}")
    expect(preview).not_to_contain_text("kind: notify")
    page.get_by_test_id("valid").wait_for()
    shoot(page, "playbook-form")

    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_url(f"**/playbooks/{LEAD}?saved=2")
    assert "Saved as version 2." in page.inner_text("main")
    playbook = parse_playbook(ops.decide.get_playbook(LEAD)["source"] or "")[0]
    assert (playbook.scorecard[6].label, playbook.scorecard[6].when) == (
        "Big company",
        "company_size >= 1000",
    )
    [hot_task] = playbook.options["hot"].actions
    assert isinstance(hot_task, TaskAction)
    [_email, task] = playbook.options["nurture"].actions
    assert isinstance(task, TaskAction)
    assert (task.title, task.assignee, task.due_in) == (
        "Check in with {{ entity.name or subject }}",
        "sales",
        timedelta(days=3),
    )
    source = ops.decide.get_playbook(LEAD)["source"] or ""
    assert source.startswith("# Lead qualification: spot the leads"), "the opening comments stay"


@pytest.mark.parametrize("width", [390, 1366])
def test_the_form_fits_a_phone_and_a_laptop(
    browser: Any, live_app: LiveServer, shoot: Shoot, width: int
) -> None:
    live_app.ops.decide.apply_playbook(lead_playbook(), "lead.yaml", actor="ana")
    add_people(live_app.ops)
    context = browser.new_context(
        base_url=live_app.url,
        viewport={"width": width, "height": 844 if width < 500 else 900},
        is_mobile=width < 500,
    )
    try:
        screen = context.new_page()
        screen.goto("/playbooks")
        sign_in(screen, OWNER.email, OWNER.password)
        screen.wait_for_url("**/playbooks")
        pages = (
            "/playbooks",
            f"/playbooks/{LEAD}",
            f"/playbooks/{LEAD}/form",
            "/playbooks/_new/form",
        )
        for path in pages:
            screen.goto(path)
            fits = sideways(screen) == 0
            assert fits, f"{path} is wider than {width} px"
        screen.goto(f"/playbooks/{LEAD}/form")
        screen.get_by_role("button", name="Add an action").first.click()
        action = screen.locator('[data-row="options-0-actions-2"]')
        action.get_by_label("Kind").select_option("webhook")
        action.get_by_label("Body (YAML)").fill("lead: '{{ subject }}'\nnote: " + "x" * 120)
        fits = sideways(screen) == 0
        assert fits, f"a new webhook action is wider than {width} px"
        shoot(screen, f"playbook-form-{width}")
    finally:
        context.close()
