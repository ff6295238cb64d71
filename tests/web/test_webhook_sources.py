"""Signed webhooks from declared sources, over real HTTP: deliveries signed by Stripe's own
library and by the Standard Webhooks library are verified, mapped and stored once; tampered,
expired and unsigned ones are refused and kept in quarantine; a type nobody maps is
acknowledged as ignored; a fixed mapping lets a held delivery be replayed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import stripe
from standardwebhooks import Webhook

from opsloop.service import OpsLoop
from tests.conftest import LiveServer, OpsFactory, Serve

STRIPE_SECRET = "whsec_test_stripe_0123456789"
STANDARD_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def checkout(event_id: str, email: str = "Ana@Example.com", total: int = 4999) -> bytes:
    """A Stripe `checkout.session.completed` event as Stripe posts it (trimmed)."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": 1764000000,
            "type": "checkout.session.completed",
            "livemode": False,
            "data": {
                "object": {
                    "id": "cs_test_a1b2c3",
                    "object": "checkout.session",
                    "amount_total": total,
                    "currency": "eur",
                    "created": 1763999990,
                    "customer_details": {"email": email, "name": "Ana Lima"},
                    "payment_status": "paid",
                }
            },
        }
    ).encode()


def stripe_headers(body: bytes, *, at: float | None = None, secret: str = STRIPE_SECRET) -> dict:
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=int(at if at is not None else time.time())
    )
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def declare(ops: OpsLoop, name: str, *, verify: str, secret: str) -> None:
    """A webhook source using the built-in mapping of the same name."""
    definition = f"name: {name}\nkind: webhook\nverify: {verify}\nmapping: {name}\n"
    ops.ingest.add_source(definition, f"{name}.yaml", secret=secret, actor="test")


@pytest.fixture
def site(make_ops: OpsFactory, database_url: str, serve: Serve) -> tuple[OpsLoop, LiveServer]:
    ops = make_ops(database_url, use_clock=False)
    declare(ops, "stripe", verify="stripe", secret=STRIPE_SECRET)
    return ops, serve(ops)


