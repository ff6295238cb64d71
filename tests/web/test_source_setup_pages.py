"""Adding and editing sources in the browser, on SQLite and PostgreSQL, signed in through the
real /login form: every kind added with its form and stored as `opsloop source add` stores a
file; errors beside their field at 422; a stored definition fills its form and saves back
unchanged; the secret is write-only, kept when left empty and shown once after it is set;
test deliveries from a source's page; only owners."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from opsloop.core.sources import parse_source
from opsloop.service import OpsLoop
from opsloop.store import audit as audit_store
from tests.conftest import OpsFactory, Serve
from tests.people import OWNER, REVIEWER, VIEWER, SignIn, add_people
from tests.web.test_playbook_pages import Browse, browse, text_of

STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def site(make_ops: OpsFactory, database_url: str) -> OpsLoop:
    ops = make_ops(database_url)
    add_people(ops)
    return ops


__all__ = ["browse"]  # fixtures used here


class FormReader(HTMLParser):
    """The values a browser would post for the source form on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.inside = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form" and a.get("id") == "source-form":
            self.inside = True
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.values[name] = "on"
            elif a.get("type") != "password":
                self.values[name] = a.get("value", "")
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data


def form_values(page: str) -> dict[str, str]:
    reader = FormReader()
    reader.feed(page)
    values = reader.values
    values.pop("csrf_token", None)
    return values


def beside(page: str, slot: str) -> str:
    """The text shown in the form beside the field (or box) of `slot`."""
    if slot == "advanced":
        found = re.search(r'data-field="advanced">(.*?)</fieldset>', page, re.S)
    else:
        found = re.search(rf'data-field="{re.escape(slot)}">(.*?)</div>', page, re.S)
    assert found, f"no field {slot} on the page"
    errors = re.findall(r'class="field-error"[^>]*>(.*?)</p>', found.group(1), re.S)
    return " ".join(html.unescape(e) for e in errors)


def revealed(page: str) -> str | None:
    found = re.search(r'data-testid="secret-value">([^<]+)<', page)
    return html.unescape(found.group(1)) if found else None


def command(page: str) -> str:
    found = re.search(r'data-testid="delivery-command"><code>(.*?)</code>', page, re.S)
    assert found, "no command on the page"
    return html.unescape(found.group(1))


def verbs(ops: OpsLoop, name: str) -> list[tuple[str, str]]:
    with ops.db.read() as conn:
        return [(e["verb"], e["actor"]) for e in audit_store.trail(conn, "source", name)]


# --- choosing and adding -----------------------------------------------------------------------

