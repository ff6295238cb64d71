"""An owner in a browser on the Sources, Actions and Settings pages: replaying a quarantined
item, retrying and cancelling actions, adding a reviewer; and the pages on a phone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opsloop.core.errors import InvalidInput
from tests.browser.conftest import sideways
from tests.conftest import LiveServer, lead_playbook
from tests.leads import settle
from tests.people import OWNER, REVIEWER

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]
PAGES = ("/sources", "/actions", "/settings")


def sign_in(page: Any, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def business(app: LiveServer) -> dict[str, int]:
    """Some of everything: events from two sources, refused input, actions in each state."""
    ops = app.ops
    ops.decide.apply_playbook(lead_playbook(), "lead-qualification.yaml", actor="tests")
    ops.accounts.create_user(OWNER.email, OWNER.password, "owner", actor="tests")
    for n in range(3):
        ops.ingest.body(json.dumps({"type": "page.viewed", "subject": f"lead:{n}"}).encode())
    ops.ingest.add_source(
        "name: shop\nkind: webhook\nallow_unsigned: true\n", "shop.yaml", actor="tests"
    )
    ops.ingest.receive_hook(
        "shop", b'{"type": "order.paid", "subject": "customer:bo@example.com"}', {}
    )
    with pytest.raises(InvalidInput):
        ops.ingest.body(
            b'{"type": "lead.created", "subject": "lead 9", "traits": {"email": "x@y.co"}}'
        )
    [pending] = settle(ops, 1)
    [dead] = settle(ops, 2, email=None)
    ops.deliver.send(dead["id"])
    return {"pending": pending["id"], "dead": dead["id"]}


def test_an_owner_replays_retries_cancels_and_adds_a_reviewer(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    made = business(live_app)
    sign_in(page, OWNER.email, OWNER.password)
    nav = page.locator("nav.nav a").all_inner_texts()
    assert nav[-7:] == ["Sources", "Tasks", "Actions", "Sequences", "Ask", "Documents", "Settings"]
    assert nav[nav.index("Dashboard") + 1] == "Reports"

    page.goto("/sources")
    assert f"{live_app.url}/api/events" in page.get_by_test_id("endpoint-url").all_inner_texts()
    assert "page.viewed 3" in page.get_by_test_id("activity").inner_text()
    shoot(page, "sources")
    item = page.get_by_test_id("quarantine-item")
    item.get_by_role("button", name="Replay").click()
    page.get_by_test_id("replay-failed").wait_for()  # swapped in by htmx
    assert "was refused again: subject" in item.inner_text()
    shoot(page, "sources-replay-refused")

    page.goto("/actions")  # opens on what failed for good
    assert page.get_by_test_id("tab-dead").get_attribute("aria-current") == "page"
    page.get_by_test_id("tab-pending").click()
    page.wait_for_url("**/actions?status=pending")
    assert page.get_by_test_id("action-row").count() == 1
    shoot(page, "actions")
    page.once("dialog", lambda dialog: dialog.accept())  # "Cancel action …? It will never be sent."
    page.get_by_role("button", name="Cancel").click()
    page.locator(f'#action-{made["pending"]}[data-status="cancelled"]').wait_for()
    page.get_by_test_id("tab-dead").click()
    page.wait_for_url("**/actions?status=dead")
    assert "email has no recipient" in page.get_by_test_id("action-row").inner_text()
    shoot(page, "actions-dead")
    page.get_by_role("button", name="Retry").click()
    page.locator(f'#action-{made["dead"]}[data-status="pending"]').wait_for()
    assert live_app.ops.deliver.get_action(made["pending"])["status"] == "cancelled"
    assert live_app.ops.deliver.get_action(made["dead"])["status"] == "pending"

    page.goto("/settings")
    assert "Not set: the default is localhost." in page.inner_text("#email")
    shoot(page, "settings")
    # Playwright's screenshot leaves `style=""` on inputs (it hides the caret), which htmx would
    # copy onto the swapped-in ones, against the Content-Security-Policy: start afresh.
    page.reload()
    page.fill("#user-email", REVIEWER.email)
    page.select_option("#user-role", "reviewer")
    page.fill("#user-password", REVIEWER.password)
    page.get_by_role("button", name="Add this person").click()
    page.get_by_text(f"{REVIEWER.email} can now sign in as reviewer.").wait_for()
    [user] = [u for u in live_app.ops.accounts.list_users() if u["email"] == REVIEWER.email]
    assert (user["role"], user["status"]) == ("reviewer", "active")
    page.fill("#token-name", "zapier")
    page.get_by_role("button", name="Make the token").click()
    assert page.get_by_test_id("new-token").inner_text().startswith("olt_")
    page.locator("#users").scroll_into_view_if_needed()
    shoot(page, "settings-user-added")

    # The new reviewer signs in: no Settings for them.
    page.context.clear_cookies()
    sign_in(page, REVIEWER.email, REVIEWER.password)
    assert "Settings" not in page.locator("nav.nav a").all_inner_texts()
    page.goto("/settings")
    assert "needs the owner role" in page.get_by_role("alert").inner_text()


def test_the_pages_fit_a_phone(browser: Any, live_app: LiveServer, shoot: Shoot) -> None:
    business(live_app)
    context = browser.new_context(
        base_url=live_app.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    try:
        phone = context.new_page()
        sign_in(phone, OWNER.email, OWNER.password)
        for path in PAGES:
            phone.goto(path)
            assert sideways(phone) == 0, path
            shoot(phone, f"{path.strip('/')}-phone")
    finally:
        context.close()
