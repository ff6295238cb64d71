"""A token sender's plain `POST /api/events` is answered by a short path
(opsloop/web/fast_ingest.py) instead of the whole middleware stack. A sender must not be able
to tell: the same request sent down the full stack (`?timeout=5` changes nothing else, and
any query string takes the full path) gets the same status, body and headers, for good input
and for every kind of refusal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from opsloop.service import OpsLoop
from opsloop.web import fast_ingest
from tests.conftest import LiveServer, OpsFactory, lead_playbook

FULL = "/api/events?timeout=5"
FAST = "/api/events"
HEADERS = ("content-type", "x-content-type-options", "cache-control", "www-authenticate")


@pytest.fixture
def server(
    make_ops: OpsFactory, sqlite_url: str, serve: Callable[[OpsLoop], LiveServer]
) -> LiveServer:
    ops = make_ops(
        sqlite_url,
        playbooks=[lead_playbook("recommend")],
        use_clock=False,
        max_body_bytes=4096,
        max_batch_events=5,
    )
    ops.start()
    return serve(ops)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the short path answered, so each comparison is known to compare two paths."""
    seen: list[str] = []
    original = fast_ingest._takes

    def counting(scope: Any) -> Any:
        took = original(scope)
        if took is not False:
            seen.append(scope["path"])
        return took

    monkeypatch.setattr(fast_ingest, "_takes", counting)
    return seen


def send(client: httpx.Client, path: str, body: bytes, **headers: str) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json", **headers})


def same_answer(fast: httpx.Response, full: httpx.Response, *, ids: bool = False) -> None:
    assert fast.status_code == full.status_code, (fast.text, full.text)
    for name in HEADERS:
        assert fast.headers.get(name) == full.headers.get(name), name
    fast_body, full_body = fast.json(), full.json()
    if not ids:  # each side stored its own event or quarantined its own copy
        for body in (fast_body, full_body):
            body.pop("id", None)
            body.pop("quarantine_id", None)
            for line in body.get("events", []):
                line.pop("id", None)
    assert fast_body == full_body


def scrubbed(value: Any) -> Any:
    """An answer without what differs between two stored copies: ids, times, subjects."""
    if isinstance(value, dict):
        return {
            key: scrubbed(item)
            for key, item in value.items()
            if not (key == "id" or key.endswith(("_id", "_at")) or key == "subject")
        }
    if isinstance(value, list):
        return [scrubbed(item) for item in value]
    return value


def event(key: str, **extra: Any) -> bytes:
    body = {"type": "lead.created", "subject": f"lead:{key}", "idempotency_key": key, **extra}
    return json.dumps(body).encode()


def test_good_input_gets_the_same_answer_both_ways(server: LiveServer, taken: list[str]) -> None:
    with server.client() as client:
        same_answer(send(client, FAST, event("a")), send(client, FULL, event("b")))
        # Sent again: a duplicate, 200, with the first one's id on both paths.
        again_fast, again_full = send(client, FAST, event("b")), send(client, FULL, event("a"))
        assert again_fast.status_code == 200
        same_answer(again_fast, again_full)
        batch = json.dumps({"events": [json.loads(event(f"c{i}")) for i in range(3)]}).encode()
        fast = send(client, FAST, batch)
        full = send(client, FULL, batch)
        assert fast.json()["created"] == 3
        assert full.json()["duplicates"] == 3
        assert [line["id"] for line in fast.json()["events"]] == [
            line["id"] for line in full.json()["events"]
        ]
    assert taken == [FAST] * 3
    stored = server.ops.ingest.list_events(limit=50)
    assert len([e for e in stored if e["subject"].startswith("lead:")]) == 5


def test_the_decision_in_the_answer_is_the_same_both_ways(
    server: LiveServer, taken: list[str]
) -> None:
    """`?wait=decision` (what an n8n webhook → score → respond workflow sends) answers with the
    event's decisions on the short path too; a query the route would refuse, or one it reads
    differently, takes the full path and gets the route's own answer."""
    lead = {"type": "lead.created", "traits": {"company_size": 50, "budget": 9000}}
    with server.client() as client:
        for fast_query, full_query in (
            ("?wait=decision", "?wait=decision&timeout=5.0"),
            ("?wait=decision&timeout=3", "?timeout=3.0&wait=decision"),
        ):
            answers = []
            for query, key in ((fast_query, "w1" + fast_query), (full_query, "w2" + fast_query)):
                body = json.dumps({**lead, "subject": f"lead:{key}", "idempotency_key": key})
                answers.append(send(client, FAST + query, body.encode()))
            fast, full = answers
            assert fast.status_code == full.status_code == 201
            [decision] = fast.json()["decisions"]
            assert decision["playbook"] == "lead-qualification"
            assert scrubbed(fast.json()) == scrubbed(full.json())
            for name in HEADERS:
                assert fast.headers.get(name) == full.headers.get(name), name
        for refused in ("?wait=later", "?wait=decision&timeout=31", "?wait=decision&timeout=0"):
            answer = send(client, FAST + refused, event("r"))
            assert answer.status_code == 422, refused
            assert answer.json()["error"] == "invalid_input"
    assert taken == [FAST] * 2


@pytest.mark.parametrize(
    ("case", "body", "status"),
    [
        ("not JSON", b'{"type": "lead.created", ', 422),
        ("a field wrong", b'{"type": "lead created", "subject": "lead:1"}', 422),
        ("too many events", json.dumps({"events": [{"type": "a.b", "subject": "x:1"}] * 6}), 422),
        (
            "over the size limit",
            json.dumps({"type": "a.b", "subject": "x:1", "p": "x" * 5000}),
            413,
        ),
    ],
)
def test_refused_input_gets_the_same_answer_and_is_kept_both_ways(
    server: LiveServer, taken: list[str], case: str, body: bytes | str, status: int
) -> None:
    raw = body.encode() if isinstance(body, str) else body
    with server.client() as client:
        fast, full = send(client, FAST, raw), send(client, FULL, raw)
        assert fast.status_code == status, case
        same_answer(fast, full)
        for answer in (fast, full):
            kept = client.get(f"/api/quarantine/{answer.json()['quarantine_id']}")
            assert kept.status_code == 200, case
    assert taken == [FAST]


def test_who_may_send_is_decided_the_same_both_ways(server: LiveServer, taken: list[str]) -> None:
    viewer = server.ops.accounts.create_token("dashboard", "read", actor="tests").token
    with httpx.Client(base_url=server.url) as anyone:
        for token, status in (("not-a-token", 401), (viewer, 403)):
            bearer = {"authorization": f"Bearer {token}"}
            fast = send(anyone, FAST, event("z"), **bearer)
            full = send(anyone, FULL, event("z"), **bearer)
            assert fast.status_code == status
            same_answer(fast, full, ids=True)
        # No token at all: the full path answers (there is nothing for the short one to check).
        assert send(anyone, FAST, event("z")).status_code == 401
    assert taken == [FAST, FAST]
    assert server.ops.ingest.list_events(subject="lead:z") == [], "nobody refused stored it"
