"""Public senders cannot redirect where actions go, over real HTTP on SQLite and PostgreSQL: a
tracking write key (driven by Segment's own Python library) or an `allow_unsigned` hook may not
change the email or phone a trusted source set, though it may set them on a fresh visitor; the
event keeps what was sent and the skip is logged; and an alias call cannot merge a customer a
trusted source knows into someone else."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

import httpx
import pytest
from segment.analytics.client import Client

from opsloop.service import OpsLoop
from tests.conftest import Clock, LiveServer, OpsFactory, Serve

CRM_SECRET = "crm-signing-secret-40d2"
WRITE_KEY = "wk_in_every_page_91be"


@dataclass
class Site:
    ops: OpsLoop
    server: LiveServer
    clock: Clock

    def crm(self, event: dict) -> httpx.Response:
        """A delivery from the CRM, a signed (trusted) webhook source."""
        body = json.dumps(event).encode()
        stamp = str(int(self.clock.now.timestamp()))
        digest = hmac.new(CRM_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        headers = {"X-OpsLoop-Timestamp": stamp, "X-OpsLoop-Signature": digest.hexdigest()}
        return httpx.post(f"{self.server.url}/hooks/crm", content=body, headers=headers)

    def form(self, event: dict) -> httpx.Response:
        """A post to the website's form hook, which takes unsigned deliveries (public)."""
        return httpx.post(f"{self.server.url}/hooks/form", json=event)

    def tracking(self) -> Client:
        return Client(WRITE_KEY, host=self.server.url, sync_mode=True, max_retries=0)

    def traits(self, subject: str) -> dict:
        return self.ops.ingest.get_entity(subject)["traits"]


def make_site(
    make_ops: OpsFactory, url: str, serve: Serve, clock: Clock, **settings: object
) -> Site:
    ops = make_ops(url, **settings)
    ops.ingest.add_source(
        "name: crm\nkind: webhook\nverify: hmac\n", "crm.yaml", secret=CRM_SECRET, actor="t"
    )
    ops.ingest.add_source(
        "name: form\nkind: webhook\nallow_unsigned: true\n", "form.yaml", actor="t"
    )
    ops.ingest.add_source(
        "name: website\nkind: segment\n", "website.yaml", secret=WRITE_KEY, actor="t"
    )
    return Site(ops, serve(ops), clock)


@pytest.fixture
def site(make_ops: OpsFactory, database_url: str, serve: Serve, clock: Clock) -> Site:
    return make_site(make_ops, database_url, serve, clock)


LEAD = {
    "type": "lead.created",
    "subject": "lead:42",
    "traits": {"email": "ana@example.com", "phone": "+351912345678", "plan": "pro"},
}


def test_a_write_key_cannot_change_an_email_a_signed_source_set_but_can_set_a_new_visitors(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    assert site.crm(LEAD).status_code == 201
    analytics = site.tracking()

    with caplog.at_level(logging.WARNING, logger="opsloop.service.ingest.storing"):
        analytics.identify(
            user_id="42", traits={"email": "mallory@example.net", "plan": "free", "name": "M"}
        )
    analytics.identify(user_id="77", traits={"email": "new@example.com", "name": "Nia"})
    # Removing it is changing it too.
    httpx.post(
        f"{site.server.url}/v1/identify",
        json={"writeKey": WRITE_KEY, "userId": "42", "traits": {"phone": None}},
    )

    assert site.traits("lead:42") == {
        "email": "ana@example.com",
        "phone": "+351912345678",
        "plan": "free",  # not an address: a public source may change it
        "name": "M",
    }
    assert site.ops.ingest.get_entity("lead:42")["trusted_traits"] == {
        "email": "crm",
        "phone": "crm",
    }
    assert site.traits("lead:77") == {"email": "new@example.com", "name": "Nia"}
    sent = [e["traits"] for e in site.ops.ingest.list_events(type="identify", subject="lead:42")]
    assert {"email": "mallory@example.net", "plan": "free", "name": "M"} in sent  # as it arrived
    [kept] = [r for r in caplog.records if getattr(r, "trait", None) == "email"]
    assert (kept.subject, kept.source) == ("lead:42", "website")


def test_an_unsigned_hook_is_held_to_the_same_rule_and_a_trusted_source_still_decides(
    site: Site,
) -> None:
    site.crm(LEAD)
    changed = site.form(
        {"type": "form.sent", "subject": "lead:42", "traits": {"email": "x@evil.test"}}
    )
    fresh = site.form(
        {"type": "form.sent", "subject": "lead:99", "traits": {"email": "zoe@example.com"}}
    )
    assert (changed.status_code, fresh.status_code) == (201, 201)
    assert site.traits("lead:42")["email"] == "ana@example.com"
    assert site.traits("lead:99")["email"] == "zoe@example.com"

    # A trusted sender may change it: an API token, here.
    with site.server.client() as api:
        moved = {
            "type": "lead.updated",
            "subject": "lead:42",
            "traits": {"email": "ana@new.example"},
        }
        assert api.post("/api/events", json=moved).status_code == 201
        # And once a trusted source removed it, a public one may set it again.
        gone = {"type": "lead.updated", "subject": "lead:42", "traits": {"email": None}}
        assert api.post("/api/events", json=gone).status_code == 201
    assert site.ops.ingest.get_entity("lead:42")["trusted_traits"] == {
        "phone": "crm",
        "plan": "crm",
    }
    site.form({"type": "form.sent", "subject": "lead:42", "traits": {"email": "ana@later.example"}})
    assert site.traits("lead:42")["email"] == "ana@later.example"
    # A public source saying what the trusted one said leaves it the trusted one's.
    site.form({"type": "form.sent", "subject": "lead:42", "traits": {"phone": "+351912345678"}})
    assert site.ops.ingest.get_entity("lead:42")["trusted_traits"]["phone"] == "crm"


def test_an_alias_call_cannot_merge_a_customer_a_trusted_source_knows_into_another(
    site: Site,
) -> None:
    analytics = site.tracking()
    # Ana signs up on the website; the CRM then knows her.
    analytics.identify(user_id="42", anonymous_id="anon-ana", traits={"name": "Ana"})
    site.crm(LEAD)
    analytics.identify(user_id="legacy-7", anonymous_id="anon-old")

    # Mallory, with the page's write key, says Ana is an old name of hers; and one of
    # her own old ids, which no trusted source knows, is.
    analytics.alias(previous_id="42", user_id="mallory")
    analytics.alias(previous_id="legacy-7", user_id="mallory")
    # Ana browses on, anonymously, from her own browser.
    analytics.page(anonymous_id="anon-ana", name="Pricing", properties={"path": "/pricing"})
    analytics.page(anonymous_id="anon-old", name="Blog", properties={"path": "/blog"})

    pages = {
        e["payload"]["path"]: e["subject"] for e in site.ops.ingest.list_events(type="page.viewed")
    }
    assert pages == {"/pricing": "lead:42", "/blog": "lead:mallory"}


def test_which_traits_are_protected_is_a_setting(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, clock: Clock
) -> None:
    site = make_site(make_ops, sqlite_url, serve, clock, protected_traits=["email", "whatsapp"])
    site.crm({**LEAD, "traits": {"email": "ana@example.com", "whatsapp": "+1555", "phone": "+1"}})
    site.form(
        {
            "type": "form.sent",
            "subject": "lead:42",
            "traits": {"email": "m@evil.test", "whatsapp": "+666", "phone": "+2"},
        }
    )
    assert site.traits("lead:42") == {
        "email": "ana@example.com",
        "whatsapp": "+1555",
        "phone": "+2",
    }
