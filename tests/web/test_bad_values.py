"""Bad values over real HTTP and in pulled sources, on SQLite and PostgreSQL: an event time near
year 1 or 9999 and an integer beyond 64 bits get a 4xx naming the field (never a 500) on
`/api/events`, `/hooks/{source}` (declared and settings-configured) and `/v1/...`; each refusal
is kept in quarantine with its reason; in a tracking batch or a pulled batch only the bad
item is set aside and the rest are stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from opsloop.service import OpsLoop
from tests.conftest import WEBHOOK_SECRET, LiveServer, OpsFactory, Serve, lead_playbook
from tests.perception.json_api import TOKEN, JsonApi, orders, orders_source

RANGE = "outside the times OpsLoop accepts, from 1900-01-01 to 2999-12-31 UTC"
EXTREMES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]
HUGE = 12345678901234567890123
TOO_BIG = f"{HUGE} is beyond the 64-bit integer range; send it as a string"
WRITE_KEY = "wk_bad_values_7c1d"
LEGACY_SECRET = "legacy-secret-9"
PLAYBOOK = "lead-qualification"

MAPPED = """\
name: forms
kind: webhook
verify: standard
mapping:
  type: form.submitted
  subject: "'lead:' + lower(email)"
  occurred_at: submitted_at
"""


@dataclass
class Site:
    ops: OpsLoop
    server: LiveServer

    def post_hook(self, source: str, body: Any) -> httpx.Response:
        """A delivery to a declared source, signed with Standard Webhooks' own library."""
        raw = json.dumps(body)
        message_id = f"msg_{hashlib.sha256(raw.encode()).hexdigest()[:16]}"
        at = datetime.now(UTC)
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(WEBHOOK_SECRET).sign(message_id, at, raw),
            "content-type": "application/json",
        }
        with httpx.Client(base_url=self.server.url) as client:
            return client.post(f"/hooks/{source}", content=raw, headers=headers)

    def post_legacy(self, body: Any) -> httpx.Response:
        """A delivery to the source configured in settings, signed over its body."""
        raw = json.dumps(body).encode()
        signature = "sha256=" + hmac.new(LEGACY_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        with httpx.Client(base_url=self.server.url) as client:
            return client.post(
                "/hooks/legacy", content=raw, headers={"X-OpsLoop-Signature": signature}
            )

    def track(self, path: str, body: Any, *, key_in_body: bool = False) -> httpx.Response:
        if key_in_body:  # as browsers send it
            content, headers = json.dumps({**body, "writeKey": WRITE_KEY}), {}
        else:
            basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
            content, headers = json.dumps(body), {"Authorization": f"Basic {basic}"}
        with httpx.Client(base_url=self.server.url) as client:
            return client.post(f"/v1/{path}", content=content, headers=headers)

    def held(self, answer: httpx.Response) -> dict[str, Any]:
        """The quarantine item a refusal names."""
        quarantine_id = answer.json()["quarantine_id"]
        return self.ops.ingest.get_quarantined(quarantine_id)


@pytest.fixture
def site(make_ops: OpsFactory, database_url: str, serve: Serve) -> Site:
    ops = make_ops(database_url, use_clock=False, sources={"legacy": {"secret": LEGACY_SECRET}})
    shop = "name: shop\nkind: webhook\nverify: standard\n"
    ops.ingest.add_source(shop, "shop.yaml", secret=WEBHOOK_SECRET, actor="t")
    ops.ingest.add_source(MAPPED, "forms.yaml", secret=WEBHOOK_SECRET, actor="t")
    ops.ingest.add_source(
        "name: website\nkind: segment\n", "website.yaml", secret=WRITE_KEY, actor="t"
    )
    return Site(ops, serve(ops))


def lead(n: int, **fields: Any) -> dict[str, Any]:
    return {"type": "lead.created", "subject": f"lead:{n}", **fields}


def stored(ops: OpsLoop) -> list[dict[str, Any]]:
    return sorted(ops.ingest.list_events(limit=100), key=lambda event: event["id"])


# --- event times -----------------------------------------------------------------------------


@pytest.mark.parametrize("when", EXTREMES)
def test_an_event_time_at_the_ends_of_the_calendar_is_refused_by_the_api_and_kept(
    site: Site, when: str
) -> None:
    with site.server.client() as api:
        one = api.post("/api/events", json=lead(1, occurred_at=when))
        batch = api.post(
            "/api/events", json={"events": [lead(2), lead(3), lead(4, occurred_at=when)]}
        )
    assert one.status_code == 422
    assert one.json()["errors"] == [{"field": "occurred_at", "message": f"{when} is {RANGE}"}]
    assert batch.status_code == 422, "the API refuses a batch whole, as it documents"
    assert batch.json()["errors"] == [
        {"field": "events[2].occurred_at", "message": f"{when} is {RANGE}"}
    ]
    for answer in (one, batch):
        item = site.held(answer)
        assert item["source"] == "api"
        assert RANGE in item["reason"]
        assert when in item["body"]
    assert stored(site.ops) == []


@pytest.mark.parametrize("when", EXTREMES)
def test_an_event_time_at_the_ends_of_the_calendar_is_refused_by_every_webhook_and_kept(
    site: Site, when: str
) -> None:
    answers = {
        "shop": site.post_hook("shop", lead(1, occurred_at=when)),
        "forms": site.post_hook("forms", {"email": "Ana@X.co", "submitted_at": when}),
        "legacy": site.post_legacy(lead(2, occurred_at=when)),
    }
    for source, answer in answers.items():
        assert answer.status_code == 422, (source, answer.text)
        [error] = answer.json()["errors"]
        assert error["field"].endswith("occurred_at"), (source, error)
        assert error["message"].endswith(f"{when} is {RANGE}"), (source, error)
        item = site.held(answer)
        assert (item["source"], item["status"]) == (source, "held")
        assert RANGE in item["reason"]
    assert stored(site.ops) == []


def test_a_tracking_call_at_the_ends_of_the_calendar_is_refused_with_a_400_and_kept(
    site: Site,
) -> None:
    when = EXTREMES[0]
    answer = site.track("track", {"userId": "42", "event": "Clicked", "timestamp": when})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_input"
    assert answer.json()["message"] == f"timestamp: {when} is {RANGE}"
    item = site.held(answer)
    assert (item["source"], item["status"]) == ("website", "held")
    assert stored(site.ops) == []


def test_in_a_tracking_batch_only_the_calls_with_bad_times_are_set_aside(site: Site) -> None:
    calls = [
        {"type": "track", "userId": "1", "event": "Clicked", "messageId": "m0"},
        {"type": "track", "userId": "2", "event": "Clicked", "timestamp": EXTREMES[1]},
        # In range each, but corrected for the device's clock it would be the year 3125.
        {
            "type": "page",
            "anonymousId": "a-3",
            "originalTimestamp": "2999-06-01T00:00:00Z",
            "sentAt": "1900-01-01T00:00:00Z",
        },
        {"type": "track", "userId": "4", "event": "Clicked", "messageId": "m3"},
    ]
    answer = site.track("batch", {"batch": calls})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["stored"], body["rejected"]) == (2, 2)
    assert [error["where"] for error in body["errors"]] == ["batch[1]", "batch[2]"]
    assert f"timestamp: {EXTREMES[1]} is {RANGE}" in body["errors"][0]["reason"]
    assert "originalTimestamp: corrected for the device's clock" in body["errors"][1]["reason"]
    for error in body["errors"]:
        assert site.ops.ingest.get_quarantined(error["quarantine_id"])["source"] == "website"
    assert [e["subject"] for e in stored(site.ops)] == ["lead:1", "lead:4"]


