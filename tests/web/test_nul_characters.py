"""A NUL character anywhere a stranger can put one, over real HTTP on SQLite and PostgreSQL:
PostgreSQL stores none in text, so on today's code `?subject=%00` or a review reason holding
`\\u0000` came back as a 500 from the database driver (found by bench/api_fuzz.py). Each now gets
a 422 naming where the NUL is, nothing is changed, and the server goes on answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from opsloop.service import OpsLoop
from tests.conftest import LiveServer, OpsFactory, Serve, eventually, lead_playbook
from tests.people import OWNER, add_people, form_csrf
from tests.perception.json_api import TOKEN, JsonApi, orders, orders_source

SAID = "contains a NUL character (\\u0000), which cannot be stored; remove it"


@dataclass
class Site:
    ops: OpsLoop
    server: LiveServer


@pytest.fixture
def site(make_ops: OpsFactory, database_url: str, serve: Serve) -> Site:
    ops = make_ops(database_url, playbooks=[lead_playbook("recommend")], use_clock=False)
    add_people(ops)
    return Site(ops, serve(ops))


def refused_at(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_input"
    assert body["errors"] == [{"field": field, "message": SAID}]


def pending_decision(site: Site) -> dict[str, Any]:
    with site.server.client() as api:
        made = api.post(
            "/api/events",
            json={"type": "lead.created", "subject": "lead:7", "traits": {"email": "a@b.co"}},
        )
        assert made.status_code == 201, made.text
    site.ops.run_jobs()
    [decision] = site.ops.decide.list_decisions(status="pending")
    return decision


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/events?subject=lead%00x", "subject"),
        ("/api/decisions?playbook=lead-qualification&subject=%00", "subject"),
        ("/api/decisions?playbook=lead%00qualification", "playbook"),
        ("/api/quarantine?source=shop%00", "source"),
        ("/api/playbooks/lead%00qualification", "path"),
    ],
)
def test_a_nul_in_an_address_is_a_422_naming_the_parameter(
    site: Site, path: str, field: str
) -> None:
    with site.server.client() as api:
        refused_at(api.get(path), field)
        assert api.get("/api/events?subject=lead:x").status_code == 200, "the server lives on"


def test_a_review_whose_reason_holds_a_nul_is_refused_and_changes_nothing(site: Site) -> None:
    decision = pending_decision(site)
    review = f"/api/decisions/{decision['id']}/review"
    with site.server.client() as api:
        raw = json.dumps({"verdict": "reject", "reviewer": "sam", "reason": "spam\u0000"})
        refused = api.post(review, content=raw, headers={"content-type": "application/json"})
        refused_at(refused, "body")
        assert api.get(f"/api/decisions/{decision['id']}").json()["status"] == "pending"
        done = api.post(review, json={"verdict": "reject", "reviewer": "sam", "reason": "spam"})
        assert done.status_code == 200, done.text


def test_a_sign_in_form_with_a_nul_is_refused_and_the_real_sign_in_still_works(
    site: Site,
) -> None:
    with httpx.Client(base_url=site.server.url) as browser:
        csrf = form_csrf(browser.get("/login").text)
        form = {"email": f"{OWNER.email}\x00", "password": OWNER.password, "csrf_token": csrf}
        refused_at(browser.post("/login", data=form), "body")
        signed = browser.post("/login", data={**form, "email": OWNER.email})
        assert signed.status_code == 303, signed.text


def test_a_nul_in_a_yaml_value_is_a_422_naming_its_line(site: Site) -> None:
    text = lead_playbook().replace("description: Hot leads", 'description: "bad\\0"\n#')
    with site.server.client() as api:
        answer = api.post("/api/playbooks/validate", content=text.encode())
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["problems"]
    assert problem["line"] == text.splitlines().index('description: "bad\\0"') + 1
    assert "NUL character" in problem["message"]


@pytest.fixture
def api_with_nul() -> Iterator[JsonApi]:
    items = orders(3)
    items[1]["note"] = "gift\u0000wrap"
    with JsonApi(items=items) as server:
        yield server


def test_a_pulled_item_holding_a_nul_is_held_and_the_rest_stored(
    make_ops: OpsFactory, database_url: str, api_with_nul: JsonApi
) -> None:
    definition = orders_source(api_with_nul.url, note="note")
    ops = make_ops(database_url)
    ops.ingest.add_source(definition, "orders.yaml", secret=TOKEN, actor="test")

    run = ops.ingest.sync_source("orders", actor="test")
    assert (run.status, run.rows_in, run.events_stored, run.rejected) == ("ok", 3, 2, 1)
    assert sorted(e["subject"] for e in ops.ingest.list_events(limit=10)) == ["order:1", "order:3"]
    [held] = ops.ingest.list_quarantine(source="orders")
    assert "note: contains \\u0000 (a NUL character)" in held["reason"]
    eventually(lambda: ops.ingest.get_quarantined(held["id"])["status"] == "held")