# kind: (the form as posted, the YAML a person would write for it, the secret)
KINDS: dict[str, tuple[dict[str, str], str, str | None]] = {
    "webhook": (
        {"name": "forms", "verify": "hmac", "signed": "timestamp", "tolerance": "10m",
         "signature_encoding": "hex", "signature_header": "X-Form-Signature", "enabled": "on",
         "secret": "form-secret-1", "region": "pt"},
        "name: forms\nkind: webhook\nverify: hmac\ntolerance: 10m\n"
        "signature_header: X-Form-Signature\nregion: PT\n",
        "form-secret-1",
    ),
    "segment": (
        {"name": "website", "enabled": "on", "segment.subject_kind": "customer",
         "secret": "wk_site_1"},
        "name: website\nkind: segment\nsegment: {subject_kind: customer}\n",
        "wk_site_1",
    ),
    "http": (
        {"name": "shop-api", "enabled": "on", "http.url": "https://shop.example.com/api/orders",
         "http.auth.type": "bearer", "secret": "tok_123", "http.items": "data",
         "http.key": "id", "http.pagination.type": "page",
         "http.pagination.size_param": "per_page", "http.pagination.size": "50",
         "http.incremental.field": "updated_at", "http.incremental.param": "updated_since",
         "interval": "5m", "mapping": "_rules",
         "advanced": "http:\n  headers: {Accept: application/json}\nmapping:\n"
         "  type: order.updated\n  subject: \"'order:' + string(id)\"\n"},
        "name: shop-api\nkind: http\ninterval: 5m\nmapping:\n  type: order.updated\n"
        "  subject: \"'order:' + string(id)\"\nhttp:\n  url: https://shop.example.com/api/orders\n"
        "  headers: {Accept: application/json}\n  auth: {type: bearer}\n  items: data\n"
        "  pagination: {type: page, size_param: per_page, size: 50}\n"
        "  incremental: {field: updated_at, param: updated_since}\n",
        "tok_123",
    ),
    "folder": (
        {"name": "till", "enabled": "on", "folder.path": "/srv/drop/till",
         "folder.pattern": "*.csv", "folder.delimiter": ";", "folder.key": "receipt",
         "interval": "15m", "timezone": "Europe/Lisbon"},
        "name: till\nkind: folder\ninterval: 15m\ntimezone: Europe/Lisbon\n"
        "folder: {path: /srv/drop/till, pattern: '*.csv', delimiter: ';', key: receipt}\n",
        None,
    ),
    "sql": (
        {"name": "erp", "enabled": "on",
         "sql.url": "postgresql+psycopg://reader@erp.internal/erp",
         "sql.query": "SELECT * FROM orders WHERE updated_at >= :cursor ORDER BY updated_at",
         "sql.cursor": "updated_at", "sql.cursor_start": "1970-01-01", "sql.key": "id",
         "secret": "db-password"},
        "name: erp\nkind: sql\nsql:\n  url: postgresql+psycopg://reader@erp.internal/erp\n"
        "  query: SELECT * FROM orders WHERE updated_at >= :cursor ORDER BY updated_at\n"
        "  cursor: updated_at\n  cursor_start: '1970-01-01'\n",
        "db-password",
    ),
    "imap": (
        {"name": "support", "enabled": "on", "imap.host": "imap.example.com",
         "imap.port": "993", "imap.security": "ssl", "imap.username": "support@example.com",
         "imap.mailbox": "INBOX", "interval": "2m", "secret": "mail-password"},
        "name: support\nkind: imap\ninterval: 2m\n"
        "imap: {host: imap.example.com, port: 993, username: support@example.com}\n",
        "mail-password",
    ),
}  # fmt: skip


