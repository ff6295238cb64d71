"""A captured webhook delivery cannot be used again, over real HTTP on SQLite and PostgreSQL
with the clock moved by hand: the default `verify: hmac` signs a timestamp with the body, so a
copy posted later than the tolerance is refused; within it, and for senders that sign only the
body, the content window stores a copy once whatever delivery id it carries. Settings sources
(`OPSLOOP_SOURCES`) follow the same rules."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest

from opsloop.service import OpsLoop
from tests.conftest import Clock, LiveServer, OpsFactory, Serve

SECRET = "backoffice-signing-secret-91ad"
ORDER = {"type": "order.paid", "subject": "customer:bo@example.com", "payload": {"order": "B-7"}}


@dataclass
class Site:
    ops: OpsLoop
    server: LiveServer
    clock: Clock

    def post(self, name: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.server.url}/hooks/{name}", content=body, headers=headers)


@pytest.fixture
def site(make_ops: OpsFactory, database_url: str, serve: Serve, clock: Clock) -> Site:
    ops = make_ops(
        database_url,
        sources={
            "legacy": {"secret": SECRET},  # signs the body alone, as settings sources did
            "stamped": {"secret": SECRET, "signed": "timestamp"},
        },
    )
    ops.ingest.add_source(
        "name: backoffice\nkind: webhook\nverify: hmac\n", "b.yaml", secret=SECRET, actor="t"
    )
    ops.ingest.add_source(
        "name: github\nkind: webhook\nverify: hmac\nsigned: body\n"
        "signature_header: X-Hub-Signature-256\n",
        "g.yaml",
        secret=SECRET,
        actor="t",
    )
    return Site(ops, serve(ops), clock)


def stamped(body: bytes, at: datetime, **extra: str) -> dict[str, str]:
    """Headers of a delivery signed over `"{timestamp}.{body}"` at `at`."""
    stamp = str(int(at.timestamp()))
    digest = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-OpsLoop-Timestamp": stamp, "X-OpsLoop-Signature": f"sha256={digest}", **extra}


def body_signed(body: bytes, header: str = "X-OpsLoop-Signature", **extra: str) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {header: f"sha256={digest}", **extra}


def stored(ops: OpsLoop, source: str) -> list[dict]:
    return [e for e in ops.ingest.list_events() if e["source"] == source]


@pytest.mark.parametrize("name", ["backoffice", "stamped"])
def test_a_captured_timestamped_delivery_replayed_six_minutes_later_is_refused(
    site: Site, name: str
) -> None:
    body = json.dumps(ORDER).encode()
    captured = stamped(body, site.clock.now, **{"Idempotency-Key": "d-1"})
    assert site.post(name, body, captured).status_code == 201

    site.clock.advance(minutes=6)
    replayed = site.post(name, body, captured)
    ahead = site.post(name, body, stamped(body, site.clock.now + timedelta(minutes=6)))

    assert replayed.status_code == 401
    assert replayed.json()["message"] == (
        "the timestamp in X-OpsLoop-Timestamp (2026-03-02T09:00:00Z) is 6m old, 1m more than "
        "the 5m tolerance"
    )
    assert ahead.status_code == 401
    assert "ahead of this server's clock" in ahead.json()["message"]
    assert len(stored(site.ops, name)) == 1
    assert {i["refused_as"] for i in site.ops.ingest.quarantine_items()} == {"unauthorized"}
    # The source works: a new delivery, signed now, is stored.
    other = json.dumps({**ORDER, "payload": {"order": "B-8"}}).encode()
    assert site.post(name, other, stamped(other, site.clock.now)).status_code == 201


@pytest.mark.parametrize("name", ["backoffice", "stamped"])
def test_a_timestamped_delivery_replayed_at_once_with_a_new_delivery_id_is_stored_once(
    site: Site, name: str
) -> None:
    body = json.dumps(ORDER).encode()
    first = site.post(name, body, stamped(body, site.clock.now, **{"Idempotency-Key": "d-1"}))
    site.clock.advance(minutes=2)
    copies = [
        site.post(name, body, stamped(body, site.clock.now, **{"Idempotency-Key": "d-2"})),
        site.post(name, body, stamped(body, site.clock.now, **{"X-Request-Id": "r-9"})),
        site.post(name, body, stamped(body, site.clock.now)),
    ]

    assert first.status_code == 201
    for copy in copies:
        assert (copy.status_code, copy.json()) == (
            200,
            {"id": first.json()["id"], "status": "duplicate"},
        )
    [event] = stored(site.ops, name)
    assert event["idempotency_key"].startswith("content:")
    # Another event is not a copy, whatever its delivery id.
    other = json.dumps({**ORDER, "payload": {"order": "B-8"}}).encode()
    assert (
        site.post(
            name, other, stamped(other, site.clock.now, **{"Idempotency-Key": "d-1"})
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("name", "header"), [("github", "X-Hub-Signature-256"), ("legacy", "X-OpsLoop-Signature")]
)
def test_a_body_only_source_stores_a_replayed_delivery_once_by_default(
    site: Site, name: str, header: str
) -> None:
    body = json.dumps(ORDER).encode()
    first = site.post(name, body, body_signed(body, header, **{"X-GitHub-Delivery": "g-1"}))
    site.clock.advance(hours=3)
    copy = site.post(name, body, body_signed(body, header, **{"X-GitHub-Delivery": "g-2"}))
    bare = site.post(name, body, body_signed(body, header))

    assert first.status_code == 201, first.text
    assert copy.json() == {"id": first.json()["id"], "status": "duplicate"}
    assert bare.json() == {"id": first.json()["id"], "status": "duplicate"}
    assert len(stored(site.ops, name)) == 1


def test_a_body_signed_id_is_the_key_and_the_window_can_be_turned_off(site: Site) -> None:
    keyed = json.dumps({**ORDER, "idempotency_key": "B-7"}).encode()
    site.ops.ingest.add_source(
        "name: pinger\nkind: webhook\nverify: hmac\nsigned: body\ndedupe_window: 0s\n",
        "p.yaml",
        secret=SECRET,
        actor="t",
    )
    first = site.post("github", keyed, body_signed(keyed, "X-Hub-Signature-256"))
    site.clock.advance(days=3)  # long past the window: the signed id still holds
    again = site.post("github", keyed, body_signed(keyed, "X-Hub-Signature-256"))
    assert (first.status_code, again.json()["status"]) == (201, "duplicate")

    # Without a window, the delivery header is the key again: the owner's choice, with its risk.
    body = json.dumps(ORDER).encode()
    one = site.post("pinger", body, body_signed(body, **{"Idempotency-Key": "p-1"}))
    two = site.post("pinger", body, body_signed(body, **{"Idempotency-Key": "p-2"}))
    three = site.post("pinger", body, body_signed(body, **{"Idempotency-Key": "p-2"}))
    assert (one.status_code, two.status_code, three.status_code) == (201, 201, 200)
    assert [e["idempotency_key"] for e in stored(site.ops, "pinger")] == ["p-2", "p-1"]
