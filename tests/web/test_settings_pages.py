"""The Settings page over real HTTP, owners only: every setting with the variable that changes
it and no secret shown, the mail server and language model tests against real local servers,
the model's usage, and people and API tokens managed in the page."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from opsloop.store import audit as audit_store
from tests.conftest import LiveServer, OpsFactory, Serve
from tests.fake_llm import COMPLETION_TOKENS, PROMPT_TOKENS, SERVED_MODEL, FakeOpenAI
from tests.people import OWNER, REVIEWER, VIEWER, Person, SignIn, add_people
from tests.sinks import SmtpSink, free_port

Site = Callable[..., LiveServer]
SECRETS = {
    "smtp_password": "smtp-pass-7c1e",
    "notify_url": "https://hooks.slack.com/services/T00/B00/chat-secret-91af",
    "notify_channels": {"sales": "https://chat.example.com/hooks/sales-secret-5d2b"},
    "webhook_endpoints": {
        "crm": {
            "url": "https://crm.example.com/in?token=query-secret-33",
            "secret": "whsec_b3duc2VjcmV0",
        }
    },
}


@pytest.fixture
def site(make_ops: OpsFactory, sqlite_url: str, serve: Serve) -> Site:
    """An OpsLoop with the three people, served, with these settings."""

    def start(*, people: bool = True, **settings: Any) -> LiveServer:
        ops = make_ops(sqlite_url, use_clock=False, **settings)
        if people:
            add_people(ops)
        return serve(ops)

    return start


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


def htmx(csrf: str) -> dict[str, str]:
    return {"HX-Request": "true", "X-CSRF-Token": csrf}


def test_every_setting_says_where_it_comes_from_and_no_secret_is_shown(
    site: Site, signed: SignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLOOP_SMTP_HOST", "mail.example.com")
    server = site(
        smtp_port=587,
        smtp_security="starttls",
        llm={"url": "https://llm.example.com/v1", "model": "tiny", "api_key": "sk-llm-secret-8e"},
        **SECRETS,
    )
    owner, _ = signed(server.url, OWNER)
    page = owner.get("/settings")

    assert page.status_code == 200
    text = page.text
    host = origin_of(text, "smtp_host")
    assert "Set by OPSLOOP_SMTP_HOST in the environment, which wins over this page" in host
    assert re.search(
        r'id="set-smtp_host" name="smtp_host"\s+value="mail.example.com" disabled', text
    )
    for field in ("smtp_port", "smtp_security", "llm__url", "llm__model", "llm__api_key"):
        assert "Set in opsloop.toml (or a start-up option)" in origin_of(text, field), field
    assert "Not set." in origin_of(text, "smtp_username")
    assert "the default is opsloop@localhost" in origin_of(text, "smtp_from")
    for variable in ("OPSLOOP_SMTP_TIMEOUT_SECONDS", "OPSLOOP_WEBHOOK_SECRET"):
        assert f'<code class="adm-var">{variable}</code>' in text, variable
    assert "https://crm.example.com/in?…" in text
    assert "OPSLOOP_WEBHOOK_ENDPOINTS__CRM__URL" in text
    for secret in (
        "smtp-pass-7c1e",
        "chat-secret-91af",
        "sales-secret-5d2b",
        "query-secret-33",
        "whsec_b3duc2VjcmV0",
        "sk-llm-secret-8e",
        "/services/T00",
    ):
        assert secret not in text, secret
    assert "No calls to a language model yet." in text


def origin_of(page: str, field: str) -> str:
    """The words under a setting's field saying where its value comes from."""
    found = re.search(f'data-testid="origin-{field}">(.*?)</p>', page, re.S)
    assert found, field
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_an_owner_sets_up_the_mail_server_here_and_email_goes_out_without_a_restart(
    site: Site, signed: SignIn, smtp_sink: SmtpSink
) -> None:
    server = site()
    owner, csrf = signed(server.url, OWNER)
    form = {
        "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp_sink.port),
        "smtp_security": "none",
        "smtp_from": "Shop <shop@example.com>",
        "csrf_token": csrf,
    }

    saved = owner.post("/settings/smtp", data=form, headers=htmx(csrf))

    assert saved.status_code == 200
    assert saved.text.strip().startswith(
        '<form class="adm-form adm-settings-form" id="settings-smtp"'
    )
    assert "Saved (server, port, from): in force now." in saved.text
    assert "Saved here." in origin_of(saved.text, "smtp_host")
    sent = owner.post("/settings/smtp/test", headers=htmx(csrf), data={"to": "olga@example.com"})
    assert "A test email went to olga@example.com" in sent.text
    [mail] = smtp_sink.messages
    assert mail.message["From"] == "Shop <shop@example.com>"
    assert server.ops.settings.smtp_host == "127.0.0.1"
    with server.ops.db.read() as conn:
        [entry] = audit_store.trail(conn, "settings", "smtp")
    assert (entry["actor"], entry["detail"]) == (
        OWNER.email,
        {"keys": ["smtp_host", "smtp_port", "smtp_from"]},
    )

    emptied = owner.post("/settings/smtp", data={**form, "smtp_from": ""}, headers=htmx(csrf))
    assert "Saved (from): in force now." in emptied.text
    assert server.ops.settings.smtp_from == "opsloop@localhost"