def test_a_stripe_signed_checkout_becomes_one_order_however_often_it_is_delivered(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    body = checkout("evt_1")
    with httpx.Client(base_url=server.url) as client:
        first = client.post("/hooks/stripe", content=body, headers=stripe_headers(body))
        assert first.status_code == 201, first.text
        # Stripe retries until it sees a 2xx; a retry is signed anew, same event id.
        again = client.post("/hooks/stripe", content=body, headers=stripe_headers(body))
        assert again.status_code == 200
        assert again.json()["status"] == "duplicate"

    [order] = ops.ingest.list_events(type="order.completed")
    assert order["source"] == "stripe"
    assert order["subject"] == "customer:ana@example.com"
    assert order["payload"]["amount"] == 49.99
    assert order["payload"]["currency"] == "EUR"
    assert ops.ingest.source_quality("stripe").duplicates == 1


def test_tampered_expired_and_unsigned_deliveries_are_refused_and_kept(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    body = checkout("evt_2")
    signed = stripe_headers(body)
    tampered = body.replace(b"4999", b"1")
    stale = stripe_headers(body, at=time.time() - 3600)
    with httpx.Client(base_url=server.url) as client:
        answers = [
            client.post("/hooks/stripe", content=tampered, headers=signed),
            client.post("/hooks/stripe", content=body, headers=stale),
            client.post("/hooks/stripe", content=body),
            client.post("/hooks/stripe", content=body, headers=stripe_headers(body, secret="x")),
        ]
    assert [a.status_code for a in answers] == [401, 401, 401, 401]
    messages = [a.json()["message"] for a in answers]
    assert "no signature in Stripe-Signature matches the body" in messages[0]
    assert "old, " in messages[1]
    assert "more than the 5m tolerance" in messages[1]
    assert "missing signature header Stripe-Signature" in messages[2]
    assert "no signature in Stripe-Signature matches" in messages[3]
    assert ops.ingest.list_events(type="order.completed") == []
    held = ops.ingest.quarantine_items()
    assert len(held) == 4
    assert {item["refused_as"] for item in held} == {"unauthorized"}


def test_a_type_no_rule_maps_is_acknowledged_as_ignored(site: tuple[OpsLoop, LiveServer]) -> None:
    ops, server = site
    body = json.dumps(
        {"id": "evt_3", "type": "customer.updated", "data": {"object": {"id": "cus_1"}}}
    ).encode()
    with httpx.Client(base_url=server.url) as client:
        answer = client.post("/hooks/stripe", content=body, headers=stripe_headers(body))
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert "customer.updated" in answer.json()["reason"]
    assert ops.ingest.source_quality("stripe").ignored == 1
    assert ops.ingest.quarantine_items() == []


def test_standard_webhooks_deliveries_are_verified_and_stored_once_by_webhook_id(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve
) -> None:
    ops = make_ops(sqlite_url, use_clock=False)
    ops.ingest.add_source(
        """\
name: billing
kind: webhook
verify: standard
mapping:
  - when: "type == 'invoice.paid'"
    type: invoice.paid
    subject: "'customer:' + data.customer"
    payload:
      amount: data.amount
      currency: data.currency
""",
        "billing.yaml",
        secret=STANDARD_SECRET,
        actor="test",
    )
    server = serve(ops)
    signer = Webhook(STANDARD_SECRET)
    payload = json.dumps(
        {"type": "invoice.paid", "data": {"customer": "c7", "amount": 120, "currency": "usd"}}
    )

    def delivery(msg_id: str, at: datetime, body: str = payload) -> dict[str, str]:
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signer.sign(msg_id, at, body),
            "content-type": "application/json",
        }

    now = datetime.now(UTC)
    with httpx.Client(base_url=server.url) as client:
        ok = client.post("/hooks/billing", content=payload, headers=delivery("msg_1", now))
        replay = client.post("/hooks/billing", content=payload, headers=delivery("msg_1", now))
        late = client.post(
            "/hooks/billing", content=payload, headers=delivery("msg_2", now - timedelta(hours=1))
        )
        forged = client.post(
            "/hooks/billing",
            content=payload.replace("120", "12000"),
            headers=delivery("msg_3", now),
        )
    assert (ok.status_code, replay.status_code) == (201, 200)
    assert replay.json()["status"] == "duplicate"
    assert (late.status_code, forged.status_code) == (401, 401)
    [invoice] = ops.ingest.list_events(type="invoice.paid")
    assert invoice["subject"] == "customer:c7"
    assert invoice["idempotency_key"] == "msg_1"


def test_a_delivery_the_mapping_cannot_read_is_held_and_replayed_once_fixed(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve
) -> None:
    ops = make_ops(sqlite_url, use_clock=False)
    definition = """\
name: forms
kind: webhook
verify: hmac
signature_header: X-Form-Signature
mapping:
  type: form.submitted
  subject: "'lead:' + lower(contact.email)"
"""
    ops.ingest.add_source(definition, "forms.yaml", secret="s3cret", actor="test")
    server = serve(ops)
    body = b'{"email": "Bo@Example.com", "answers": [1, 2]}'
    # The default for `verify: hmac`: the signature covers the timestamp, a dot and the body.
    at = str(int(time.time()))
    signature = hmac.new(b"s3cret", f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    signed = {"X-Form-Signature": f"sha256={signature}", "X-OpsLoop-Timestamp": at}
    with httpx.Client(base_url=server.url) as client:
        refused = client.post("/hooks/forms", content=body, headers=signed)
    assert refused.status_code == 422
    assert "subject" in refused.text
    [item] = ops.ingest.quarantine_items()
    assert item["cannot_replay"] is None

    fixed = definition.replace("contact.email", "email")
    ops.ingest.add_source(fixed, "forms.yaml", actor="test", replace=True)
    replayed = ops.ingest.replay_quarantined(item["id"], actor="test")
    assert replayed.ok, replayed.reason
    [lead] = ops.ingest.list_events(type="form.submitted")
    assert lead["subject"] == "lead:bo@example.com"


PAYLOADS = Path(__file__).parent.parent / "perception" / "payloads"


def test_shopify_and_calendly_sign_their_own_ways_and_both_are_checked(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve
) -> None:
    ops = make_ops(sqlite_url, use_clock=False)
    declare(ops, "shopify", verify="shopify", secret="shpss_secret")
    declare(ops, "calendly", verify="calendly", secret="calendly-key")
    server = serve(ops)
    order = (PAYLOADS / "shopify_order.json").read_bytes()
    # As Shopify documents it: base64 of the HMAC-SHA256 of the raw body.
    shopify_sig = base64.b64encode(hmac.new(b"shpss_secret", order, hashlib.sha256).digest())
    shop_headers = {
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "Content-Type": "application/json",
    }
    booking = (PAYLOADS / "calendly_invitee_created.json").read_bytes()
    # Calendly: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">, as Stripe signs.
    at = int(time.time())
    v1 = hmac.new(b"calendly-key", f"{at}.".encode() + booking, hashlib.sha256).hexdigest()
    with httpx.Client(base_url=server.url) as client:
        paid = client.post(
            "/hooks/shopify",
            content=order,
            headers={**shop_headers, "X-Shopify-Hmac-Sha256": shopify_sig.decode()},
        )
        forged = client.post(
            "/hooks/shopify",
            content=order,
            headers={**shop_headers, "X-Shopify-Hmac-Sha256": "bm9wZQ=="},
        )
        booked = client.post(
            "/hooks/calendly",
            content=booking,
            headers={"Calendly-Webhook-Signature": f"t={at},v1={v1}"},
        )
        unsigned = client.post("/hooks/calendly", content=booking)
    assert (paid.status_code, booked.status_code) == (201, 201), (paid.text, booked.text)
    assert forged.status_code == 401
    assert "X-Shopify-Hmac-Sha256" in forged.json()["message"]
    assert unsigned.status_code == 401
    assert "Calendly-Webhook-Signature" in unsigned.json()["message"]
    assert len(ops.ingest.list_events(type="order.paid")) == 1
    assert len(ops.ingest.list_events(type="meeting.booked")) == 1


def test_a_base64_hmac_signature_is_read_when_the_source_says_so(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve
) -> None:
    ops = make_ops(sqlite_url, use_clock=False)
    ops.ingest.add_source(
        """\
name: typeform
kind: webhook
verify: hmac
signed: body
signature_header: Typeform-Signature
signature_encoding: base64
mapping:
  type: form.submitted
  subject: "'lead:' + lower(form_response.hidden.email)"
  id: event_id
""",
        "typeform.yaml",
        secret="tf-secret",
        actor="test",
    )
    server = serve(ops)
    body = b'{"event_id": "01HX9", "form_response": {"hidden": {"email": "Ana@Example.com"}}}'
    digest = hmac.new(b"tf-secret", body, hashlib.sha256).digest()
    signature = "sha256=" + base64.b64encode(digest).decode()
    answer = httpx.post(
        f"{server.url}/hooks/typeform", content=body, headers={"Typeform-Signature": signature}
    )
    assert answer.status_code == 201, answer.text
    [form] = ops.ingest.list_events(type="form.submitted")
    assert form["subject"] == "lead:ana@example.com"


def hubspot_headers(body: bytes, url: str, secret: str, at_ms: int) -> dict[str, str]:
    """HubSpot's v3 signature, as its guide describes it."""
    signed = b"POST" + url.encode() + body + str(at_ms).encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": str(at_ms),
        "Content-Type": "application/json",
    }


def test_hubspot_signs_the_url_too_and_a_proxy_address_can_be_declared(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve
) -> None:
    ops = make_ops(sqlite_url, use_clock=False)
    declare(ops, "hubspot", verify="hubspot", secret="hs-client-secret")
    server = serve(ops)
    body = (PAYLOADS / "hubspot_batch.json").read_bytes()
    url = f"{server.url}/hooks/hubspot"
    now_ms = int(time.time() * 1000)
    with httpx.Client(base_url=server.url) as client:
        ok = client.post(
            "/hooks/hubspot",
            content=body,
            headers=hubspot_headers(body, url, "hs-client-secret", now_ms),
        )
        stale = client.post(
            "/hooks/hubspot",
            content=body,
            headers=hubspot_headers(body, url, "hs-client-secret", now_ms - 3_600_000),
        )
        # Signed for the address HubSpot called: a proxy's public https address.
        public = "https://ops.example.com/hooks/hubspot"
        behind_proxy = client.post(
            "/hooks/hubspot",
            content=body,
            headers=hubspot_headers(body, public, "hs-client-secret", now_ms),
        )
    assert ok.status_code == 201, ok.text
    assert stale.status_code == 401
    assert behind_proxy.status_code == 401
    assert "set public_url" in behind_proxy.json()["message"]
    stored = len(ops.ingest.list_events(limit=100))
    assert stored >= 2  # a HubSpot delivery is a list of events

    ops.ingest.add_source(
        f"name: hubspot\nkind: webhook\nverify: hubspot\nmapping: hubspot\npublic_url: {public}\n",
        "hubspot.yaml",
        actor="test",
        replace=True,
    )
    again = httpx.post(
        url, content=body, headers=hubspot_headers(body, public, "hs-client-secret", now_ms)
    )
    assert again.status_code == 200  # accepted: the same deliveries, stored once already
