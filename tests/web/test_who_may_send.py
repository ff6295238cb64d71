"""Nobody can post events as someone else, over real HTTP on SQLite and PostgreSQL: a hook
nobody declared answers 404 and keeps nothing, a source that checks no signature refuses every
delivery unless it allows unsigned ones, and an event's source is the one whose credential
delivered it, so nobody can take a source's idempotency key before its real delivery arrives.
The senders are real: Stripe's own signing, Segment's Python library, an HMAC over the
timestamp and body as docs/sources.md tells a sender to compute it."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

import httpx
import pytest
import stripe
from segment.analytics.client import Client

from opsloop.service import OpsLoop
from tests.conftest import Clock, LiveServer, OpsFactory, Serve

STRIPE_SECRET = "whsec_test_stripe_0123456789"
ZENDESK_SECRET = "zendesk-signing-secret-5b1f"
WRITE_KEY = "wk_in_every_page_7c2e"

BUYERS = """\
name: thank-buyers
subject: customer
mode: recommend
trigger:
  events: order.completed
otherwise: thank
options:
  thank: {}
"""
TICKETS = """\
name: triage-tickets
subject: ticket
mode: recommend
trigger:
  events: ticket.opened
otherwise: look
options:
  look: {}
"""
EVENT = {"type": "ticket.opened", "subject": "ticket:981", "payload": {"channel": "email"}}


@dataclass
class Site:
    ops: OpsLoop
    server: LiveServer
    clock: Clock

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=10)


@pytest.fixture
def site(make_ops: OpsFactory, database_url: str, serve: Serve, clock: Clock) -> Site:
    ops = make_ops(
        database_url,
        playbooks=[BUYERS, TICKETS],
        max_body_bytes=2048,
        sources={"legacy": {}, "zap": {"allow_unsigned": True}},
    )
    for text, secret in (
        ("name: stripe\nkind: webhook\nverify: stripe\nmapping: stripe\n", STRIPE_SECRET),
        ("name: zendesk\nkind: webhook\nverify: hmac\n", ZENDESK_SECRET),
        ("name: forms\nkind: webhook\nallow_unsigned: true\n", None),
        ("name: closed\nkind: webhook\n", None),
        ("name: website\nkind: segment\n", WRITE_KEY),
    ):
        ops.ingest.add_source(text, "source.yaml", secret=secret, actor="test")
    return Site(ops, serve(ops), clock)


def zendesk_headers(body: bytes, clock: Clock) -> dict[str, str]:
    """Signed as docs/sources.md#signing-your-own-deliveries says: the timestamp, a dot, the
    body."""
    stamp = str(int(clock.now.timestamp()))
    digest = hmac.new(ZENDESK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return {
        "X-OpsLoop-Timestamp": stamp,
        "X-OpsLoop-Signature": f"sha256={digest.hexdigest()}",
        "Content-Type": "application/json",
    }


def checkout(event_id: str) -> bytes:
    """A Stripe `checkout.session.completed` event as Stripe posts it (trimmed)."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "checkout.session.completed",
            "created": 1772441000,
            "data": {
                "object": {
                    "id": "cs_test_1",
                    "object": "checkout.session",
                    "amount_total": 4999,
                    "currency": "eur",
                    "customer_details": {"email": "ana@example.com", "name": "Ana Lima"},
                    "payment_status": "paid",
                }
            },
        }
    ).encode()


def test_a_hook_nobody_declared_answers_404_and_keeps_nothing(site: Site) -> None:
    event = json.dumps(EVENT).encode()
    big = json.dumps({**EVENT, "payload": {"blob": "x" * 4000}}).encode()
    with site.anonymous() as client:
        answers = [
            client.post(f"/hooks/{name}", content=event, headers={"Idempotency-Key": "k-1"})
            for name in ("nobody", "api", "import", "API")
        ]
        oversized = client.post("/hooks/nobody", content=big)

    for answer in [*answers, oversized]:
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"] == "not_found"
        assert "quarantine_id" not in answer.json()
    assert answers[0].json()["message"] == (
        "no webhook source 'nobody': declare it with `opsloop source add` "
        "(docs/sources.md#webhooks)"
    )
    assert site.ops.ingest.list_events() == []
    assert site.ops.ingest.quarantine_items() == []
    assert site.ops.ingest.source_activity() == []


