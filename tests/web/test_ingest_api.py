"""Ingest over real HTTP: what a sender sees for good and bad input, and what is kept."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from opsloop.service import OpsLoop
from tests.conftest import LiveServer, OpsFactory, lead_playbook

SECRET = "shop-secret-123"


@pytest.fixture
def api(
    make_ops: OpsFactory, sqlite_url: str, serve: Callable[[OpsLoop], LiveServer]
) -> httpx.Client:
    ops = make_ops(
        sqlite_url,
        playbooks=[lead_playbook("recommend")],
        use_clock=False,
        max_body_bytes=4096,
        max_batch_events=5,
        sources={
            "shop": {"secret": SECRET, "signature_header": "X-Shop-Signature"},
            "forms": {
                "type": "form.submitted",
                "subject": "'lead:' + data.email",
                "idempotency_key": "submission_id",
                "allow_unsigned": True,
            },
        },
    )
    ops.start()
    server = serve(ops)
    with server.client() as client:
        yield client


def quarantined(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    item = api.get(f"/api/quarantine/{body['quarantine_id']}")
    assert item.status_code == 200
    return item.json()


def test_a_201_means_the_event_is_stored(api: httpx.Client) -> None:
    event = {
        "type": "lead.created",
        "subject": "lead:1",
        "traits": {"email": "a@x.co"},
        "payload": {"form": "demo"},
    }
    response = api.post("/api/events", json=event)
    assert response.status_code == 201
    assert response.json()["status"] == "created"
    stored = api.get(f"/api/events/{response.json()['id']}").json()
    assert (stored["type"], stored["subject"], stored["payload"], stored["source"]) == (
        "lead.created",
        "lead:1",
        {"form": "demo"},
        "api",
    )
    assert api.get("/api/entities/lead:1").json()["traits"] == {"email": "a@x.co"}


def test_a_batch_answers_one_line_per_event(api: httpx.Client) -> None:
    events = [{"type": "page.viewed", "subject": f"lead:{i}"} for i in range(3)]
    response = api.post("/api/events", json={"events": events})
    assert response.status_code == 201
    body = response.json()
    assert (body["accepted"], body["created"], body["duplicates"]) == (3, 3, 0)
    assert [e["status"] for e in body["events"]] == ["created"] * 3


def test_the_same_idempotency_key_twice_stores_one_event(api: httpx.Client) -> None:
    event = {"type": "lead.created", "subject": "lead:2", "idempotency_key": "hubspot-991"}
    first = api.post("/api/events", json=event)
    second = api.post("/api/events", json=event)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == {"id": first.json()["id"], "status": "duplicate"}
    assert len(api.get("/api/events", params={"subject": "lead:2"}).json()["events"]) == 1


def test_malformed_json_is_refused_and_kept_in_quarantine(api: httpx.Client) -> None:
    raw = b'{"type": "lead.created", "subject": '
    response = api.post("/api/events", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_input"
    assert body["errors"][0]["field"] == "body"
    assert body["message"].startswith("body: malformed JSON")
    item = quarantined(api, body)
    assert item["body"] == raw.decode()
    assert item["reason"] == body["message"]
    assert item["source"] == "api"


def test_wrong_types_are_named_field_by_field(api: httpx.Client) -> None:
    response = api.post(
        "/api/events",
        json={
            "type": "lead.created",
            "subject": "lead:3",
            "payload": [1],
            "occurred_at": "yesterday",
        },
    )
    assert response.status_code == 422
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(fields) == {"payload", "occurred_at"}
    assert fields["payload"] == "must be a JSON object"
    assert quarantined(api, response.json())["errors"] == response.json()["errors"]
    assert api.get("/api/events").json()["events"] == [], "nothing from a refused body is stored"


def test_missing_and_misspelled_fields_get_a_hint(api: httpx.Client) -> None:
    response = api.post("/api/events", json={"subjct": "lead:4"})
    assert response.status_code == 422
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert fields["type"] == "is required"
    assert fields["subject"] == "is required"
    assert fields["subjct"] == "unknown field; did you mean 'subject'?"
    assert quarantined(api, response.json())["status"] == "held"


def test_a_bad_subject_says_how_to_write_one(api: httpx.Client) -> None:
    response = api.post(
        "/api/events",
        json={
            "events": [{"type": "a.b", "subject": "lead:1"}, {"type": "a.b", "subject": "lead1"}]
        },
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error == {
        "field": "events[1].subject",
        "message": "'lead1' is not a subject; write kind:key, e.g. lead:42",
    }
    assert api.get("/api/events").json()["events"] == [], "a batch is all or nothing"


def test_a_batch_over_the_limit_is_refused(api: httpx.Client) -> None:
    events = [{"type": "page.viewed", "subject": f"lead:{i}"} for i in range(6)]
    response = api.post("/api/events", json=events)
    assert response.status_code == 422
    assert response.json()["message"] == "events: a batch holds at most 5 events; this one has 6"


def test_an_oversized_body_gets_413_and_its_start_is_kept(api: httpx.Client) -> None:
    big = json.dumps(
        {"type": "page.viewed", "subject": "lead:1", "payload": {"blob": "x" * 10_000}}
    ).encode()
    response = api.post("/api/events", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "too_large"
    assert "the limit is 4096 bytes" in body["message"]
    item = quarantined(api, body)
    assert item["body_size"] == len(big)
    assert item["body"].startswith('{"type": "page.viewed"')


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_a_signed_webhook_with_the_right_signature_is_stored(api: httpx.Client) -> None:
    body = json.dumps(
        {"type": "order.completed", "subject": "customer:ana@x.co", "payload": {"amount": 42}}
    ).encode()
    response = api.post("/hooks/shop", content=body, headers={"X-Shop-Signature": sign(body)})
    assert response.status_code == 201
    stored = api.get(f"/api/events/{response.json()['id']}").json()
    assert stored["source"] == "shop"
    assert stored["payload"] == {"amount": 42}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing signature header X-Shop-Signature"),
        (
            {"X-Shop-Signature": "sha256=" + "0" * 64},
            "signature in X-Shop-Signature does not match the body",
        ),
    ],
)
def test_a_webhook_with_a_bad_or_missing_signature_is_refused(
    api: httpx.Client, headers: dict[str, str], message: str
) -> None:
    body = json.dumps({"type": "order.completed", "subject": "customer:ana@x.co"}).encode()
    response = api.post("/hooks/shop", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["message"] == message
    item = quarantined(api, response.json())
    assert item["source"] == "shop"
    assert item["reason"] == message
    assert api.get("/api/events").json()["events"] == []


def test_a_tampered_body_fails_the_signature_check(api: httpx.Client) -> None:
    body = json.dumps(
        {"type": "order.completed", "subject": "customer:ana@x.co", "payload": {"amount": 42}}
    ).encode()
    tampered = body.replace(b"42", b"4200")
    response = api.post("/hooks/shop", content=tampered, headers={"X-Shop-Signature": sign(body)})
    assert response.status_code == 401


def test_a_mapped_source_turns_any_json_into_an_event(api: httpx.Client) -> None:
    body = {"submission_id": "s-77", "data": {"email": "zoe@x.co", "plan": "pro"}}
    first = api.post("/hooks/forms", json=body)
    again = api.post("/hooks/forms", json=body)
    assert first.status_code == 201
    assert again.json() == {"id": first.json()["id"], "status": "duplicate"}
    stored = api.get(f"/api/events/{first.json()['id']}").json()
    assert (stored["type"], stored["subject"], stored["idempotency_key"]) == (
        "form.submitted",
        "lead:zoe@x.co",
        "s-77",
    )
    assert stored["payload"] == body


def test_a_mapped_source_names_what_is_missing(api: httpx.Client) -> None:
    response = api.post("/hooks/forms", json={"submission_id": "s-78", "data": {}})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "subject"
    assert "'lead:' + data.email" in error["message"]


def test_a_name_nobody_configured_is_not_found_and_nothing_is_kept(api: httpx.Client) -> None:
    response = api.post(
        "/hooks/zapier",
        json={"type": "lead.created", "subject": "lead:77"},
        headers={"Idempotency-Key": "zap-1"},
    )
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "opsloop source add" in response.json()["message"]
    assert api.get("/api/events").json()["events"] == []
    assert api.get("/api/quarantine").json()["items"] == []


def test_a_playbook_with_an_unknown_key_is_refused_with_its_line(api: httpx.Client) -> None:
    text = lead_playbook("recommend", **{"    within: 7d\n": "    withn: 7d\n"})
    response = api.post("/api/playbooks", content=text, params={"file": "lead.yaml"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_playbook"
    [problem] = body["problems"]
    line = text.splitlines().index("    withn: 7d") + 1
    assert problem == {
        "file": "lead.yaml",
        "line": line,
        "field": "features.visits_7d.withn",
        "message": "unknown field; did you mean 'within'?",
    }
    assert [p["version"] for p in api.get("/api/playbooks").json()["playbooks"]] == [1], (
        "nothing was applied"
    )


def test_health_readiness_and_prometheus(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready", "database": "sqlite"}
    api.post("/api/events", json={"type": "page.viewed", "subject": "lead:1"})
    text = api.get("/metrics").text
    assert "opsloop_events 1.0" in text
    assert "# TYPE opsloop_decisions gauge" in text


def test_a_nul_character_is_refused_rather_than_failing_in_the_database(api: httpx.Client) -> None:
    response = api.post(
        "/api/events",
        content=b'{"type": "a.b", "subject": "lead:1", "payload": {"note": "x\\u0000y"}}',
    )
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "body",
        "message": "contains \\u0000 (a NUL character), which cannot be stored; remove it",
    }
