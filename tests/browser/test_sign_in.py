"""A person in a browser: the first-run set-up, a wrong password, signing in and out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import sideways
from tests.conftest import LiveServer
from tests.people import REVIEWER, VIEWER

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]


def sign_in(page: Any, email: str, password: str) -> None:
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_the_first_visitor_sets_up_the_owner_account(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    page.goto("/")
    assert page.url.endswith("/setup")
    assert page.get_by_role("heading").first.inner_text() == "Welcome to OpsLoop"
    shoot(page, "setup")

    page.fill("#email", "Owner@Example.com")
    page.fill("#password", "a fine password")
    page.fill("#confirm", "a fine password")
    page.click("button[type=submit]")

    page.wait_for_url("**/inbox")
    assert page.get_by_test_id("signed-in-as").inner_text() == "owner@example.com"
    page.get_by_test_id("signed-in-as").click()
    page.wait_for_url("**/account")
    assert "with the owner role" in page.inner_text("main")
    shoot(page, "account")
    [owner] = live_app.ops.accounts.list_users()
    assert (owner["email"], owner["role"]) == ("owner@example.com", "owner")
    # Set-up is over: /setup sends everyone to sign in (and the signed-in on to their home).
    page.goto("/setup")
    assert page.url.endswith("/inbox")
    page.context.clear_cookies()
    page.goto("/setup")
    assert "/login" in page.url


def test_a_wrong_password_is_refused_with_a_message(
    page: Any, live_app: LiveServer, shoot: Shoot
) -> None:
    live_app.ops.accounts.create_user(VIEWER.email, VIEWER.password, "viewer", actor="tests")
    page.goto("/login")
    shoot(page, "login")
    sign_in(page, VIEWER.email, "not the password")

    assert page.get_by_role("alert").inner_text() == "Wrong email or password."
    assert page.url.endswith("/login")
    assert page.input_value("#email") == VIEWER.email
    assert not [c for c in page.context.cookies() if c["name"] == "opsloop_session"]
    shoot(page, "login-wrong-password")


def test_signing_in_lands_on_the_home_page(page: Any, live_app: LiveServer, shoot: Shoot) -> None:
    live_app.ops.accounts.create_user(REVIEWER.email, REVIEWER.password, "reviewer", actor="tests")
    page.goto("/")
    assert "/login" in page.url
    sign_in(page, REVIEWER.email, REVIEWER.password)

    page.wait_for_url("**/inbox")
    assert page.get_by_test_id("signed-in-as").inner_text() == REVIEWER.email
    assert page.inner_text(".role") == "reviewer"
    [cookie] = [c for c in page.context.cookies() if c["name"] == "opsloop_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    # The vendored htmx is loaded, and sends the session's CSRF token with its requests.
    assert page.evaluate("typeof htmx") == "object"
    assert page.get_attribute("body", "hx-headers") == (
        '{"X-CSRF-Token": "' + page.get_attribute("meta[name=csrf-token]", "content") + '"}'
    )
    shoot(page, "home")


def test_signing_out_ends_the_session(page: Any, live_app: LiveServer, shoot: Shoot) -> None:
    live_app.ops.accounts.create_user(VIEWER.email, VIEWER.password, "viewer", actor="tests")
    page.goto("/login")
    sign_in(page, VIEWER.email, VIEWER.password)
    page.wait_for_url("**/inbox")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    shoot(page, "signed-out")
    assert page.request.get("/api/me").status == 401
    page.goto("/account")
    assert "/login?next=/account" in page.url


def test_htmx_requests_carry_the_csrf_token_and_forged_ones_are_refused(
    page: Any, live_app: LiveServer
) -> None:
    live_app.ops.accounts.create_user(VIEWER.email, VIEWER.password, "viewer", actor="tests")
    page.goto("/login")
    sign_in(page, VIEWER.email, VIEWER.password)
    page.wait_for_url("**/inbox")

    # A plain fetch without the token, as a forged request would be: refused.
    status = page.evaluate("fetch('/logout', {method: 'POST'}).then(r => r.status)")
    assert status == 403
    assert page.request.get("/api/me").status == 200
    # The same request through htmx carries the token from <body hx-headers>: accepted.
    with page.expect_response("**/logout") as answer:
        page.evaluate("htmx.ajax('POST', '/logout', {source: 'main', swap: 'none'})")
    assert answer.value.request.headers["x-csrf-token"]
    assert page.request.get("/api/me").status == 401


def test_the_pages_fit_a_phone(browser: Any, live_app: LiveServer, shoot: Shoot) -> None:
    live_app.ops.accounts.create_user(VIEWER.email, VIEWER.password, "viewer", actor="tests")
    context = browser.new_context(
        base_url=live_app.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    try:
        phone = context.new_page()
        phone.goto("/login")
        assert sideways(phone) == 0
        shoot(phone, "login-phone")
        sign_in(phone, VIEWER.email, VIEWER.password)
        phone.wait_for_url("**/inbox")
        assert sideways(phone) == 0
        phone.goto("/account")
        assert sideways(phone) == 0
        shoot(phone, "account-phone")
    finally:
        context.close()
