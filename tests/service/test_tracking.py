"""Segment-compatible tracking over real HTTP, driven by Segment's own Python library: every
call kind is stored as an event, batches (gzipped too) arrive whole, a repeated messageId is
stored once, unknown write keys and oversize or invalid calls are refused (and the refused ones
kept in quarantine), and a visitor's page views join the lead they become."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from segment.analytics.client import Client
from segment.analytics.request import APIError

from opsloop.core.errors import NotFound
from opsloop.service import OpsLoop
from opsloop.service.ingest import tracking
from opsloop.service.ingest.contracts import apply_contracts
from tests.conftest import LiveServer, OpsFactory, Serve, lead_playbook

WRITE_KEY = "wk_test_3f9a1c7e52"

# The lead playbook, also deciding when a visitor identifies: its features count page views.
IDENTIFY_PLAYBOOK = lead_playbook(
    "recommend", **{"events: [lead.created, demo.requested]": "events: [identify]"}
)


@pytest.fixture
def site(make_ops: OpsFactory, database_url: str, serve: Serve) -> tuple[OpsLoop, LiveServer]:
    ops = make_ops(database_url, playbooks=[IDENTIFY_PLAYBOOK], use_clock=False)
    ops.ingest.add_source(
        "name: website\nkind: segment\n", "website.yaml", secret=WRITE_KEY, actor="t"
    )
    return ops, serve(ops)


def segment_client(server: LiveServer, key: str = WRITE_KEY, **options: object) -> Client:
    """Segment's client, unchanged but for the host; sync mode posts each call at once."""
    settings: dict[str, object] = {"sync_mode": True, "max_retries": 0, **options}
    return Client(key, host=server.url, **settings)


