"""Declared sources on the Sources page and each source's own page, over real HTTP: where it
sends, its last week's quality with the top violations, never its secret."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import stripe

from opsloop.service import OpsLoop
from tests.conftest import LiveServer, OpsFactory, Serve
from tests.people import OWNER, VIEWER, SignIn, add_people

SECRET = "whsec_page_test_secret"


def _order(event_id: str, email: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": f"cs_{event_id}",
                    "amount_total": 1500,
                    "currency": "eur",
                    "customer_details": {"email": email},
                }
            },
        }
    ).encode()


def _deliver(server: LiveServer, body: bytes) -> httpx.Response:
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), SECRET, timestamp=int(time.time())
    )
    return httpx.post(
        f"{server.url}/hooks/stripe", content=body, headers={"Stripe-Signature": header}
    )


def test_a_declared_source_is_listed_and_has_a_page_with_its_quality(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, signed: SignIn
) -> None:
    ops: OpsLoop = make_ops(sqlite_url, use_clock=False)
    add_people(ops)
    server = serve(ops)
    viewer, _ = signed(server.url, VIEWER)
    empty = viewer.get("/sources").text
    assert "No sources declared yet." in empty

    ops.ingest.add_source(
        "name: stripe\nkind: webhook\nverify: stripe\nmapping: stripe\n"
        "description: Payments from the online shop\n",
        "stripe.yaml",
        secret=SECRET,
        actor="test",
    )
    assert _deliver(server, _order("evt_a", "ana@example.com")).status_code == 201
    assert _deliver(server, _order("evt_b", "not an email")).status_code == 422

    listing = viewer.get("/sources").text
    assert 'href="/sources/stripe"' in listing
    assert f"{server.url}/hooks/stripe" in listing
    assert "2 received, 1 stored" in listing
    assert "50.0%" in listing

    page = viewer.get("/sources/stripe")
    assert page.status_code == 200
    text = page.text
    assert "Payments from the online shop" in text
    assert "Stripe-Signature" in text
    assert "Top violations" in text
    assert "<code>payload.email</code>" in text
    assert SECRET not in text
    assert "Secret: set" in text
    assert "Sync now" not in text  # pushed, and a viewer

    missing = viewer.get("/sources/nowhere")
    assert missing.status_code == 404
    assert "There is no source named “nowhere”." in missing.text


def test_an_open_hook_and_a_lost_secret_are_flagged(
    make_ops: OpsFactory,
    sqlite_url: str,
    serve: Serve,
    signed: SignIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ops: OpsLoop = make_ops(sqlite_url, use_clock=False)
    add_people(ops)
    monkeypatch.setenv("OPSLOOP_TEST_FORMS_SECRET", "s3cret")
    ops.ingest.add_source(
        "name: forms\nkind: webhook\nverify: hmac\nsecret_env: OPSLOOP_TEST_FORMS_SECRET\n",
        "forms.yaml",
        actor="test",
    )
    ops.ingest.add_source("name: closed\nkind: webhook\n", "closed.yaml", actor="test")
    ops.ingest.add_source(
        "name: open\nkind: webhook\nallow_unsigned: true\n", "open.yaml", actor="test"
    )
    server = serve(ops)
    owner, _ = signed(server.url, OWNER)
    warning = "ccepts unsigned deliveries: anyone who knows the URL can send events"
    page = owner.get("/sources/open").text
    assert f"A{warning}. They may not change the email, phone a trusted source set." in page
    assert f"a{warning}</span>" in owner.get("/sources").text
    assert "Refuses every delivery (401)" in owner.get("/sources/closed").text
    assert warning not in owner.get("/sources/closed").text
    assert "from <code>OPSLOOP_TEST_FORMS_SECRET</code>" in owner.get("/sources/forms").text

    # The variable is gone after a restart: deliveries are refused and the pages say why.
    monkeypatch.delenv("OPSLOOP_TEST_FORMS_SECRET")
    assert "secret missing" in owner.get("/sources").text
    refused = httpx.post(f"{server.url}/hooks/forms", content=b"{}")
    assert refused.status_code == 401
    assert "set OPSLOOP_TEST_FORMS_SECRET" in refused.json()["message"]


def test_an_owner_syncs_a_drop_folder_from_its_page_and_sees_the_run(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, signed: SignIn, tmp_path: Path
) -> None:
    ops: OpsLoop = make_ops(sqlite_url, use_clock=False)
    add_people(ops)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "orders.csv").write_text(
        "receipt,email,total\n1,ana@example.com,12.5\n2,bo@example.com,8\n3,broken\n"
    )
    ops.ingest.add_source(
        f"""\
name: pos
kind: folder
mapping:
  type: order.completed
  subject: "'customer:' + email"
folder:
  path: {drop}
  key: receipt
""",
        "pos.yaml",
        actor="test",
    )
    server = serve(ops)
    owner, csrf = signed(server.url, OWNER)
    viewer, _ = signed(server.url, VIEWER)
    assert "Sync now" not in viewer.get("/sources/pos").text
    before = owner.get("/sources/pos").text
    assert "No runs yet." in before

    done = owner.post("/sources/pos/sync", data={"csrf_token": csrf})
    assert done.status_code == 200
    assert "3 rows in, 2 stored." in done.text
    runs = done.text.split('data-testid="runs"')[1]
    assert "<td>sync</td><td>ok</td>" in runs
    assert len(ops.ingest.list_events(type="order.completed")) == 2
    assert (drop / "processed" / "orders.csv").exists()
    quality = done.text.split('data-testid="quality"')[1]
    assert "(unreadable line)" in quality
    assert "has 2 cells but the header has 3" in quality
    definition = done.text.split("<h2>Definition</h2>")[1]
    assert "key: receipt" in definition
    assert "tolerance" not in definition  # defaults are left out, as in the file

    refused = viewer.post("/sources/pos/sync", data={"csrf_token": csrf})
    assert refused.status_code == 403


def test_a_tracking_source_page_shows_the_snippet_to_paste(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, signed: SignIn
) -> None:
    ops: OpsLoop = make_ops(sqlite_url, use_clock=False)
    add_people(ops)
    ops.ingest.add_source(
        "name: website\nkind: segment\n", "site.yaml", secret="wk_page_1", actor="t"
    )
    server = serve(ops)
    viewer, _ = signed(server.url, VIEWER)
    page = viewer.get("/sources/website").text
    assert f'src="{server.url}/t.js"' in page.replace("&#34;", '"').replace("&quot;", '"')
    assert "WRITE_KEY" in page
    assert "wk_page_1" not in page
