"""A reviewer in a browser on the Ask page: asks a question in the box, gets the answer with
its records as links without the page reloading, follows one to the decision's page, and asks
an example question with one click; a phone-sized screen shows it too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ask_business import PLAYBOOKS, build
from tests.browser.test_admin_pages import sign_in
from tests.conftest import LiveServer
from tests.people import REVIEWER, add_people

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]


def test_a_reviewer_asks_and_follows_a_cited_record(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    ops = live_app.ops
    for text in PLAYBOOKS:
        ops.decide.apply_playbook(text, "playbook.yaml", actor="tests")
    add_people(ops)
    shop = build(ops)
    sign_in(page, REVIEWER.email, REVIEWER.password)

    page.click('nav.nav a[href="/ask"]')
    page.wait_for_url("**/ask")
    assert page.locator('[data-testid="no-questions"]').is_visible()
    page.fill("#question", "Which leads need attention today?")
    page.click('[data-testid="ask-form"] button[type=submit]')
    card = page.locator('[data-testid="answers"] article').first
    card.wait_for()
    assert "2 leads wait for review" in card.inner_text()
    assert page.url.endswith("/ask"), "the answer came in without leaving the page"
    assert not page.locator('[data-testid="no-questions"]').is_visible()
    cited = card.locator('[data-testid="citations"] a')
    assert sorted(cited.evaluate_all("links => links.map(a => a.getAttribute('href'))")) == sorted(
        f"/decisions/{d}" for d in shop.waiting_leads
    )
    shoot(page, "ask-answer")

    page.click('[data-testid="example"] >> text=What happened to order 1042?')
    newest = page.locator('[data-testid="answers"] article').first
    newest.locator("text=What happened to order 1042?").wait_for()
    assert "order.placed" in newest.inner_text()
    assert page.locator('[data-testid="answers"] article').count() == 2

    first = page.locator(f'[data-testid="answers"] a[data-ref="decision:{shop.waiting_leads[0]}"]')
    first.first.click()
    page.wait_for_url(f"**/decisions/{shop.waiting_leads[0]}")
    assert "lead:2" in page.inner_text("main")

    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/ask")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page fits a phone"
    shoot(page, "ask-phone")
