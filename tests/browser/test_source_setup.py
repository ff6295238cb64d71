"""An owner adds a webhook source in a browser: the form's problems appear beside their field
without leaving the page, the new secret is shown once, a test delivery is accepted in place;
and the set-up pages fit a phone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sideways
from tests.conftest import LiveServer
from tests.people import OWNER

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]


def sign_in(page: Any) -> None:
    page.goto("/login")
    page.fill("#email", OWNER.email)
    page.fill("#password", OWNER.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def test_an_owner_adds_a_webhook_source_and_sends_it_a_test_delivery(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    live_app.ops.accounts.create_user(OWNER.email, OWNER.password, "owner", actor="tests")
    sign_in(page)
    page.goto("/sources")
    page.get_by_test_id("add-source").click()
    page.get_by_test_id("start-webhook").click()
    page.wait_for_url("**/sources/_new/webhook")

    page.fill("#f-name", "Back Office")
    page.fill("#f-tolerance", "a while")
    page.get_by_test_id("save-source").click()
    name_error = page.locator("#f-name-error")
    name_error.wait_for()
    assert "lowercase letters" in name_error.inner_text()
    assert page.url.endswith("/sources/_new/webhook"), "htmx: the form is replaced in place"
    assert page.locator("#f-tolerance").input_value() == "a while"
    assert page.locator("#f-generate").is_checked()
    shoot(page, "source-form-errors")

    page.fill("#f-name", "backoffice")
    page.fill("#f-tolerance", "10m")
    page.get_by_test_id("save-source").click()
    page.wait_for_url("**/sources/backoffice?done=added&k=*")
    secret = page.get_by_test_id("secret-value").inner_text()
    assert secret == live_app.ops.ingest.get_source("backoffice").secret
    assert f"SECRET={secret}" in page.get_by_test_id("delivery-command").inner_text()

    page.get_by_test_id("send-test").click()
    outcome = page.get_by_test_id("test-outcome")
    outcome.wait_for()
    assert outcome.get_attribute("data-outcome") == "accepted"
    assert "test.delivery" in outcome.inner_text()
    shoot(page, "source-test-delivery")

    page.reload()
    assert page.get_by_test_id("new-secret").count() == 0, "shown once"
    page.get_by_test_id("edit-source").click()
    assert "A secret is set; leave empty to keep it." in page.inner_text("#f-secret-help")
    assert page.locator("#f-secret").input_value() == ""


@pytest.mark.parametrize(
    "path",
    [
        "/sources",
        "/sources/_new",
        "/sources/_new/webhook",
        "/sources/_new/http?example=shop-api",
        "/sources/_new/sql",
        "/sources/stripe/edit",
        "/sources/stripe",
    ],
)
def test_the_set_up_pages_fit_a_phone(
    browser: Any, live_app: LiveServer, shoot: Shoot, path: str
) -> None:
    ops = live_app.ops
    ops.accounts.create_user(OWNER.email, OWNER.password, "owner", actor="tests")
    ops.ingest.add_source(
        "name: stripe\nkind: webhook\nverify: stripe\nmapping: stripe\n",
        "stripe.yaml",
        secret="whsec_phone_1",
        actor="tests",
    )
    context = browser.new_context(
        base_url=live_app.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    try:
        phone = context.new_page()
        sign_in(phone)
        phone.goto(path)
        if path == "/sources/stripe":
            phone.get_by_test_id("send-test").click()
            phone.get_by_test_id("test-outcome").wait_for()
            phone.locator(".src-sent summary").click()
        assert sideways(phone) == 0, path
        shoot(phone, "phone" + path.replace("/", "-").replace("?", "-").replace("=", "-"))
    finally:
        context.close()
