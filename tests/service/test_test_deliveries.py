"""Test deliveries, on SQLite and PostgreSQL: a sample signed the way each source verifies goes
through the webhook path (signature, mapping, contracts, quarantine) and comes back accepted
with its events; another secret is refused with the verifier's reason and kept in quarantine;
the signing agrees with the senders' own libraries; the packaged examples and the secrets
OpsLoop generates are ones the registry accepts."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
import stripe
from standardwebhooks import Webhook

from opsloop.core.errors import InvalidInput
from opsloop.perception.signatures import sign_standard, sign_stripe
from opsloop.service import OpsLoop
from opsloop.store import audit as audit_store
from tests.conftest import OpsFactory

STANDARD_SECRET = "whsec_" + base64.b64encode(b"test-delivery-secret-0123456789").decode()
BASE = "https://ops.example.com"

# name: (definition, secret, the event type a sample makes)
SOURCES = {
    "own-code": ("verify: hmac", "s3cret-own", "test.delivery"),
    "typeform": (
        "verify: hmac\nsigned: body\nsignature_encoding: base64\nsignature_header: Typeform-Signature",
        "s3cret-typeform",
        "test.delivery",
    ),
    "helpdesk": (
        "verify: hmac\nsignature_header: X-Signature\ntimestamp_header: X-Signature-Timestamp\n"
        "mapping: helpdesk",
        "s3cret-helpdesk",
        "ticket.created",
    ),
    "stripe": ("verify: stripe\nmapping: stripe", "whsec_stripe_test_1", "order.completed"),
    "billing": ("verify: standard", STANDARD_SECRET, "test.delivery"),
    "shopify": ("verify: shopify\nmapping: shopify", "shpss_test_1", "order.created"),
    "calendly": ("verify: calendly\nmapping: calendly", "calendly-key-1", "meeting.booked"),
    "hubspot": ("verify: hubspot\nmapping: hubspot", "hubspot-client-secret", "contact.created"),
}


def add(ops: OpsLoop, name: str) -> None:
    definition, secret, _ = SOURCES[name]
    text = f"name: {name}\nkind: webhook\n{definition}\n"
    ops.ingest.add_source(text, f"{name}.yaml", secret=secret, actor="test")


@pytest.mark.parametrize("name", list(SOURCES))
def test_a_test_delivery_is_signed_as_the_source_verifies_and_becomes_events(
    make_ops: OpsFactory, database_url: str, name: str
) -> None:
    ops = make_ops(database_url)
    add(ops, name)

    done = ops.ingest.test_delivery(name, base_url=BASE, actor="owner@example.com")

    assert (done.outcome, done.status_code, done.reason) == ("accepted", 201, None)
    [event] = done.events
    assert event.type == SOURCES[name][2]
    stored = ops.ingest.get_event(event.id)
    assert (stored["source"], stored["type"], stored["subject"]) == (
        name,
        event.type,
        event.subject,
    )
    assert SOURCES[name][1] not in json.dumps(done.headers)  # signed with it, never shown

    again = ops.ingest.test_delivery(name, base_url=BASE, actor="owner@example.com")
    assert again.outcome == "accepted", "each test has ids of its own: not a repeat"
    assert again.events[0].id != event.id


def test_the_same_body_twice_is_stored_once(make_ops: OpsFactory, database_url: str) -> None:
    ops = make_ops(database_url)
    add(ops, "stripe")
    body = ops.ingest.sample_delivery("stripe")

    first = ops.ingest.test_delivery("stripe", base_url=BASE, actor="o", body=body)
    second = ops.ingest.test_delivery("stripe", base_url=BASE, actor="o", body=body)

    assert (first.outcome, second.outcome) == ("accepted", "duplicate")
    assert second.events[0].id == first.events[0].id


def test_a_delivery_signed_with_another_secret_is_refused_with_the_reason_and_kept(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    add(ops, "own-code")
    add(ops, "stripe")

    hmac_refused = ops.ingest.test_delivery("own-code", base_url=BASE, actor="o", secret="old")
    stripe_refused = ops.ingest.test_delivery("stripe", base_url=BASE, actor="o", secret="whsec_x")

    assert (hmac_refused.outcome, hmac_refused.status_code) == ("refused", 401)
    assert hmac_refused.reason == (
        "signature in X-OpsLoop-Signature does not match X-OpsLoop-Timestamp and the body "
        "(sign the timestamp, a dot, then the exact body bytes)"
    )
    assert stripe_refused.reason == (
        "no signature in Stripe-Signature matches the body under this source's secret"
    )
    held = ops.ingest.quarantine_item(hmac_refused.quarantine_id or 0)
    assert held["source"] == "own-code"
    assert held["reason"] == hmac_refused.reason
    assert ops.ingest.source_activity() == []  # nothing was stored


def test_unsigned_disabled_and_unmapped_deliveries_say_why(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    ops.ingest.add_source("name: closed\nkind: webhook\n", "c.yaml", actor="t")
    ops.ingest.add_source("name: open\nkind: webhook\nallow_unsigned: true\n", "o.yaml", actor="t")
    ops.ingest.add_source(
        "name: forms\nkind: webhook\nallow_unsigned: true\n"
        "mapping:\n  - when: \"kind == 'form'\"\n    type: form.submitted\n"
        "    subject: \"'lead:' + email\"\n",
        "f.yaml",
        actor="t",
    )
    add(ops, "own-code")
    ops.ingest.set_source_enabled("own-code", False, actor="t")

    closed = ops.ingest.test_delivery("closed", base_url=BASE, actor="o")
    assert (closed.outcome, closed.status_code) == ("refused", 401)
    assert "unsigned" in (closed.reason or "")
    assert ops.ingest.test_delivery("open", base_url=BASE, actor="o").outcome == "accepted"
    ignored = ops.ingest.test_delivery("forms", base_url=BASE, actor="o")
    assert (ignored.outcome, ignored.status_code) == ("ignored", 200)
    assert (ignored.reason or "").startswith("no rule matches")
    disabled = ops.ingest.test_delivery("own-code", base_url=BASE, actor="o")
    assert (disabled.outcome, disabled.status_code, disabled.reason) == (
        "refused",
        404,
        "source 'own-code' is disabled",
    )


def test_a_test_delivery_is_in_the_audit_trail(make_ops: OpsFactory, database_url: str) -> None:
    ops = make_ops(database_url)
    add(ops, "shopify")
    done = ops.ingest.test_delivery("shopify", base_url=BASE, actor="owner@example.com")
    with ops.db.read() as conn:
        trail = audit_store.trail(conn, "source", "shopify")
    assert [row["verb"] for row in trail] == ["source.added", "source.test_delivery"]
    row = trail[-1]
    assert row["actor"] == "owner@example.com"
    assert row["detail"]["outcome"] == "accepted"
    assert row["detail"]["events"] == [done.events[0].id]


def test_only_webhook_sources_take_test_deliveries(make_ops: OpsFactory, sqlite_url: str) -> None:
    ops = make_ops(sqlite_url)
    ops.ingest.add_source("name: website\nkind: segment\n", "w.yaml", secret="wk_1", actor="t")
    with pytest.raises(InvalidInput, match="test deliveries are for webhooks"):
        ops.ingest.test_delivery("website", base_url=BASE, actor="o")


def test_the_signing_agrees_with_the_senders_own_libraries() -> None:
    body = b'{"id": "evt_1", "type": "charge.refunded"}'
    now = int(datetime.now(UTC).timestamp())
    header = sign_stripe(body, "whsec_lib_check", now)
    assert stripe.WebhookSignature.verify_header(body.decode(), header, "whsec_lib_check", 300)

    headers = sign_standard(body, STANDARD_SECRET, "msg_1", now)
    assert Webhook(STANDARD_SECRET).verify(body, headers) == json.loads(body)


def test_the_examples_ship_and_generated_secrets_are_accepted(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    examples = {e.name: e for e in ops.ingest.source_examples()}
    assert {"stripe", "shopify", "hubspot", "calendly", "helpdesk", "website"} <= set(examples)
    assert {e.spec.kind for e in examples.values()} == {
        "webhook",
        "segment",
        "http",
        "folder",
        "sql",
        "imap",
    }
    assert "opsloop source add" not in examples["stripe"].notes
    assert examples["stripe"].notes.startswith("Payments from Stripe")

    for verify in ("hmac", "standard"):
        secret = ops.ingest.generated_source_secret("webhook", verify)
        assert secret is not None
        assert len(secret) >= 32
        text = f"name: gen-{verify}\nkind: webhook\nverify: {verify}\n"
        ops.ingest.add_source(text, "g.yaml", secret=secret, actor="t")
        done = ops.ingest.test_delivery(f"gen-{verify}", base_url=BASE, actor="o")
        assert done.outcome == "accepted", done.reason
    assert (ops.ingest.generated_source_secret("segment", "none") or "").startswith("wk_")
    for chosen_by_the_sender in ("stripe", "shopify", "hubspot", "calendly"):
        assert ops.ingest.generated_source_secret("webhook", chosen_by_the_sender) is None