def basic(key: str = WRITE_KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def events(ops: OpsLoop, **filters: str) -> list[dict]:
    return list(reversed(ops.ingest.list_events(limit=500, **filters)))


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def test_every_call_from_segments_client_becomes_an_event(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    analytics = segment_client(server)
    analytics.page(anonymous_id="anon-1", name="Home", properties={"path": "/", "url": "/"})
    analytics.track(user_id="42", event="Order Completed", properties={"revenue": 49.9})
    analytics.identify(user_id="42", traits={"email": "ana@example.com", "company_size": 40})
    analytics.group(user_id="42", group_id="acme", traits={"plan": "pro"})
    analytics.screen(user_id="42", name="Settings")
    analytics.alias(previous_id="legacy-9", user_id="42")

    stored = [(e["type"], e["subject"], e["source"]) for e in events(ops)]
    assert stored == [
        ("page.viewed", "visitor:anon-1", "website"),
        ("track.order_completed", "lead:42", "website"),
        ("identify", "lead:42", "website"),
        ("group.joined", "lead:42", "website"),
        ("group.updated", "account:acme", "website"),
        ("screen.viewed", "lead:42", "website"),
        ("alias", "lead:42", "website"),
    ]
    order = events(ops, type="track.order_completed")[0]
    assert order["payload"]["revenue"] == 49.9
    assert order["payload"]["call"]["context"]["library"]["name"] == "analytics-python"
    assert ops.ingest.get_entity("lead:42")["traits"]["email"] == "ana@example.com"


def test_a_gzipped_batch_from_the_queueing_client_is_stored_whole(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    analytics = segment_client(server, sync_mode=False, gzip=True, upload_size=100)
    for n in range(30):
        analytics.track(anonymous_id="anon-2", event="Clicked", properties={"n": n})
    analytics.flush()
    analytics.join()
    clicks = events(ops, type="track.clicked")
    assert sorted(e["payload"]["n"] for e in clicks) == list(range(30))
    quality = ops.ingest.source_quality("website")
    assert (quality.received, quality.stored, quality.rejected) == (30, 30, 0)


def test_a_repeated_message_id_is_stored_once(site: tuple[OpsLoop, LiveServer]) -> None:
    ops, server = site
    analytics = segment_client(server)
    for _ in range(2):  # a library retrying after a lost answer sends the same messageId
        analytics.track(user_id="42", event="Signed Up", message_id="msg-1")
    assert len(events(ops, type="track.signed_up")) == 1

    call = {"type": "track", "userId": "42", "event": "Signed Up", "messageId": "msg-1"}
    with httpx.Client(base_url=server.url) as http:
        again = http.post("/v1/track", json=call, headers=basic())
    assert again.status_code == 200
    assert again.json() == {"success": True, "stored": 0, "duplicates": 1, "rejected": 0}


def test_a_group_call_keeps_a_profile_of_the_account(site: tuple[OpsLoop, LiveServer]) -> None:
    ops, server = site
    analytics = segment_client(server)
    analytics.group(user_id="42", group_id="acme", traits={"plan": "pro", "employees": 40})
    assert ops.ingest.get_entity("account:acme")["traits"] == {"plan": "pro", "employees": 40}
    [joined] = events(ops, type="group.joined")
    assert (joined["subject"], joined["payload"]["group"]) == ("lead:42", "account:acme")

    # A later call from another member merges into the same profile, as identify does.
    analytics.group(user_id="43", group_id="acme", traits={"employees": 41})
    assert ops.ingest.get_entity("account:acme")["traits"] == {"plan": "pro", "employees": 41}
    updates = events(ops, subject="account:acme")
    assert [(e["type"], e["payload"]["member"]) for e in updates] == [
        ("group.updated", "lead:42"),
        ("group.updated", "lead:43"),
    ]

    # Without traits the call only says the user joined: nothing about the account.
    analytics.group(user_id="44", group_id="solo")
    assert events(ops, subject="lead:44")[0]["payload"]["group"] == "account:solo"
    assert events(ops, subject="account:solo") == []
    with pytest.raises(NotFound):
        ops.ingest.get_entity("account:solo")


def test_a_repeated_group_call_stores_both_its_events_once(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    analytics = segment_client(server)
    for _ in range(2):
        analytics.group(user_id="42", group_id="acme", traits={"plan": "pro"}, message_id="g-1")
    assert [e["type"] for e in events(ops)] == ["group.joined", "group.updated"]

    call = {
        "type": "group",
        "userId": "42",
        "groupId": "acme",
        "traits": {"plan": "pro"},
        "messageId": "g-1",
    }
    with httpx.Client(base_url=server.url) as http:
        again = http.post("/v1/group", json=call, headers=basic())
    assert again.status_code == 200
    assert again.json() == {"success": True, "stored": 0, "duplicates": 2, "rejected": 0}
    assert len(events(ops)) == 2


def test_an_unknown_or_disabled_write_key_is_refused(site: tuple[OpsLoop, LiveServer]) -> None:
    ops, server = site
    with pytest.raises(APIError) as refused:
        segment_client(server, key="wk_wrong").track(user_id="1", event="Signed Up")
    assert refused.value.status == 401
    assert refused.value.code == "unauthorized"
    assert "unknown write key" in refused.value.message

    ops.ingest.set_source_enabled("website", False, actor="t")
    with pytest.raises(APIError) as disabled:
        segment_client(server).track(user_id="1", event="Signed Up")
    assert disabled.value.status == 401
    assert events(ops) == []


def test_an_invalid_call_is_refused_naming_the_field_and_kept(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    with httpx.Client(base_url=server.url) as http:
        answer = http.post("/v1/track", json={"userId": "42", "properties": {}}, headers=basic())
    assert answer.status_code == 400
    body = answer.json()
    assert body["success"] is False
    assert body["code"] == "invalid_input"
    assert body["message"] == "event: is required in a track call: the name of what happened"
    held = ops.ingest.get_quarantined(body["quarantine_id"])
    assert held["source"] == "website"
    assert '"userId":"42"' in held["body"]
    assert events(ops) == []


def test_oversize_calls_and_batches_are_refused_like_segment_does(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    big = {"type": "track", "userId": "42", "event": "Big", "properties": {"x": "y" * 33_000}}
    with httpx.Client(base_url=server.url) as http:
        call = http.post("/v1/track", json=big, headers=basic())
        assert call.status_code == 400
        assert call.json()["code"] == "too_large"
        assert "a call may be at most 32 KB" in call.json()["message"]

        calls = [{**big, "properties": {"x": "y" * 30_000}, "messageId": str(n)} for n in range(18)]
        batch = http.post("/v1/batch", json={"batch": calls}, headers=basic())
        assert batch.status_code == 400
        assert batch.json()["code"] == "too_large"
        assert "at most 512000 bytes" in batch.json()["message"]
        assert batch.json()["quarantine_id"]
    assert events(ops) == []


def test_a_bad_call_in_a_batch_is_kept_aside_and_the_rest_are_stored(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    batch = {
        "batch": [
            {"type": "page", "anonymousId": "a", "messageId": "1"},
            {"type": "track", "anonymousId": "a", "messageId": "2"},  # no event name
            {"type": "track", "anonymousId": "a", "messageId": "3", "event": "Clicked"},
        ]
    }
    with httpx.Client(base_url=server.url) as http:
        answer = http.post("/v1/batch", json=batch, headers=basic())
    assert answer.status_code == 200
    body = answer.json()
    assert (body["stored"], body["rejected"]) == (2, 1)
    [error] = body["errors"]
    assert error["where"] == "batch[1]"
    assert "event: is required in a track call" in error["reason"]
    assert '"messageId":"2"' in ops.ingest.get_quarantined(error["quarantine_id"])["body"]
    assert [e["type"] for e in events(ops)] == ["page.viewed", "track.clicked"]


def test_a_browser_call_with_the_key_in_its_body_is_allowed_from_any_origin(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    origin = {"Origin": "https://shop.example"}
    call = {"writeKey": WRITE_KEY, "anonymousId": "b-1", "properties": {"path": "/pricing"}}
    with httpx.Client(base_url=server.url) as http:
        # analytics.js posts text/plain to the call's first letter, so no preflight is needed.
        answer = http.post(
            "/v1/p", content=json.dumps(call), headers={**origin, "Content-Type": "text/plain"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == "*"
        preflight = http.options(
            "/v1/track",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "Authorization" in preflight.headers["access-control-allow-headers"]
        refused = http.post("/v1/p", content=json.dumps({**call, "writeKey": "x"}), headers=origin)
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "*"  # the page can read why
    [page] = events(ops)
    assert (page["type"], page["subject"], page["payload"]["path"]) == (
        "page.viewed",
        "visitor:b-1",
        "/pricing",
    )
    assert "writeKey" not in json.dumps(page["payload"])


def test_a_visitors_page_views_count_for_the_lead_they_become(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    analytics = segment_client(server)
    for days, path in ((6, "/"), (5, "/pricing"), (2, "/pricing")):
        analytics.page(anonymous_id="anon-7", properties={"path": path}, timestamp=days_ago(days))
    analytics.page(anonymous_id="someone-else", properties={"path": "/pricing"})

    # The visitor signs up: the identify call carries both ids, and the playbook deciding on it
    # counts the page views made before anyone knew who they were.
    analytics.identify(user_id="42", anonymous_id="anon-7", traits={"company_size": 40})
    [decision] = ops.decide.list_decisions(subject="lead:42")
    features = ops.decide.decision_detail(decision["id"])["inputs"]["features"]
    assert (features["visits_7d"], features["pricing_views_30d"]) == (3, 2)

    # Earlier events keep their subject; later anonymous calls are filed under the lead.
    assert len(events(ops, subject="visitor:anon-7")) == 3
    analytics.track(anonymous_id="anon-7", event="Viewed Demo")
    assert events(ops, subject="lead:42")[-1]["type"] == "track.viewed_demo"


def test_an_alias_joins_an_earlier_id_to_the_user(site: tuple[OpsLoop, LiveServer]) -> None:
    ops, server = site
    analytics = segment_client(server)
    analytics.page(anonymous_id="anon-8", properties={"path": "/pricing"}, timestamp=days_ago(1))
    analytics.alias(previous_id="anon-8", user_id="77")
    analytics.identify(user_id="77", traits={"company_size": 12})
    [decision] = ops.decide.list_decisions(subject="lead:77")
    assert (
        ops.decide.decision_detail(decision["id"])["inputs"]["features"]["pricing_views_30d"] == 1
    )


def test_the_snippet_is_small_first_party_and_has_install_text(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    _, server = site
    with httpx.Client(base_url=server.url) as http:
        script = http.get("/t.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert len(script.content) < 4096
    code = script.text.split("*/", 1)[1]
    assert "://" not in code  # it only talks to the OpsLoop that served it
    assert tracking.install_snippet("https://ops.example/", "wk_1") == (
        '<script src="https://ops.example/t.js" data-key="wk_1" async></script>'
    )


def test_a_gzip_header_on_a_body_that_is_not_gzip_is_refused(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    _, server = site
    body = gzip.compress(json.dumps({"batch": [{"type": "page", "anonymousId": "z"}]}).encode())
    with httpx.Client(base_url=server.url) as http:
        good = http.post("/v1/batch", content=body, headers={**basic(), "Content-Encoding": "gzip"})
        bad = http.post("/v1/batch", content=b"{}", headers={**basic(), "Content-Encoding": "gzip"})
    assert good.status_code == 200
    assert good.json()["stored"] == 1
    assert bad.status_code == 400
    assert "is not gzip" in bad.json()["message"]


def test_a_call_a_contract_refuses_is_held_and_replayed_once_the_contract_is_fixed(
    site: tuple[OpsLoop, LiveServer],
) -> None:
    ops, server = site
    strict = """\
contracts:
  track.order_completed:
    fields:
      revenue: {type: money, currency: currency, required: true}
      currency: {type: currency, required: true}
"""
    apply_contracts(ops.ctx, strict, "orders.yaml", actor="test")
    call = {
        "type": "track",
        "userId": "42",
        "event": "Order Completed",
        "messageId": "m-77",
        "properties": {"revenue": 20},
    }
    refused = httpx.post(f"{server.url}/v1/track", json=call, headers=basic())
    assert refused.status_code == 400
    assert "currency" in refused.json()["message"]
    [item] = ops.ingest.quarantine_items()

    # The shop sends revenue in its one currency: the owner relaxes the contract.
    relaxed = strict.replace("{type: money, currency: currency, required: true}", "number")
    apply_contracts(
        ops.ctx,
        relaxed.replace("{type: currency, required: true}", "currency"),
        "o.yaml",
        actor="t",
    )
    replayed = ops.ingest.replay_quarantined(item["id"], actor="test")
    assert replayed.ok, replayed.reason
    [order] = events(ops, type="track.order_completed")
    assert (order["subject"], order["payload"]["revenue"]) == ("lead:42", 20)
