"""Declaring sources: from YAML with errors at their line, secrets kept apart and never shown,
replace keeps what matters, remove keeps the events; the CLI and the API on the same path."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.errors import Conflict, InvalidInput, NotFound, PlaybookInvalid
from tests.conftest import OpsFactory, Serve
from tests.people import add_people

runner = CliRunner()

STRIPE = """\
name: stripe
kind: webhook
verify: stripe
mapping: stripe
timezone: Europe/Lisbon
"""
SHOP_API = """\
name: shop-api
kind: http
interval: 5m
mapping:
  type: order.updated
  subject: "'order:' + string(id)"
http:
  url: http://127.0.0.1:9/orders
  pagination: {type: page, size_param: per_page}
"""


def test_a_source_is_stored_with_its_secret_kept_apart(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    added = ops.ingest.add_source(STRIPE, "stripe.yaml", secret="whsec_abc", actor="test")
    assert added.created

    source = ops.ingest.get_source("stripe")
    assert source.secret == "whsec_abc"
    shown = source.public()
    assert shown["has_secret"] is True
    assert "whsec_abc" not in repr(shown)
    assert shown["spec"]["verify"] == "stripe"
    assert source.next_sync_at is None  # pushed: never synced

    ops.ingest.add_source(SHOP_API, "shop.yaml", actor="test")
    pulled = ops.ingest.get_source("shop-api")
    assert pulled.spec.interval.total_seconds() == 300
    assert pulled.next_sync_at is not None  # due at once
    assert [s.name for s in ops.ingest.list_sources()] == ["shop-api", "stripe"]


def test_adding_twice_needs_replace_which_keeps_secret_and_checkpoint(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    ops.ingest.add_source(STRIPE, "stripe.yaml", secret="whsec_abc", actor="test")
    with pytest.raises(Conflict, match="use --replace"):
        ops.ingest.add_source(STRIPE, "stripe.yaml", secret="whsec_abc", actor="test")

    changed = STRIPE.replace("Europe/Lisbon", "America/New_York")
    replaced = ops.ingest.add_source(changed, "stripe.yaml", actor="test", replace=True)
    assert not replaced.created
    source = ops.ingest.get_source("stripe")
    assert source.spec.timezone == "America/New_York"
    assert source.secret == "whsec_abc"


def test_a_verifying_source_without_a_secret_is_refused(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    with pytest.raises(InvalidInput, match="needs its signing secret"):
        ops.ingest.add_source(STRIPE, "stripe.yaml", actor="test")
    with pytest.raises(InvalidInput, match="OPSLOOP_TEST_UNSET is not set"):
        ops.ingest.add_source(STRIPE + "secret_env: OPSLOOP_TEST_UNSET\n", "s.yaml", actor="test")
    assert ops.ingest.list_sources() == []


def test_mistakes_are_named_with_their_line(make_ops: OpsFactory, sqlite_url: str) -> None:
    ops = make_ops(sqlite_url)
    broken = SHOP_API.replace("pagination:", "paginaton:").replace("5m", "30s")
    with pytest.raises(PlaybookInvalid) as caught:
        ops.ingest.add_source(broken, "shop.yaml", actor="test")
    text = str(caught.value)
    assert "shop.yaml:3: interval: the shortest interval is 1m" in text
    assert "shop.yaml:9: http.paginaton: unknown field; did you mean 'pagination'?" in text

    with pytest.raises(PlaybookInvalid, match="a http source needs a `http:` block"):
        ops.ingest.add_source("name: x\nkind: http\n", "x.yaml", actor="test")
    with pytest.raises(PlaybookInvalid, match="'api' is used by OpsLoop itself"):
        ops.ingest.add_source("name: api\nkind: webhook\n", "x.yaml", actor="test")
    with pytest.raises(PlaybookInvalid, match="not a time zone"):
        ops.ingest.add_source("name: x\nkind: webhook\ntimezone: Lisbon\n", "x.yaml", actor="test")


def test_remove_forgets_the_definition_and_disable_keeps_it(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    ops.ingest.add_source(SHOP_API, "shop.yaml", actor="test")
    ops.ingest.set_source_enabled("shop-api", False, actor="test")
    disabled = ops.ingest.get_source("shop-api")
    assert not disabled.enabled
    assert disabled.next_sync_at is None
    ops.ingest.set_source_enabled("shop-api", True, actor="test")
    assert ops.ingest.get_source("shop-api").next_sync_at is not None

    ops.ingest.remove_source("shop-api", actor="test")
    with pytest.raises(NotFound, match="no source 'shop-api'"):
        ops.ingest.get_source("shop-api")


@pytest.fixture
def cli_database(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("OPSLOOP_DATABASE_URL", database_url)
    # Its own data folder, so the key that seals secrets is given (as on a second machine).
    monkeypatch.setenv("OPSLOOP_ENCRYPTION_KEY", "one key for the test and its commands")
    monkeypatch.setenv("COLUMNS", "200")
    return database_url


def test_the_cli_adds_lists_and_never_prints_the_secret(
    make_ops: OpsFactory, cli_database: str, tmp_path: Path
) -> None:
    ops = make_ops(cli_database)
    (tmp_path / "stripe.yaml").write_text(STRIPE)
    (tmp_path / "stripe.secret").write_text("whsec_topsecret\n")

    done = runner.invoke(
        app,
        [
            "source",
            "add",
            str(tmp_path / "stripe.yaml"),
            "--secret-file",
            str(tmp_path / "stripe.secret"),
        ],
    )
    assert done.exit_code == 0, done.output
    assert "Added source stripe (webhook)." in done.output
    assert "POST /hooks/stripe" in done.output
    assert ops.ingest.get_source("stripe").secret == "whsec_topsecret"

    listed = runner.invoke(app, ["source", "list"])
    assert listed.exit_code == 0
    assert "stripe" in listed.output
    assert "set" in listed.output
    as_json = runner.invoke(app, ["source", "list", "--json"])
    assert '"has_secret": true' in as_json.output
    assert "topsecret" not in listed.output + as_json.output

    again = runner.invoke(app, ["source", "add", str(tmp_path / "stripe.yaml")])
    assert again.exit_code == 1
    assert "use --replace" in again.output.replace("\n", " ")


def test_the_api_puts_lists_and_deletes_sources(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve
) -> None:
    ops = make_ops(sqlite_url, use_clock=False)
    add_people(ops)
    site = serve(ops)
    admin = ops.accounts.create_token("admin", "admin", actor="tests").token
    reader = ops.accounts.create_token("reader", "read", actor="tests").token
    yaml_body = {"content-type": "application/yaml"}
    with site.client() as client:
        as_admin = {"Authorization": f"Bearer {admin}", **yaml_body}
        as_reader = {"Authorization": f"Bearer {reader}", **yaml_body}
        secret = STRIPE + "secret: whsec_inline\n"

        refused = client.put("/api/sources/stripe", content=secret, headers=as_reader)
        assert refused.status_code == 403

        made = client.put("/api/sources/stripe", content=secret, headers=as_admin)
        assert made.status_code == 201, made.text
        assert made.json()["has_secret"] is True
        assert "whsec_inline" not in made.text
        again = client.put("/api/sources/stripe", content=STRIPE, headers=as_admin)
        assert again.status_code == 200
        assert ops.ingest.get_source("stripe").secret == "whsec_inline"

        wrong = client.put("/api/sources/other", content=STRIPE, headers=as_admin)
        assert wrong.status_code == 422
        assert "the address says 'other'" in wrong.text

        bad = client.put(
            "/api/sources/stripe", content=STRIPE.replace("verify", "verfy"), headers=as_admin
        )
        assert bad.status_code == 422
        assert "stripe.yaml:3" in bad.text

        listed = client.get("/api/sources", headers=as_reader)
        assert [s["name"] for s in listed.json()] == ["stripe"]
        assert client.get("/api/sources/stripe/quality", headers=as_reader).json()["received"] == 0

        assert client.delete("/api/sources/stripe", headers=as_admin).json()["removed"] is True
        assert client.get("/api/sources/stripe", headers=as_reader).status_code == 404


def test_a_broken_mapping_or_secret_is_refused_when_the_source_is_added(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    broken = "name: forms\nkind: webhook\nmapping:\n  type: form.submitted\n  subjct: email\n"
    with pytest.raises(InvalidInput, match="subjct"):
        ops.ingest.add_source(broken, "forms.yaml", actor="test")
    with pytest.raises(InvalidInput, match=r"did you mean 'stripe'"):
        ops.ingest.add_source("name: s\nkind: webhook\nmapping: strpe\n", "s.yaml", actor="test")
    standard = "name: billing\nkind: webhook\nverify: standard\n"
    with pytest.raises(InvalidInput, match="`whsec_` followed by base64"):
        ops.ingest.add_source(standard, "billing.yaml", secret="not base64!", actor="test")
    assert ops.ingest.list_sources() == []


def test_a_pulled_source_that_needs_a_token_or_password_says_so_when_added(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    with_token = SHOP_API.replace("  pagination:", "  auth: {type: bearer}\n  pagination:")
    with pytest.raises(InvalidInput, match="this http source needs its API token"):
        ops.ingest.add_source(with_token, "shop.yaml", actor="test")
    mailbox = "name: support\nkind: imap\nimap: {host: 127.0.0.1, username: help}\n"
    with pytest.raises(InvalidInput, match="this imap source needs its mailbox password"):
        ops.ingest.add_source(mailbox, "support.yaml", actor="test")
    ops.ingest.add_source(with_token, "shop.yaml", secret="tok_1", actor="test")
    assert ops.ingest.get_source("shop-api").has_secret