# --- integers beyond 64 bits -----------------------------------------------------------------


def test_an_integer_beyond_64_bits_is_refused_naming_its_field_and_kept_exactly(
    site: Site,
) -> None:
    order = lead(1, payload={"order_id": HUGE})
    with site.server.client() as api:
        answers = {
            "api": api.post("/api/events", content=json.dumps(order)),
            "shop": site.post_hook("shop", order),
            "forms": site.post_hook("forms", {"email": "ana@x.co", "order_id": HUGE}),
            "website": site.track(
                "track", {"userId": "1", "event": "Paid", "properties": {"order_id": HUGE}}
            ),
        }
    assert {source: answer.status_code for source, answer in answers.items()} == {
        "api": 422,
        "shop": 422,
        "forms": 422,
        "website": 400,
    }
    assert answers["api"].json()["errors"] == [{"field": "payload.order_id", "message": TOO_BIG}]
    assert answers["forms"].json()["message"] == f"order_id: {TOO_BIG}"
    assert answers["website"].json()["message"] == f"properties.order_id: {TOO_BIG}"
    for source, answer in answers.items():
        item = site.held(answer)
        assert item["source"] == source
        assert str(HUGE) in item["body"], "kept as it came, not as a rounded float"
    assert stored(site.ops) == []


def test_a_browser_call_with_a_big_integer_is_kept_with_its_source_but_not_its_key(
    site: Site,
) -> None:
    call = {"type": "track", "userId": "1", "event": "Paid", "properties": {"n": HUGE}}
    answer = site.track("t", call, key_in_body=True)
    assert answer.status_code == 400
    assert answer.json()["message"] == f"properties.n: {TOO_BIG}"
    item = site.held(answer)
    assert item["source"] == "website"
    assert f'"n":{HUGE}' in item["body"]
    assert WRITE_KEY not in item["body"]