def test_a_source_that_checks_no_signature_refuses_every_delivery_unless_it_allows_unsigned(
    site: Site,
) -> None:
    body = json.dumps({"type": "form.sent", "subject": "lead:7"}).encode()
    with site.anonymous() as client:
        closed = client.post("/hooks/closed", content=body)
        legacy = client.post("/hooks/legacy", content=body)
        forms = client.post("/hooks/forms", content=body)
        zap = client.post("/hooks/zap", content=body)

    assert (closed.status_code, legacy.status_code) == (401, 401)
    assert closed.json()["message"] == (
        "source 'closed' takes signed deliveries only and has no secret to check them with: "
        "set `verify` and the sender's signing secret, or allow_unsigned to accept anyone's "
        "(docs/sources.md#webhooks)"
    )
    assert "set OPSLOOP_SOURCES__LEGACY__SECRET, or allow_unsigned" in legacy.json()["message"]
    assert (forms.status_code, zap.status_code) == (201, 201)
    assert sorted(e["source"] for e in site.ops.ingest.list_events()) == ["forms", "zap"]
    held = {item["source"]: item for item in site.ops.ingest.quarantine_items()}
    assert set(held) == {"closed", "legacy"}
    assert all(item["refused_as"] == "unauthorized" for item in held.values())
    assert all("cannot be checked again" in item["cannot_replay"] for item in held.values())


def test_an_api_event_naming_stripe_is_refused_and_the_real_delivery_is_stored_and_decided(
    site: Site,
) -> None:
    claim = {
        "type": "order.completed",
        "subject": "customer:ana@example.com",
        "payload": {"amount": 0.01},
        "source": "stripe",
        "idempotency_key": "evt_1",
    }
    with site.server.client() as api:  # an admin token: trusted, but only for the source api
        refused = api.post("/api/events", json=claim)
        batch = api.post("/api/events", json={"events": [EVENT, claim]})
        old_client = api.post("/api/events", json={**EVENT, "source": "api"})

    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error == {
        "field": "source",
        "message": "is 'stripe', but events sent here are stored in the source 'api'; to send "
        "events into 'stripe', post them to /hooks/stripe signed with that source's secret "
        "(docs/sources.md#webhooks)",
    }
    assert site.ops.ingest.quarantine_item(refused.json()["quarantine_id"])["source"] == "api"
    assert batch.status_code == 422
    assert [e["field"] for e in batch.json()["errors"]] == ["events[1].source"]
    assert old_client.status_code == 201
    assert [(e["source"], e["type"]) for e in site.ops.ingest.list_events()] == [
        ("api", "ticket.opened")
    ]

    body = checkout("evt_1")
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), STRIPE_SECRET, timestamp=int(site.clock.now.timestamp())
    )
    with site.anonymous() as client:
        real = client.post("/hooks/stripe", content=body, headers={"Stripe-Signature": header})

    assert real.status_code == 201, real.text
    order = site.ops.ingest.get_event(real.json()["id"])
    assert (order["source"], order["idempotency_key"]) == ("stripe", "evt_1")
    assert order["payload"]["amount"] == 49.99
    [decision] = site.ops.decide.list_decisions(subject="customer:ana@example.com")
    assert decision["event_id"] == order["id"]


def test_nobody_can_take_zendesk_981_before_the_real_delivery_arrives(site: Site) -> None:
    claim = {**EVENT, "idempotency_key": "zendesk-981"}
    with site.server.client() as api:
        by_token = api.post("/api/events", json={**claim, "source": "zendesk"})
    with site.anonymous() as client:
        unsigned = client.post("/hooks/zendesk", json=claim)
        through_forms = client.post("/hooks/forms", json={**claim, "source": "zendesk"})
        in_forms = client.post("/hooks/forms", json=claim)  # stored, but in forms
    analytics = Client(WRITE_KEY, host=site.server.url, sync_mode=True, max_retries=0)
    analytics.track(user_id="981", event="Ticket Opened", message_id="zendesk-981")

    assert (by_token.status_code, unsigned.status_code) == (422, 401)
    assert through_forms.status_code == 422
    assert through_forms.json()["errors"][0]["field"] == "source"
    assert in_forms.status_code == 201

    body = json.dumps(claim).encode()
    with site.anonymous() as client:
        real = client.post(
            "/hooks/zendesk", content=body, headers=zendesk_headers(body, site.clock)
        )
        again = client.post(
            "/hooks/zendesk", content=body, headers=zendesk_headers(body, site.clock)
        )

    assert real.status_code == 201, real.text
    assert again.json() == {"id": real.json()["id"], "status": "duplicate"}
    # Each sender's copy is in its own source; the key was never the others' to take.
    keyed = {
        e["source"]: e["id"]
        for e in site.ops.ingest.list_events()
        if e["idempotency_key"] == "zendesk-981"
    }
    assert set(keyed) == {"forms", "website", "zendesk"}
    assert keyed["zendesk"] == real.json()["id"]
    decided = {d["event_id"] for d in site.ops.decide.list_decisions(subject="ticket:981")}
    assert decided == {in_forms.json()["id"], real.json()["id"]}