def test_bad_values_are_refused_next_to_their_field_and_nothing_is_saved(
    site: Site, signed: SignIn
) -> None:
    server = site()
    owner, csrf = signed(server.url, OWNER)
    form = {"smtp_host": "mail.example.com", "smtp_port": "five", "csrf_token": csrf}

    page = owner.post("/settings/smtp", data=form)  # without htmx: the whole page, 422

    assert page.status_code == 422
    assert "Nothing was saved: fix the fields marked below." in page.text
    assert re.search(
        r'id="set-smtp_port-error" role="alert">Input should be a valid integer', page.text
    )
    assert 'value="mail.example.com"' in page.text, "the form keeps what was typed"
    assert server.ops.settings.smtp_host == "localhost"
    chat = owner.post(
        "/settings/chat",
        data={"notify_channels": "sales = https://hooks.example.com/a\nops", "csrf_token": csrf},
        headers=htmx(csrf),
    )
    assert "Line 2: write `name = https://hooks.example.com/...`." in chat.text
    zone = owner.post("/settings/general", data={"timezone": "Mars/Base"}, headers=htmx(csrf))
    assert "&#39;Mars/Base&#39; is not a time zone" in zone.text
    assert owner.post("/settings/nothing", data={"csrf_token": csrf}).status_code == 404