def test_owners_choose_a_kind_or_an_example_and_others_are_refused(
    site: OpsLoop, browse: Browse
) -> None:
    owner = browse(site, OWNER)
    listing = owner.get("/sources")
    assert 'href="/sources/_new"' in listing.text
    page = owner.get("/sources/_new")
    assert page.status_code == 200
    assert page.text.count('data-testid="kind-card"') == 6
    words = text_of(page.text)
    assert "A tool posts to OpsLoop when something happens" in words
    for example in (
        "stripe",
        "shopify",
        "hubspot",
        "calendly",
        "helpdesk",
        "website",
        "shop-api",
        "till-exports",
        "erp-orders",
        "support-inbox",
    ):
        assert f'data-testid="example-{example}"' in page.text

    site.ingest.add_source("name: stripe\nkind: webhook\n", "s.yaml", actor="t")
    for person in (REVIEWER, VIEWER):
        other = browse(site, person)
        assert "/sources/_new" not in other.get("/sources").text
        assert 'data-testid="edit-source"' not in other.get("/sources/stripe").text
        for method, url in (
            ("GET", "/sources/_new"),
            ("GET", "/sources/_new/webhook"),
            ("POST", "/sources/_new/webhook"),
            ("GET", "/sources/stripe/edit"),
            ("POST", "/sources/stripe/edit"),
            ("POST", "/sources/stripe/test"),
        ):
            if method == "GET":
                answer = other.get(url)
            else:
                answer = other.post(url, {"name": "sneaky", "verify": "none"})
            assert answer.status_code == 403, (person.role, url)
            assert "needs the owner role" in answer.text
    assert [s.name for s in site.ingest.list_sources()] == ["stripe"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_is_added_with_its_form_as_the_command_line_adds_its_file(
    site: OpsLoop, browse: Browse, kind: str
) -> None:
    posted, written, secret = KINDS[kind]
    owner = browse(site, OWNER)
    form = owner.get(f"/sources/_new/{kind}")
    assert form.status_code == 200
    assert 'id="source-form"' in form.text

    answer = owner.post(f"/sources/_new/{kind}", posted)

    assert answer.status_code == 303, text_of(answer.text)
    name = posted["name"]
    assert answer.headers["location"].startswith(f"/sources/{name}?done=added")
    stored = site.ingest.get_source(name)
    expected, _ = parse_source(written)
    assert stored.spec.written() == expected.written()
    assert stored.secret == secret
    assert verbs(site, name) == [("source.added", OWNER.email)]
    page = owner.get(answer.headers["location"])
    assert "The source is added." in page.text
    assert revealed(page.text) == secret


def test_an_example_fills_the_form_and_is_added_as_its_file(site: OpsLoop, browse: Browse) -> None:
    owner = browse(site, OWNER)
    page = owner.get("/sources/_new/webhook?example=stripe")
    assert "Payments from Stripe: in the Dashboard" in text_of(page.text)
    values = form_values(page.text)
    assert (values["name"], values["verify"], values["mapping"]) == ("stripe", "stripe", "stripe")
    assert "generate_secret" not in values  # Stripe chooses its secret

    answer = owner.post("/sources/_new/webhook", {**values, "secret": "whsec_from_stripe"})

    assert answer.status_code == 303, text_of(answer.text)
    example = next(e for e in site.ingest.source_examples() if e.name == "stripe")
    assert site.ingest.get_source("stripe").spec == example.spec
    assert owner.get("/sources/_new/http?example=stripe").status_code == 404
    assert owner.get("/sources/_new/webhook?example=nowhere").status_code == 404
    assert owner.get("/sources/_new/ftp").status_code == 404


# --- errors ------------------------------------------------------------------------------------


def test_errors_are_shown_beside_their_field_and_nothing_is_stored(
    site: OpsLoop, browse: Browse
) -> None:
    owner = browse(site, OWNER)
    answer = owner.post(
        "/sources/_new/http",
        {
            "name": "Shop API",
            "http.url": "ftp://shop.example.com",
            "http.pagination.type": "cursor",
            "http.pagination.size": "lots",
            "secret": "typed-secret-xyz",
            "enabled": "on",
            "advanced": "params:\n  since: [",
        },
    )
    assert answer.status_code == 422
    page = answer.text
    assert "typed-secret-xyz" not in page  # a secret is never written back
    assert beside(page, "advanced").startswith("line 2: ")
    assert 'value="ftp://shop.example.com"' in page  # what was typed stays

    checked = owner.post(
        "/sources/_new/http",
        {**form_values(page), "advanced": "late_after: 1h\nhttp:\n  paginaton: {}\n"},
    )
    page = checked.text
    assert checked.status_code == 422
    assert beside(page, "name") == (
        "must be lowercase letters, digits, `_`, `-` and `.`, starting with a letter or digit, "
        "at most 100 characters"
    )
    assert beside(page, "http.url") == "'ftp://shop.example.com' is not an http:// or https:// URL"
    assert beside(page, "http.pagination.size") == (
        "Input should be a valid integer, unable to parse string as an integer"
    )
    assert beside(page, "advanced") == "http.paginaton: unknown field; did you mean 'pagination'?"

    # Once its fields are right, the block's own rule is checked and shown on the block.
    block = owner.post(
        "/sources/_new/http",
        {
            **form_values(page),
            "name": "shop-api",
            "http.url": "https://shop.example.com",
            "http.pagination.size": "50",
            "advanced": "",
        },
    ).text
    pages = block.split("<legend>Pages</legend>")[1].split("</fieldset>")[0]
    assert "cursor pagination needs `cursor_path`, e.g. meta.next_cursor" in html.unescape(pages)
    assert site.ingest.list_sources() == []


def test_secret_and_mapping_errors_are_beside_their_fields(site: OpsLoop, browse: Browse) -> None:
    owner = browse(site, OWNER)
    base = {"name": "stripe", "verify": "stripe", "enabled": "on", "mapping": "stripe"}
    missing = owner.post("/sources/_new/webhook", base)
    assert missing.status_code == 422
    assert beside(missing.text, "secret") == (
        "this webhook source needs its signing secret: enter it, or the environment variable "
        "that holds it"
    )
    generated = owner.post("/sources/_new/webhook", {**base, "generate_secret": "on"})
    assert beside(generated.text, "secret") == (
        "Stripe chooses this secret, so OpsLoop cannot make one: paste the one it shows you"
    )
    rules = owner.post(
        "/sources/_new/webhook",
        {**base, "verify": "hmac", "generate_secret": "on", "mapping": "_rules"},
    )
    assert beside(rules.text, "mapping") == (
        "write the rules under mapping: in the advanced YAML below"
    )
    bad_rule = owner.post(
        "/sources/_new/webhook",
        {
            **base,
            "verify": "hmac",
            "generate_secret": "on",
            "mapping": "_rules",
            "advanced": "mapping:\n  - type: order.paid\n",
        },
    )
    assert beside(bad_rule.text, "advanced").startswith("mapping[0]")
    assert "subject" in beside(bad_rule.text, "advanced")
    taken = owner.post("/sources/_new/webhook", {**base, "secret": "whsec_1"})
    assert taken.status_code == 303
    again = owner.post("/sources/_new/webhook", {**base, "secret": "whsec_2"})
    assert beside(again.text, "name") == (
        "a source named stripe exists already: edit it, or choose another name"
    )
    assert site.ingest.get_source("stripe").secret == "whsec_1"


def test_with_htmx_the_errors_replace_the_form_and_success_loads_the_page(
    site: OpsLoop, browse: Browse
) -> None:
    owner = browse(site, OWNER)
    wrong = owner.htmx("/sources/_new/webhook", {"name": "", "verify": "hmac"})
    assert wrong.status_code == 422
    assert wrong.text.lstrip().startswith('<form id="source-form"')
    assert "<html" not in wrong.text
    assert beside(wrong.text, "name") == "is required"

    done = owner.htmx(
        "/sources/_new/webhook",
        {"name": "backoffice", "verify": "standard", "generate_secret": "on", "enabled": "on"},
    )
    assert done.status_code == 200
    target = done.headers["hx-redirect"]
    assert target.startswith("/sources/backoffice?done=added&k=")
    secret = site.ingest.get_source("backoffice").secret or ""
    assert secret.startswith("whsec_")
    assert revealed(owner.get(target).text) == secret


# --- editing and the secret -------------------------------------------------------------------


def test_an_edit_keeps_the_secret_when_left_empty_and_shows_a_new_one_once(
    site: OpsLoop, browse: Browse
) -> None:
    site.ingest.add_source(
        "name: backoffice\nkind: webhook\nverify: hmac\n",
        "b.yaml",
        secret="first-secret-1",
        actor="cli",
    )
    owner = browse(site, OWNER)
    form = owner.get("/sources/backoffice/edit")
    assert form.status_code == 200
    assert "first-secret-1" not in form.text
    assert "A secret is set; leave empty to keep it." in text_of(form.text)
    values = form_values(form.text)
    assert "secret" not in values
    assert "generate_secret" not in values

    saved = owner.post("/sources/backoffice/edit", {**values, "tolerance": "2m"})

    assert saved.status_code == 303
    assert saved.headers["location"] == "/sources/backoffice?done=saved"
    source = site.ingest.get_source("backoffice")
    assert (source.secret, source.spec.tolerance.total_seconds()) == ("first-secret-1", 120)
    page = owner.get(saved.headers["location"]).text
    assert "Saved." in page
    assert revealed(page) is None
    assert "# Set SECRET to the signing secret of backoffice first." in command(page)

    replaced = owner.post("/sources/backoffice/edit", {**values, "secret": "second-secret-2"})
    target = replaced.headers["location"]
    assert source_secret(site, "backoffice") == "second-secret-2"
    first = owner.get(target).text
    assert revealed(first) == "second-secret-2"
    assert "it will not be shown again" in text_of(first)
    assert "SECRET=second-secret-2" in command(first)
    assert revealed(owner.get(target).text) is None, "a reload shows nothing"
    assert "second-secret-2" not in owner.get(target).text

    newer = owner.post("/sources/backoffice/edit", {**values, "generate_secret": "on"})
    generated = source_secret(site, "backoffice")
    assert generated not in ("second-secret-2", None)
    # The address alone (another owner's browser, a log) tells nothing.
    stranger = browse(site, OWNER)
    assert revealed(stranger.get(newer.headers["location"]).text) is None
    assert revealed(owner.get(newer.headers["location"]).text) == generated
    assert verbs(site, "backoffice") == [
        ("source.added", "cli"),
        ("source.replaced", OWNER.email),
        ("source.replaced", OWNER.email),
        ("source.replaced", OWNER.email),
    ]


def source_secret(ops: OpsLoop, name: str) -> str | None:
    return ops.ingest.get_source(name).secret


def test_every_example_saved_back_from_its_form_is_unchanged(
    site: OpsLoop, browse: Browse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_API_TOKEN", "tok_env")
    owner = browse(site, OWNER)
    for example in site.ingest.source_examples():
        needed = example.spec.needs_secret and not example.spec.secret_env
        secret = "s3cret" if needed else None
        site.ingest.add_source(example.text, example.name, secret=secret, actor="cli")
        form = owner.get(f"/sources/{example.name}/edit")
        assert form.status_code == 200, example.name
        saved = owner.post(f"/sources/{example.name}/edit", form_values(form.text))
        assert saved.status_code == 303, (example.name, text_of(saved.text))
        assert site.ingest.get_source(example.name).spec == example.spec, example.name


def test_a_source_name_that_cannot_be_is_answered_like_an_unknown_one(
    site: OpsLoop, browse: Browse
) -> None:
    owner = browse(site, OWNER)
    for url in ("/sources/Bad%20Name/edit", "/sources/nowhere/edit", f"/sources/{'x' * 300}/edit"):
        answer = owner.get(url)
        assert answer.status_code == 404, url
        assert "There is no source named" in answer.text
    assert owner.post("/sources/nowhere/edit", {"verify": "none"}).status_code == 404
    assert owner.post("/sources/nowhere/test", {}).status_code == 404
    assert site.ingest.list_sources() == []


# --- test deliveries from the page --------------------------------------------------------------

WEBHOOKS = {
    "hmac": ("verify: hmac", "hmac-secret-1", "test.delivery"),
    "stripe": ("verify: stripe\nmapping: stripe", "whsec_stripe_1", "order.completed"),
    "standard": ("verify: standard", STANDARD_SECRET, "test.delivery"),
    "shopify": ("verify: shopify\nmapping: shopify", "shopify-secret-1", "order.created"),
}


@pytest.mark.parametrize("verify", list(WEBHOOKS))
def test_a_test_delivery_from_the_page_is_accepted_with_its_event(
    site: OpsLoop, browse: Browse, verify: str
) -> None:
    definition, secret, event_type = WEBHOOKS[verify]
    site.ingest.add_source(
        f"name: hook\nkind: webhook\n{definition}\n", "h.yaml", secret=secret, actor="t"
    )
    owner = browse(site, OWNER)
    page = owner.get("/sources/hook").text
    assert 'href="#test"' in page
    sample = form_values_of_test(page)

    answer = owner.post("/sources/hook/test", sample)

    assert answer.status_code == 200
    assert 'data-outcome="accepted"' in answer.text
    [event] = site.ingest.list_events(type=event_type)
    assert f'href="/api/events/{event["id"]}"' in answer.text
    assert f"<code>{event['subject']}</code>" in answer.text
    fragment = owner.htmx("/sources/hook/test", sample)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'data-outcome="accepted"' in fragment.text, "a fresh sample: no repeat"


def form_values_of_test(page: str) -> dict[str, str]:
    section = page.split('data-testid="test-delivery"')[1]
    sample = re.search(r'name="sample" value="([^"]*)"', section)
    assert sample
    body = html.unescape(sample.group(1))
    return {"sample": body, "body": body, "secret": ""}


def test_after_the_secret_changes_the_old_one_is_refused_with_the_reason(
    site: OpsLoop, browse: Browse
) -> None:
    owner = browse(site, OWNER)
    created = owner.post(
        "/sources/_new/webhook",
        {"name": "backoffice", "verify": "hmac", "generate_secret": "on", "enabled": "on"},
    )
    old = revealed(owner.get(created.headers["location"]).text) or ""
    values = form_values(owner.get("/sources/backoffice/edit").text)
    owner.post("/sources/backoffice/edit", {**values, "generate_secret": "on"})

    refused = owner.post("/sources/backoffice/test", {"secret": old})

    assert 'data-outcome="refused"' in refused.text
    assert (
        text_of(refused.text).count(
            "Refused (401): signature in X-OpsLoop-Signature does not match X-OpsLoop-Timestamp "
            "and the body (sign the timestamp, a dot, then the exact body bytes)"
        )
        == 1
    )
    [item] = site.ingest.quarantine_items(status="held")
    assert f"#item-{item['id']}" in refused.text
    accepted = owner.post("/sources/backoffice/test", {})
    assert 'data-outcome="accepted"' in accepted.text


def test_pulled_and_tracking_sources_get_sync_or_their_call_instead(
    site: OpsLoop, browse: Browse
) -> None:
    site.ingest.add_source("name: website\nkind: segment\n", "w.yaml", secret="wk_1", actor="t")
    site.ingest.add_source(
        "name: till\nkind: folder\nfolder: {path: /nonexistent}\n", "t.yaml", actor="t"
    )
    owner = browse(site, OWNER)
    tracking = owner.get("/sources/website").text
    assert "Send a test delivery" not in tracking
    assert 'curl -sS http://testserver/v1/track \\\n  -u "$WRITE_KEY:"' in command(tracking)
    assert "wk_1" not in tracking
    pulled = owner.get("/sources/till").text
    assert 'data-testid="sync-now"' in pulled
    assert "Send a test delivery" not in pulled
    assert 'data-testid="delivery-command"' not in pulled
    assert owner.post("/sources/website/test", {}).status_code == 422


def test_the_form_is_rendered_for_every_kind_with_only_its_fields(
    site: OpsLoop, browse: Browse
) -> None:
    owner = browse(site, OWNER)
    fields: dict[str, Any] = {}
    for kind in KINDS:
        page = owner.get(f"/sources/_new/{kind}").text
        fields[kind] = set(form_values(page)) | set(re.findall(r'name="([\w.]+)"', page))
        assert 'type="password" id="f-secret"' in page or kind == "folder"
    assert {
        "verify",
        "signature_header",
        "signed",
        "tolerance",
        "allow_unsigned",
        "mapping",
        "timezone",
        "region",
        "dedupe_window",
        "public_url",
    } <= fields["webhook"]
    assert {
        "http.url",
        "http.auth.type",
        "http.auth.username",
        "http.auth.header",
        "http.items",
        "http.pagination.type",
        "http.incremental.field",
        "http.key",
        "interval",
    } <= fields["http"]
    assert {
        "folder.path",
        "folder.pattern",
        "folder.done",
        "folder.delimiter",
        "folder.key",
        "interval",
    } <= fields["folder"]
    assert {
        "sql.url",
        "sql.query",
        "sql.cursor",
        "sql.cursor_start",
        "sql.key",
        "interval",
    } <= fields["sql"]
    assert {
        "imap.host",
        "imap.port",
        "imap.security",
        "imap.username",
        "imap.mailbox",
        "interval",
    } <= fields["imap"]
    assert "verify" not in fields["http"]
    assert "http.url" not in fields["webhook"]
    webhook = owner.get("/sources/_new/webhook").text
    for mapping in site.ingest.builtin_mappings():
        assert f'<option value="{mapping}">' in webhook


# --- the command on the page, run against a live server -----------------------------------------

# name: (the form, the secret typed, or None to have one generated)
COMMANDS: dict[str, tuple[dict[str, str], str | None]] = {
    "own": ({"verify": "hmac"}, None),
    "typeform": (
        {"verify": "hmac", "signed": "body", "signature_encoding": "base64",
         "signature_header": "Typeform-Signature"},
        None,
    ),
    "billing": ({"verify": "standard"}, None),
    "stripe": ({"verify": "stripe", "mapping": "stripe"}, "whsec_live_stripe_1"),
    "shopify": ({"verify": "shopify", "mapping": "shopify"}, "shopify-live-1"),
    "calendly": ({"verify": "calendly", "mapping": "calendly"}, "calendly-live-1"),
    "hubspot": ({"verify": "hubspot", "mapping": "hubspot"}, "hubspot-live-1"),
    "helpdesk": (
        {"verify": "hmac", "mapping": "helpdesk", "signature_header": "X-Signature",
         "timestamp_header": "X-Signature-Timestamp"},
        "helpdesk-live-1",
    ),
    "open": ({"verify": "none", "allow_unsigned": "on"}, None),
}  # fmt: skip


def run_bash(script: str, tmp_path: Path, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, (script, done.stderr)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_the_command_on_a_source_page_delivers_to_a_live_server(
    make_ops: OpsFactory, database_url: str, serve: Serve, signed: SignIn, tmp_path: Path
) -> None:
    missing = [
        tool for tool in ("bash", "curl", "openssl", "base64", "od") if not shutil.which(tool)
    ]
    if missing:
        reason = f"the commands need {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI installs them")
        print(reason)  # said in the output as well as in the skip summary
        pytest.skip(reason)
    ops = make_ops(database_url, use_clock=False)  # `date +%s` is the wall clock
    add_people(ops)
    server = serve(ops)
    owner, csrf = signed(server.url, OWNER)
    secrets: dict[str, str] = {}
    for name, (fields, typed) in COMMANDS.items():
        form = {"csrf_token": csrf, "name": name, "enabled": "on", **fields}
        form.update({"secret": typed} if typed else {"generate_secret": "on"})
        created = owner.post("/sources/_new/webhook", data=form)
        assert created.status_code == 303, text_of(created.text)
        page = owner.get(created.headers["location"]).text
        script = command(page)
        assert f"curl -sS {server.url}/hooks/{name}" in script or "$URL" in script
        if name != "open":
            secrets[name] = revealed(page) or ""
            assert f"SECRET={secrets[name]}" in script.replace("'", "")
        # Right after it was set, the command holds the secret: it runs as shown.
        answer = run_bash(script, tmp_path)
        assert answer["status"] == "created", (name, answer)

    # Later the page shows $SECRET, to be set first; the same command works with it set (the
    # same sample again: its signature passes, and it is stored once).
    for name in ("own", "billing", "hubspot"):
        script = command(owner.get(f"/sources/{name}").text)
        assert f"# Set SECRET to the signing secret of {name} first." in script
        assert secrets[name] not in script
        answer = run_bash(script, tmp_path, SECRET=secrets[name])
        assert answer["status"] == "duplicate", (name, answer)
    activity = {a.source: a.events for a in ops.ingest.source_activity()}
    assert activity == dict.fromkeys(COMMANDS, 1)

    # Once the secret is replaced, a sender still holding the old one is refused, with why.
    values = form_values(owner.get("/sources/own/edit").text)
    owner.post("/sources/own/edit", data={**values, "csrf_token": csrf, "generate_secret": "on"})
    refused = run_bash(command(owner.get("/sources/own").text), tmp_path, SECRET=secrets["own"])
    assert refused["error"] == "unauthorized"
    assert "does not match X-OpsLoop-Timestamp and the body" in refused["message"]

    # A tracking source's call, with its write key.
    created = owner.post(
        "/sources/_new/segment",
        data={"csrf_token": csrf, "name": "website", "enabled": "on", "generate_secret": "on"},
    )
    page = owner.get(created.headers["location"]).text
    tracked = run_bash(command(page), tmp_path)
    assert tracked.get("success") is True, tracked
    assert {a.source: a.events for a in ops.ingest.source_activity()}["website"] == 1
