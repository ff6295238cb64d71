"""The dashboard in a browser: signing in lands on it, its charts are drawn by the vendored
Vega scripts under the page's Content-Security-Policy, and nothing is fetched from anywhere
but OpsLoop itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opsloop.service import OpsLoop
from tests.browser.conftest import sideways
from tests.browser.test_sign_in import sign_in
from tests.conftest import Clock, LiveServer, OpsFactory
from tests.people import VIEWER
from tests.web.dashboard_story import build_history

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]
CHARTS = 4
LABELS = "marks => marks.map(mark => mark.getAttribute('aria-label'))"


@pytest.fixture
def live_app(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock, serve: Callable[[OpsLoop], LiveServer]
) -> LiveServer:
    """Seven weeks of history (tests/web/dashboard_story.py) instead of an empty OpsLoop."""
    server = serve(build_history(make_ops, sqlite_url, clock))
    server.ops.accounts.create_user(VIEWER.email, VIEWER.password, "viewer", actor="tests")
    return server


def test_the_dashboard_draws_its_charts_from_vendored_scripts_only(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto("/dashboard")
    assert "/login?next=/dashboard" in page.url
    sign_in(page, VIEWER.email, VIEWER.password)
    page.wait_for_url("**/dashboard")

    page.wait_for_function(
        f"document.querySelectorAll('[data-chart][data-drawn=true]').length === {CHARTS}"
    )
    for chart in ("success-rate", "override-rate", "time-to-action", "csat"):
        box = page.locator(f"#{chart} .chart-box")
        assert box.locator("svg, canvas").count() == 1, f"{chart} was not drawn"
        assert box.locator("svg").bounding_box()["height"] > 100
    # The line joins whole weeks: follow-up's weeks 10 to 15. Week 16 is not over ("now" is its
    # Friday): each playbook's point there is hollow, off the line, and says "so far".
    assert page.locator("#override-rate svg path[aria-roledescription='line mark']").count() == 1
    so_far = page.locator(
        "#override-rate svg path[aria-roledescription='point'][fill='transparent']"
    )
    assert so_far.count() == 2
    assert all("2026-W16, so far" in label for label in so_far.evaluate_all(LABELS))
    # Pointing at a week shows its numbers (vega-tooltip, styled by opsloop.css).
    page.locator("#time-to-action svg path[aria-roledescription='point']").first.hover()
    tooltip = page.locator("#vg-tooltip-element.visible")
    tooltip.wait_for()
    assert "2026-W10" in tooltip.inner_text()
    assert page.locator("[data-tile=pending-reviews] .metric-value").inner_text() == "1"
    assert page.get_by_role("link", name="Dashboard").get_attribute("aria-current") == "page"
    shoot(page, "dashboard")

    page.select_option("#playbook", "follow-up")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/dashboard?playbook=follow-up")
    page.wait_for_function(
        f"document.querySelectorAll('[data-chart][data-drawn=true]').length === {CHARTS}"
    )
    assert page.locator("[data-playbook]").count() == 1
    shoot(page, "dashboard-one-playbook")

    outside = [url for url in requested if not url.startswith((live_app.url, "data:", "blob:"))]
    assert outside == [], f"requests that left OpsLoop: {outside}"
    assert any(url.endswith(".min.js?v=0.1.0") or "vendor/vega" in url for url in requested)


def test_the_dashboard_draws_its_charts_without_a_console_warning(
    page: Any, live_app: LiveServer
) -> None:
    """Every console message, not only errors: Vega-Lite warns when the specs' version and the
    bundled Vega's differ (they did: v6 specs on a Vega that called itself 5.33)."""
    said: list[str] = []
    page.on("console", lambda message: said.append(f"{message.type}: {message.text}"))
    page.goto("/dashboard")
    sign_in(page, VIEWER.email, VIEWER.password)
    page.wait_for_url("**/dashboard")
    page.wait_for_function(
        f"document.querySelectorAll('[data-chart][data-drawn=true]').length === {CHARTS}"
    )
    assert [line for line in said if line.startswith(("warning", "error"))] == []
    versions = page.evaluate("[vega.version, vegaLite.version]")
    assert [version.split(".")[0] for version in versions] == ["6", "6"]


def test_the_dashboard_fits_a_phone(browser: Any, live_app: LiveServer, shoot: Shoot) -> None:
    context = browser.new_context(
        base_url=live_app.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    try:
        phone = context.new_page()
        phone.goto("/dashboard")
        sign_in(phone, VIEWER.email, VIEWER.password)
        phone.wait_for_url("**/dashboard")
        phone.wait_for_function(
            f"document.querySelectorAll('[data-chart][data-drawn=true]').length === {CHARTS}"
        )
        assert sideways(phone) == 0
        shoot(phone, "dashboard-phone")
    finally:
        context.close()