def test_an_integer_within_64_bits_is_stored_exactly(site: Site) -> None:
    largest = 2**64 - 1
    with site.server.client() as api:
        answer = api.post("/api/events", json=lead(1, payload={"n": largest, "m": -(2**63)}))
        assert answer.status_code == 201, answer.text
        event = api.get(f"/api/events/{answer.json()['id']}").json()
    assert event["payload"] == {"n": largest, "m": -(2**63)}


# --- pulled sources --------------------------------------------------------------------------


def test_a_pulled_row_with_a_bad_time_or_a_big_integer_is_held_and_the_rest_stored(
    make_ops: OpsFactory, database_url: str, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    rows = [
        lead(1),
        lead(2, occurred_at=EXTREMES[0]),
        lead(3, payload={"order_id": HUGE}),
        lead(4),
    ]
    (drop / "leads.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    ops = make_ops(database_url)
    ops.ingest.add_source(
        f"name: drops\nkind: folder\nfolder:\n  path: {drop}\n", "d.yaml", actor="t"
    )

    run = ops.ingest.sync_source("drops", actor="test")
    assert (run.status, run.rows_in, run.events_stored, run.rejected) == ("ok", 4, 2, 2)
    assert [e["subject"] for e in stored(ops)] == ["lead:1", "lead:4"]
    reasons = sorted(item["reason"] for item in ops.ingest.list_quarantine(source="drops"))
    assert reasons == [
        f"leads.jsonl line 2: occurred_at: {EXTREMES[0]} is {RANGE}",
        f"leads.jsonl line 3: payload.order_id: {TOO_BIG}",
    ]


@pytest.fixture
def api() -> Iterator[JsonApi]:
    items = orders(4)
    items[1]["updated_at"] = EXTREMES[1]
    items[2]["total"] = HUGE
    with JsonApi(items=items) as server:
        yield server


def test_a_pulled_item_with_a_bad_time_or_a_big_integer_is_held_and_the_rest_stored(
    make_ops: OpsFactory, database_url: str, api: JsonApi
) -> None:
    definition = orders_source(api.url, total="total")
    ops = make_ops(database_url)
    ops.ingest.add_source(definition, "orders.yaml", secret=TOKEN, actor="test")

    run = ops.ingest.sync_source("orders", actor="test")
    assert (run.status, run.rows_in, run.events_stored, run.rejected) == ("ok", 4, 2, 2)
    assert sorted(e["subject"] for e in stored(ops)) == ["order:1", "order:4"]
    reasons = sorted(item["reason"] for item in ops.ingest.list_quarantine(source="orders"))
    assert any(f"total: {TOO_BIG}" in reason for reason in reasons), reasons
    assert any(f"{EXTREMES[1]} is {RANGE}" in reason for reason in reasons), reasons
    [kept] = [i for i in ops.ingest.list_quarantine(source="orders") if "total" in i["reason"]]
    assert str(HUGE) in kept["body"]


def test_a_report_or_backtest_window_past_the_range_is_a_422_naming_it(site: Site) -> None:
    site.ops.decide.apply_playbook(lead_playbook(), "lead.yaml", actor="test")
    with site.server.client() as api:
        metrics = api.get("/api/metrics", params={"baseline": f"2026-01-01..{EXTREMES[0]}"})
        backtest = api.post(
            "/api/playbooks/backtest", json={"playbook": PLAYBOOK, "since": EXTREMES[1]}
        )
    assert metrics.status_code == 422
    assert metrics.json()["errors"][0]["field"] == "baseline"
    assert RANGE in metrics.json()["message"]
    assert backtest.status_code == 422
    assert backtest.json()["errors"] == [{"field": "since", "message": f"{EXTREMES[1]} is {RANGE}"}]