def test_saved_secrets_are_sealed_write_only_and_the_environment_still_wins(
    site: Site, signed: SignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "one key for every process of this installation"
    server = site(encryption_key=key)
    owner, csrf = signed(server.url, OWNER)
    channels = "Sales = https://chat.example.com/hooks/sales-secret-5d2b"
    form = {
        "notify_url": "https://hooks.slack.com/services/T00/B00/chat-secret-91af",
        "notify_channels": channels,
        "csrf_token": csrf,
    }

    saved = owner.post("/settings/chat", data=form, headers=htmx(csrf))

    assert "Saved (default chat webhook, named chat channels): in force now." in saved.text
    assert server.ops.settings.notify_channels == {
        "sales": "https://chat.example.com/hooks/sales-secret-5d2b"
    }
    page = owner.get("/settings").text
    assert "chat-secret-91af" not in page
    assert "sales-secret-5d2b" not in page
    assert "Channels: sales." in origin_of(page, "notify_channels")
    stored = server.ops.db.engine.raw_connection()
    try:
        rows = dict(stored.cursor().execute("SELECT key, value FROM settings_values").fetchall())
    finally:
        stored.close()
    assert all(value.startswith("fernet:") for value in rows.values()), rows
    assert not any("secret" in value for value in rows.values())

    # An empty secret field keeps what is saved; `remove it` removes it.
    owner.post("/settings/chat", data={"csrf_token": csrf}, headers=htmx(csrf))
    assert server.ops.settings.notify_url
    owner.post(
        "/settings/chat", data={"clear": "notify_url", "csrf_token": csrf}, headers=htmx(csrf)
    )
    assert server.ops.settings.notify_url is None
    assert server.ops.settings.notify_channels == {
        "sales": "https://chat.example.com/hooks/sales-secret-5d2b"
    }

    # Another process (its own data folder, the same key) reads what was saved...
    other = site(people=False, encryption_key=key)
    assert other.ops.settings.notify_channels == server.ops.settings.notify_channels
    # ...unless the environment sets it: its value wins, and the page says so.
    monkeypatch.setenv("OPSLOOP_NOTIFY_CHANNELS", '{"ops": "https://env.example.com/x"}')
    other = site(people=False, encryption_key=key)
    assert other.ops.settings.notify_channels == {"ops": "https://env.example.com/x"}
    again, _ = signed(other.url, OWNER)
    assert "Set by OPSLOOP_NOTIFY_CHANNELS in the environment" in origin_of(
        again.get("/settings").text, "notify_channels"
    )


def test_a_reviewer_or_viewer_cannot_open_settings_or_manage_people(
    site: Site, signed: SignIn
) -> None:
    server = site()
    for person in (REVIEWER, VIEWER):
        client, csrf = signed(server.url, person)
        assert 'href="/settings"' not in client.get("/sources").text
        for method, url, data in [
            ("GET", "/settings", None),
            (
                "POST",
                "/settings/users",
                {"email": "eve@example.com", "role": "owner", "password": "long enough"},
            ),
            ("POST", "/settings/users/disable", {"email": OWNER.email}),
            ("POST", "/settings/tokens", {"name": "mine", "scope": "admin"}),
            ("POST", "/settings/tokens/1/revoke", {}),
            ("POST", "/settings/smtp/test", {}),
            ("POST", "/settings/llm/test", {}),
        ]:
            answer = client.request(
                method, url, data=None if data is None else {**data, "csrf_token": csrf}
            )
            assert answer.status_code == 403, (person.role, url)
            assert "needs the owner role" in answer.text
    assert [
        u["email"] for u in server.ops.accounts.list_users() if u["email"] == "eve@example.com"
    ] == []
    assert server.ops.accounts.list_tokens() == []
    assert server.ops.accounts.list_users()[0]["status"] == "active"


def test_the_language_model_test_shows_the_model_its_latency_and_then_the_usage(
    site: Site, signed: SignIn, fake_llm: FakeOpenAI
) -> None:
    llm = {
        "url": fake_llm.url,
        "model": "tiny",
        "input_price_per_million": 1.0,
        "output_price_per_million": 2.0,
    }
    server = site(llm=llm)
    owner, csrf = signed(server.url, OWNER)

    answer = owner.post("/settings/llm/test", headers=htmx(csrf))

    assert answer.status_code == 200
    assert answer.text.strip().startswith('<div id="llm-check"')
    assert f"<code>{SERVED_MODEL}</code> at <code>{fake_llm.url}</code>" in answer.text
    assert re.search(r"The model answered in \d+ ms", answer.text)
    assert len(fake_llm.requests) == 1
    usage = re.search(r'data-testid="llm-usage">.*?</table>', owner.get("/settings").text, re.S)
    assert usage
    cost = (PROMPT_TOKENS * 1.0 + COMPLETION_TOKENS * 2.0) / 1e6
    cells = re.findall(r"<td>(.*?)</td>", usage.group(0))
    assert cells == [
        "tiny",
        "1",
        "0",
        "0",
        str(PROMPT_TOKENS),
        str(COMPLETION_TOKENS),
        f"{cost:.4f}",
    ]


def test_an_unreachable_language_model_is_reported_with_what_to_check(
    site: Site, signed: SignIn
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    server = site(llm={"url": url, "model": "tiny", "max_retries": 0})
    owner, csrf = signed(server.url, OWNER)

    page = owner.post("/settings/llm/test", data={"csrf_token": csrf})  # without htmx: the page

    assert page.status_code == 200
    assert "<h1>Settings</h1>" in page.text
    check = re.search(r'<div id="llm-check".*?</div>', page.text, re.S)
    assert check
    assert "The language model test failed: cannot reach" in check.group(0)
    assert "is the server running" in check.group(0)


def test_without_a_language_model_the_page_says_what_to_set(site: Site, signed: SignIn) -> None:
    server = site()
    owner, csrf = signed(server.url, OWNER)
    page = owner.get("/settings").text
    assert "No language model is configured: set its API base URL and model above" in page
    assert "No API tokens yet." in page
    assert "No named webhook endpoints." in page
    answer = owner.post("/settings/llm/test", headers=htmx(csrf))
    assert "The language model test failed:" in answer.text
    assert "OPSLOOP_LLM__URL" in answer.text


def test_the_mail_server_test_connects_without_sending_or_sends_one_email(
    site: Site, signed: SignIn, smtp_sink: SmtpSink
) -> None:
    server = site(smtp_host="127.0.0.1", smtp_port=smtp_sink.port, smtp_from="ops@example.com")
    owner, csrf = signed(server.url, OWNER)

    connected = owner.post("/settings/smtp/test", headers=htmx(csrf))
    assert connected.text.strip().startswith('<div id="smtp-check"')
    assert f"Connected to <code>127.0.0.1:{smtp_sink.port}</code> (none)" in connected.text
    assert "No email was sent." in connected.text
    assert smtp_sink.messages == []

    sent = owner.post("/settings/smtp/test", headers=htmx(csrf), data={"to": "olga@example.com"})
    assert "A test email went to olga@example.com" in sent.text
    [mail] = smtp_sink.messages
    assert (mail.rcpt_tos, mail.message["From"], mail.message["Subject"]) == (
        ["olga@example.com"],
        "ops@example.com",
        "OpsLoop test email",
    )
    bad = owner.post("/settings/smtp/test", headers=htmx(csrf), data={"to": "not an address"})
    assert "&#39;not an address&#39; is not an email address." in bad.text
    assert len(smtp_sink.messages) == 1


def test_an_unreachable_mail_server_is_reported_with_what_to_check(
    site: Site, signed: SignIn
) -> None:
    port = free_port()
    server = site(smtp_host="127.0.0.1", smtp_port=port)
    owner, csrf = signed(server.url, OWNER)
    answer = owner.post("/settings/smtp/test", headers=htmx(csrf))
    assert (
        f"The mail server test failed: cannot reach the SMTP server 127.0.0.1:{port}" in answer.text
    )
    assert "check the server, port and security under Settings → Email" in answer.text
    assert "(OPSLOOP_SMTP_HOST, OPSLOOP_SMTP_PORT and OPSLOOP_SMTP_SECURITY)" in answer.text


def test_an_owner_adds_a_reviewer_who_can_then_sign_in(site: Site, signed: SignIn) -> None:
    server = site()
    owner, csrf = signed(server.url, OWNER)
    new = {"email": "Sam@Example.com", "role": "reviewer", "password": "sam's password"}

    added = owner.post("/settings/users", data={**new, "csrf_token": csrf})

    assert added.status_code == 200
    assert "sam@example.com can now sign in as reviewer." in added.text
    assert 'data-email="sam@example.com"' in added.text
    sam, _ = signed(server.url, Person("sam@example.com", "sam's password", "reviewer"))
    assert sam.get("/api/me").json()["role"] == "reviewer"
    assert 'data-email="sam@example.com"' in owner.get("/settings").text

    again = owner.post("/settings/users", data={**new, "csrf_token": csrf})
    assert again.status_code == 409
    assert "sam@example.com already has an account." in again.text
    assert 'value="Sam@Example.com"' in again.text  # the form keeps what was typed
    short = owner.post(
        "/settings/users",
        headers=htmx(csrf),
        data={**new, "email": "kim@example.com", "password": "short"},
    )
    assert short.status_code == 200  # from htmx: the section with the error, swapped in
    assert short.text.strip().startswith("{#") is False
    assert 'id="users"' in short.text
    assert "Must be at least 8 characters." in short.text
    assert 'value="kim@example.com"' in short.text
    assert [u["email"] for u in server.ops.accounts.list_users()].count("kim@example.com") == 0


def test_an_owner_disables_a_person_whose_session_ends_at_once(site: Site, signed: SignIn) -> None:
    server = site()
    viewer, _ = signed(server.url, VIEWER)
    owner, csrf = signed(server.url, OWNER)
    page = owner.get("/settings").text
    own_row = re.search(rf'data-email="{OWNER.email}".*?</tr>', page, re.S)
    assert own_row
    assert "Disable</button>" not in own_row.group(0)  # not yourself

    done = owner.post("/settings/users/disable", headers=htmx(csrf), data={"email": VIEWER.email})

    assert f"{VIEWER.email} is disabled and signed out everywhere." in done.text
    assert re.search(rf'data-email="{VIEWER.email}".*?adm-disabled', done.text, re.S)
    assert viewer.get("/api/me").status_code == 401
    only = owner.post("/settings/users/disable", data={"email": OWNER.email, "csrf_token": csrf})
    assert only.status_code == 409
    assert "is the only active owner; create another owner first." in only.text


def test_an_api_token_is_shown_once_works_and_can_be_revoked(site: Site, signed: SignIn) -> None:
    server = site()
    owner, csrf = signed(server.url, OWNER)

    made = owner.post(
        "/settings/tokens", data={"name": "zapier", "scope": "review", "csrf_token": csrf}
    )

    assert made.status_code == 200
    found = re.search(r'data-testid="new-token">(olt_[\w-]+)<', made.text)
    assert found
    token = found.group(1)
    assert "Copy this token now: it is shown only once." in made.text
    assert token not in owner.get("/settings").text
    bearer = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{server.url}/api/me", headers=bearer, timeout=10).json()
    assert (me["name"], me["scope"]) == ("zapier", "review")
    [row] = server.ops.accounts.list_tokens()

    revoked = owner.post(f"/settings/tokens/{row['id']}/revoke", headers=htmx(csrf))

    assert "The token zapier is revoked" in revoked.text
    assert 'id="tokens"' in revoked.text
    assert httpx.get(f"{server.url}/api/me", headers=bearer, timeout=10).status_code == 401
    again = owner.post(f"/settings/tokens/{row['id']}/revoke", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert "is already revoked." in again.text
    nameless = owner.post(
        "/settings/tokens", data={"name": " ", "scope": "read", "csrf_token": csrf}
    )
    assert nameless.status_code == 422
    assert "Give the token a name of 1 to 100 characters." in nameless.text
