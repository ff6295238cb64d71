"""Browser sessions, CSRF, sign-in limits and API tokens, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing

import httpx
import pytest

from opsloop.service import OpsLoop
from tests.conftest import LiveServer, OpsFactory
from tests.people import OWNER, REVIEWER, VIEWER, add_people, form_csrf, sign_in


@pytest.fixture
def site(
    make_ops: OpsFactory, sqlite_url: str, serve: Callable[[OpsLoop], LiveServer]
) -> LiveServer:
    ops = make_ops(sqlite_url, use_clock=False)
    add_people(ops)
    return serve(ops)


def set_cookie_header(answer: httpx.Response, name: str) -> str:
    [header] = [h for h in answer.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    return header


def login(client: httpx.Client, email: str, password: str, **extra: str) -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": form_csrf(page.text), **extra},
    )


def test_signing_in_sets_a_protected_cookie_and_signing_out_ends_the_session(
    site: LiveServer,
) -> None:
    with httpx.Client(base_url=site.url, timeout=10) as browser:
        answer = login(browser, "Rui@Example.com", REVIEWER.password)
        assert (answer.status_code, answer.headers["location"]) == (303, "/")
        cookie = set_cookie_header(answer, "opsloop_session")
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http on loopback
        assert "Max-Age=1209600" in cookie

        home = browser.get("/")
        # Home is the first page of the navigation bar: the inbox.
        assert (home.status_code, home.headers["location"]) == (303, "/inbox")
        account = browser.get("/account")
        assert account.status_code == 200
        assert REVIEWER.email in account.text
        stolen = browser.cookies["opsloop_session"]

        csrf = form_csrf(account.text)
        out = browser.post("/logout", data={"csrf_token": csrf})
        assert (out.status_code, out.headers["location"]) == (303, "/login")
        assert 'opsloop_session=""' in set_cookie_header(out, "opsloop_session")

    # The old cookie is worth nothing now: the session is gone on the server too.
    with httpx.Client(base_url=site.url, timeout=10, cookies={"opsloop_session": stolen}) as thief:
        assert thief.get("/account").status_code == 303
        assert thief.get("/api/me").status_code == 401


def test_the_cookies_are_secure_when_served_over_https(site: LiveServer) -> None:
    # As behind a TLS-terminating proxy on the same machine (uvicorn trusts 127.0.0.1).
    https = {"X-Forwarded-Proto": "https"}
    page = httpx.get(f"{site.url}/login", headers=https, timeout=10)
    form_cookie = set_cookie_header(page, "opsloop_form")
    assert "Secure" in form_cookie
    # httpx, like a browser, keeps Secure cookies off plain http: hand it back by hand.
    answer = httpx.post(
        f"{site.url}/login",
        data={
            "email": VIEWER.email,
            "password": VIEWER.password,
            "csrf_token": form_csrf(page.text),
        },
        headers={**https, "Cookie": form_cookie.split(";")[0]},
        timeout=10,
    )
    assert answer.status_code == 303
    assert "Secure" in set_cookie_header(answer, "opsloop_session")


def test_signing_out_needs_the_sessions_csrf_token(site: LiveServer) -> None:
    browser, csrf = sign_in(site.url, VIEWER)
    with closing(browser):
        forged = browser.post("/logout", data={"csrf_token": "forged"})
        assert forged.status_code == 403
        assert browser.get("/api/me").status_code == 200
        assert browser.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 303
        assert browser.get("/api/me").status_code == 401


def test_a_session_request_that_changes_something_needs_the_csrf_token_a_token_does_not(
    site: LiveServer,
) -> None:
    event = {"type": "lead.created", "subject": "lead:5"}
    browser, csrf = sign_in(site.url, OWNER)
    with closing(browser):
        missing = browser.post("/api/events", json=event)
        assert missing.status_code == 403
        assert missing.json()["error"] == "forbidden"
        assert "X-CSRF-Token" in missing.json()["message"]
        wrong = browser.post("/api/events", json=event, headers={"X-CSRF-Token": csrf[:-1]})
        assert wrong.status_code == 403
        # A form field is only read on pages; the JSON API wants the header.
        as_form = browser.post("/api/tokens", data={"csrf_token": csrf, "name": "x"})
        assert as_form.status_code == 403
        assert (
            browser.post("/api/events", json=event, headers={"X-CSRF-Token": csrf}).status_code
            == 201
        )
        # Reading needs no token.
        assert browser.get("/api/events").status_code == 200
    with site.client() as api:
        assert api.post("/api/events", json={**event, "subject": "lead:6"}).status_code == 201


def test_a_disabled_persons_session_stops_working(site: LiveServer) -> None:
    browser, _ = sign_in(site.url, VIEWER)
    with closing(browser):
        assert browser.get("/api/me").json()["name"] == VIEWER.email
        with site.client() as api:
            answer = api.post(f"/api/users/{VIEWER.email}/disable")
            assert (answer.status_code, answer.json()["status"]) == (200, "disabled")
        assert browser.get("/api/me").status_code == 401
        assert browser.get("/account").status_code == 303
    with httpx.Client(base_url=site.url, timeout=10) as again:
        answer = login(again, VIEWER.email, VIEWER.password)
        assert answer.status_code == 401
        assert "This account is disabled" in answer.text


def test_a_wrong_password_says_so_and_five_lock_the_email_from_that_address(
    site: LiveServer,
) -> None:
    here = {"X-Forwarded-For": "203.0.113.7"}
    with httpx.Client(base_url=site.url, timeout=10, headers=here) as browser:
        for _ in range(5):
            wrong = login(browser, REVIEWER.email, "not my password")
            assert wrong.status_code == 401
            assert "Wrong email or password." in wrong.text
            assert "opsloop_session" not in browser.cookies
        locked = login(browser, REVIEWER.email, REVIEWER.password)
        assert locked.status_code == 429
        assert 890 <= int(locked.headers["retry-after"]) <= 900
        assert "Too many failed sign-ins" in locked.text
        assert "opsloop_session" not in browser.cookies
    # The same person from another address still gets in.
    with httpx.Client(
        base_url=site.url, timeout=10, headers={"X-Forwarded-For": "198.51.100.2"}
    ) as elsewhere:
        assert login(elsewhere, REVIEWER.email, REVIEWER.password).status_code == 303


def test_the_sign_in_form_needs_its_own_cookie(site: LiveServer) -> None:
    with httpx.Client(base_url=site.url, timeout=10) as browser:
        token = form_csrf(browser.get("/login").text)
    # A page elsewhere posting to /login: it cannot read or set our form cookie.
    with httpx.Client(base_url=site.url, timeout=10) as other_site:
        answer = other_site.post(
            "/login", data={"email": OWNER.email, "password": OWNER.password, "csrf_token": token}
        )
        assert answer.status_code == 403
        assert "opsloop_session" not in other_site.cookies


@pytest.mark.parametrize(
    ("next_page", "lands_on"),
    [
        ("/account", "/account"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_after_signing_in_only_pages_of_this_site_are_followed(
    site: LiveServer, next_page: str, lands_on: str
) -> None:
    with httpx.Client(base_url=site.url, timeout=10) as browser:
        answer = login(browser, VIEWER.email, VIEWER.password, next=next_page)
        assert answer.headers["location"] == lands_on


def test_api_tokens_are_shown_once_and_stop_working_when_revoked(site: LiveServer) -> None:
    with site.client() as owner:
        made = owner.post("/api/tokens", json={"name": "zapier", "scope": "read"})
        assert made.status_code == 201
        token = made.json()["token"]
        assert made.json()["scope"] == "read"
        listed = owner.get("/api/tokens").json()["tokens"]
        assert all("token" not in row and "token_hash" not in row for row in listed)
        [row] = [row for row in listed if row["name"] == "zapier"]
        assert row["last_used_at"] is None
        assert owner.post("/api/tokens", json={"name": "x", "scope": "write"}).status_code == 422

        reader = {"Authorization": f"Bearer {token}"}
        me = httpx.get(f"{site.url}/api/me", headers=reader, timeout=10).json()
        assert me == {
            "kind": "token",
            "name": "zapier",
            "role": None,
            "scope": "read",
            "permission": "read",
        }
        [row] = [r for r in owner.get("/api/tokens").json()["tokens"] if r["name"] == "zapier"]
        assert row["last_used_at"] is not None

        revoked = owner.delete(f"/api/tokens/{row['id']}")
        assert (revoked.status_code, revoked.json()["status"]) == (200, "revoked")
        assert httpx.get(f"{site.url}/api/me", headers=reader, timeout=10).status_code == 401
        assert owner.delete(f"/api/tokens/{row['id']}").status_code == 409
        assert owner.delete("/api/tokens/999").status_code == 404


def test_owners_add_people_over_the_api(site: LiveServer) -> None:
    with site.client() as owner:
        made = owner.post(
            "/api/users",
            json={"email": "nia@example.com", "password": "a fine password", "role": "viewer"},
        )
        assert made.status_code == 201
        assert (made.json()["role"], made.json()["created_by"]) == ("viewer", "token:tests")
        assert "password_hash" not in made.json()
        again = owner.post(
            "/api/users",
            json={"email": "nia@example.com", "password": "a fine password", "role": "viewer"},
        )
        assert again.status_code == 409
        short = owner.post(
            "/api/users", json={"email": "x@example.com", "password": "short", "role": "viewer"}
        )
        assert short.json()["errors"] == [
            {"field": "password", "message": "must be at least 8 characters"}
        ]
        emails = [u["email"] for u in owner.get("/api/users").json()["users"]]
        assert emails == [OWNER.email, REVIEWER.email, VIEWER.email, "nia@example.com"]


def test_first_run_set_up_is_only_there_while_nobody_has_an_account(
    make_ops: OpsFactory, sqlite_url: str, serve: Callable[[OpsLoop], LiveServer]
) -> None:
    site = serve(make_ops(sqlite_url, use_clock=False))
    with httpx.Client(base_url=site.url, timeout=10) as browser:
        assert browser.get("/login").headers["location"] == "/setup"
        page = browser.get("/setup")
        assert page.status_code == 200
        csrf = form_csrf(page.text)
        differ = browser.post(
            "/setup",
            data={
                "email": "ana@example.com",
                "password": "a fine password",
                "confirm": "another",
                "csrf_token": csrf,
            },
        )
        assert differ.status_code == 422
        assert "The two passwords differ." in differ.text
        made = browser.post(
            "/setup",
            data={
                "email": "ana@example.com",
                "password": "a fine password",
                "confirm": "a fine password",
                "csrf_token": csrf,
            },
        )
        assert (made.status_code, made.headers["location"]) == (303, "/")
        assert browser.get("/api/me").json()["role"] == "owner"

    with httpx.Client(base_url=site.url, timeout=10) as latecomer:
        assert latecomer.get("/setup").headers["location"] == "/login"
        csrf = form_csrf(latecomer.get("/login").text)
        taken = latecomer.post(
            "/setup",
            data={
                "email": "eve@example.com",
                "password": "a fine password",
                "confirm": "a fine password",
                "csrf_token": csrf,
            },
        )
        assert taken.headers["location"] == "/login"
    assert [u["email"] for u in site.ops.accounts.list_users()] == ["ana@example.com"]


def test_a_person_changes_their_own_password_and_signs_in_with_the_new_one(
    site: LiveServer,
) -> None:
    with httpx.Client(base_url=site.url, timeout=10) as browser:
        login(browser, VIEWER.email, VIEWER.password)
        page = browser.get("/account")
        assert "Change your password" in page.text
        csrf = form_csrf(page.text)

        def change(current: str, new: str, confirm: str) -> httpx.Response:
            fields = {"csrf_token": csrf, "current": current, "password": new, "confirm": confirm}
            return browser.post("/account/password", data=fields)

        wrong = change("not my password", "a new password 1", "a new password 1")
        assert wrong.status_code == 422
        assert "That is not your current password." in wrong.text
        differ = change(VIEWER.password, "a new password 1", "a new password 2")
        assert "The two new passwords differ." in differ.text
        short = change(VIEWER.password, "short", "short")
        assert "Must be at least 8 characters." in short.text

        done = change(VIEWER.password, "a new password 1", "a new password 1")
        assert (done.status_code, done.headers["location"]) == (303, "/login?changed=1")
        assert "Your password is changed." in browser.get("/login?changed=1").text
        assert browser.get("/account").status_code == 303, "signed out everywhere"

    with httpx.Client(base_url=site.url, timeout=10) as again:
        assert login(again, VIEWER.email, VIEWER.password).status_code == 401
        assert login(again, VIEWER.email, "a new password 1").status_code == 303
