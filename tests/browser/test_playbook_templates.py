"""The template gallery in a browser: an owner goes from the playbooks page to a template,
backtests it on the stored history (the report and its chart arrive through htmx), installs it
in recommend mode and lands on the new playbook; installing it again from a page opened before
shows the refusal in place, with a link to the playbook."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_playbooks import leads, sign_in_as_owner
from tests.conftest import LiveServer

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]
LEAD = "lead-qualification"


def test_an_owner_backtests_a_template_then_installs_it_once(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    leads(live_app.ops, 6)
    sign_in_as_owner(page, live_app, "/playbooks")
    page.get_by_role("link", name="Start from a template").first.click()
    page.wait_for_url("**/playbooks/_templates")
    card = page.get_by_test_id(f"template-{LEAD}")
    assert "Needs the chat channel 'sales'" in card.inner_text()
    shoot(page, "playbook-templates")

    card.get_by_role("link", name="Read, backtest and install").click()
    page.wait_for_url(f"**/playbooks/_templates/{LEAD}")
    page.get_by_role("button", name="Backtest on my history").click()
    report = page.get_by_test_id("backtest-report")
    expect(report).to_contain_text("6 decisions from 6 triggering events")
    expect(page.locator("[data-chart][data-drawn='true']")).to_have_count(1)
    assert page.url.endswith(f"/playbooks/_templates/{LEAD}"), "htmx kept the page"
    shoot(page, "playbook-template-backtest")

    # A second tab opened before the install still offers it.
    other = page.context.new_page()
    other.goto(f"/playbooks/_templates/{LEAD}")

    page.get_by_role("button", name="Install in recommend mode").click()
    page.wait_for_url(f"**/playbooks/{LEAD}?installed=true")
    expect(page.get_by_test_id("installed")).to_contain_text(
        "Installed from the template in recommend mode"
    )
    assert live_app.ops.decide.get_playbook(LEAD)["mode"] == "recommend"

    other.get_by_role("button", name="Install in recommend mode").click()
    refused = other.get_by_test_id("install-refused")
    expect(refused).to_contain_text("lead-qualification is already installed (version 1")
    refused.get_by_role("link", name=f"Open {LEAD}").click()
    other.wait_for_url(f"**/playbooks/{LEAD}")
    assert len(live_app.ops.decide.get_playbook(LEAD)["versions"]) == 1
    other.close()
