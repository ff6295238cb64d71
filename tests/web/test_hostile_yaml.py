"""Hostile bodies over real HTTP: the "billion laughs" YAML bomb and its kin are refused with
a 4xx naming the line by every endpoint that reads YAML, and the server lives on; bodies over
`max_request_bytes` get 413 before they are parsed (the ingest routes keep their own limit);
JSON answers carry `nosniff` and private ones `no-store`; and `curl -d` JSON is read by every
JSON route whatever its content type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from opsloop.core.yaml_source import ALIASES_REFUSED, DEPTH_REFUSED, MERGE_REFUSED
from opsloop.service import OpsLoop
from tests.conftest import LiveServer, OpsFactory, Serve, lead_playbook
from tests.hostile_yaml import bomb, refuse_before_sending_a_bomb
from tests.people import OWNER, REVIEWER, SignIn, add_people

LEAD = "lead-qualification"
FORM = {"content-type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
SOURCE = "name: shop\nkind: webhook\nverify: none\nmapping: stripe\n"


@pytest.fixture
def site(make_ops: OpsFactory, sqlite_url: str, serve: Serve) -> LiveServer:
    """The lead playbook, the three people, and the default limits."""
    ops = make_ops(sqlite_url, playbooks=[lead_playbook()], use_clock=False)
    add_people(ops)
    return serve(ops)


@pytest.fixture
def small_site(make_ops: OpsFactory, sqlite_url: str, serve: Serve) -> LiveServer:
    """Request bodies limited to 2 KiB; ingest bodies to the default 1 MiB."""
    ops = make_ops(sqlite_url, use_clock=False, max_request_bytes=2048)
    add_people(ops)
    return serve(ops)


@pytest.fixture
def admin(site: LiveServer) -> Iterator[httpx.Client]:
    with site.client() as client:
        yield client


def bearer(ops: OpsLoop, scope: str) -> dict[str, str]:
    token = ops.accounts.create_token(f"{scope}-token", scope, actor="tests").token
    return {"Authorization": f"Bearer {token}"}


def alias_refused(answer: httpx.Response, file: str) -> None:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_playbook"
    assert body["problems"] == [{"file": file, "line": 1, "field": "", "message": ALIASES_REFUSED}]


def alive(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok"}


def too_large(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 413, answer.text
    body: dict[str, Any] = answer.json()
    assert body["error"] == "too_large"
    [error] = body["errors"]
    assert error["field"] == "body"
    assert "OPSLOOP_MAX_REQUEST_BYTES" in error["message"]
    return body


# --- the bomb and its kin ----------------------------------------------------------------------


def test_the_nine_level_bomb_is_refused_by_every_yaml_endpoint_and_the_server_lives(
    site: LiveServer, admin: httpx.Client
) -> None:
    refuse_before_sending_a_bomb()
    text = bomb(9)
    contracts = admin.get("/api/contracts").json()["contracts"]
    reader = bearer(site.ops, "read")  # the least a caller needs to reach the parser
    alias_refused(
        admin.post("/api/playbooks/validate", content=text, headers=reader), "playbook.yaml"
    )
    alias_refused(admin.post("/api/playbooks?file=bomb.yaml", content=text), "bomb.yaml")
    alias_refused(
        admin.post("/api/playbooks/backtest", json={"source": text, "file": "d.yaml"}), "d.yaml"
    )
    alias_refused(admin.put("/api/contracts?file=c.yaml", content=text), "c.yaml")
    alias_refused(admin.put("/api/sources/shop", content=text), "shop.yaml")

    alive(site)
    assert [p["name"] for p in site.ops.decide.list_playbooks()] == [LEAD]
    assert site.ops.ingest.list_sources() == []
    assert admin.get("/api/contracts").json()["contracts"] == contracts


def test_the_bomb_pasted_in_the_playbook_editor_is_refused_at_its_line(
    site: LiveServer, signed: SignIn
) -> None:
    refuse_before_sending_a_bomb()
    text = bomb(9)
    owner, csrf = signed(site.url, OWNER)
    # The editor's check answers 422 listing the problem (htmx is told to swap 422s in).
    check = owner.post(
        "/playbooks/validate",
        data={"source": text},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert check.status_code == 422
    assert '<li data-line="1">' in check.text
    assert ALIASES_REFUSED in check.text

    saved = owner.post("/playbooks/save", data={"source": text, "csrf_token": csrf})
    assert saved.status_code == 422
    assert ALIASES_REFUSED in saved.text

    reviewer, csrf = signed(site.url, REVIEWER)
    backtest = reviewer.post(
        "/playbooks/backtest",
        data={"source": text},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert backtest.status_code == 422
    assert "fix them before backtesting it" in backtest.text
    assert ALIASES_REFUSED in backtest.text

    alive(site)
    assert site.ops.decide.get_playbook(LEAD)["version"] == 1


@pytest.mark.parametrize(
    ("text", "line", "said"),
    [
        ("name: x\ntrigger:\n  events: a.b\n<<: {subject: lead}\n", 4, MERGE_REFUSED),
        ("[" * 10_000, 1, DEPTH_REFUSED),
        ("name: x\nsubject: lead\x07\n", 2, "control character U+0007 (column 14)"),
        ("name: x\nsince: 2026-02-30\n", 2, "day is out of range for month"),
        ("name: x\nkeep: !!bool maybe\n", 2, "cannot read 'maybe' as true or false"),
    ],
)
def test_merge_keys_deep_nesting_control_characters_and_bad_values_get_422_with_the_line(
    admin: httpx.Client, text: str, line: int, said: str
) -> None:
    answer = admin.post("/api/playbooks/validate", content=text.encode())
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["problems"]
    assert problem["line"] == line
    assert said in problem["message"]


# --- body size ---------------------------------------------------------------------------------


def test_a_yaml_body_over_the_default_limit_gets_413_before_it_is_parsed(
    site: LiveServer, admin: httpx.Client
) -> None:
    assert site.ops.settings.max_request_bytes == 1024 * 1024
    # Parsed, this would be a 422 (nested too deep): the 413 shows it never was.
    body = too_large(admin.post("/api/playbooks/validate", content=b"[" * (1024 * 1024 + 1)))
    assert body["message"] == (
        "body: the body is 1048577 bytes; the limit is 1048576 bytes (OPSLOOP_MAX_REQUEST_BYTES)"
    )
    # Exactly at the limit it is read (and refused for what it says).
    at_limit = admin.post("/api/playbooks/validate", content=b"[" * (1024 * 1024))
    assert at_limit.status_code == 422
    assert at_limit.json()["problems"][0]["message"] == DEPTH_REFUSED
    alive(site)


def test_a_streamed_body_is_cut_off_once_it_passes_the_limit(small_site: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(8):
            yield b"#" * 1024

    with small_site.client() as admin:
        body = too_large(admin.post("/api/playbooks/validate", content=chunks()))
        assert "is over 2048 bytes" in body["message"]
        small = admin.post("/api/playbooks/validate", content=iter([b"name: x\n", b"x: 1\n"]))
        assert small.status_code == 422, "a small streamed body is read as usual"
        assert small.json()["error"] == "invalid_playbook"


def test_json_commands_yaml_routes_and_forms_all_have_the_limit(
    small_site: LiveServer, signed: SignIn
) -> None:
    big = "x" * 3000
    with small_site.client() as admin:
        # Malformed JSON would be a 422 if it were parsed.
        too_large(admin.post("/api/tokens", content=b"{" + big.encode()))
        too_large(admin.post("/api/playbooks/backtest", json={"source": big}))
        too_large(admin.put("/api/contracts", content=big))
        too_large(admin.put("/api/sources/shop", content=big))
        assert admin.get("/api/tokens").json()["tokens"][0]["name"] == "tests"

    owner, csrf = signed(small_site.url, OWNER)
    too_large(owner.post("/playbooks/save", data={"source": big, "csrf_token": csrf}))
    assert small_site.ops.decide.list_playbooks() == []
    alive(small_site)


def test_the_ingest_routes_keep_their_own_larger_limit(small_site: LiveServer) -> None:
    events = [
        {"type": "note.added", "subject": f"lead:{n}", "payload": {"text": "x" * 500}}
        for n in range(10)
    ]
    body = json.dumps({"events": events}).encode()
    assert len(body) > small_site.ops.settings.max_request_bytes
    with small_site.client() as admin:
        stored = admin.post("/api/events", content=body)
        assert stored.status_code == 201, stored.text
        assert stored.json()["created"] == 10


# --- headers -----------------------------------------------------------------------------------


def test_json_answers_are_nosniff_and_private_ones_are_never_stored(
    site: LiveServer, admin: httpx.Client, signed: SignIn
) -> None:
    health = httpx.get(f"{site.url}/healthz")
    assert health.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in health.headers, "a public answer may be cached"

    for answer in (
        admin.get("/api/me"),
        admin.get(f"/api/playbooks/{LEAD}"),
        admin.get("/openapi.json"),
        httpx.get(f"{site.url}/api/playbooks"),  # refused: still private
        admin.post("/api/playbooks/validate", content=b"name: [\n"),
    ):
        assert answer.headers["content-type"].startswith("application/json"), answer.text
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
        assert answer.headers["cache-control"] == "no-store", answer.request.url

    metrics = admin.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["cache-control"] == "no-store"

    owner, _ = signed(site.url, OWNER)
    page = owner.get("/playbooks")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"

    snippet = httpx.get(f"{site.url}/t.js")
    assert snippet.headers["cache-control"] == "public, max-age=3600"


# --- content types -----------------------------------------------------------------------------


def test_curl_d_json_is_read_by_the_mode_and_backtest_routes(
    site: LiveServer, admin: httpx.Client
) -> None:
    moved = admin.post(
        f"/api/playbooks/{LEAD}/mode", content=json.dumps({"mode": "shadow"}), headers=FORM
    )
    assert moved.status_code == 200, moved.text
    assert site.ops.decide.get_playbook(LEAD)["mode"] == "shadow"

    report = admin.post(
        "/api/playbooks/backtest", content=json.dumps({"playbook": LEAD}), headers=FORM
    )
    assert report.status_code == 201, report.text
    assert report.json()["playbook"] == LEAD

    wrong = admin.post(f"/api/playbooks/{LEAD}/mode", content=b'{"mode": ', headers=FORM)
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "body"
    unknown = admin.post(
        "/api/playbooks/backtest", content=json.dumps({"playbok": LEAD}), headers=FORM
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "playbok"


def test_a_source_is_read_as_yaml_whatever_its_content_type(admin: httpx.Client) -> None:
    for kind in ("application/json", "application/x-www-form-urlencoded", "text/plain"):
        answer = admin.put("/api/sources/shop", content=SOURCE, headers={"content-type": kind})
        assert answer.status_code in (200, 201), (kind, answer.text)
        assert answer.json()["name"] == "shop"


def test_the_schema_still_describes_the_bodies_read_by_hand(admin: httpx.Client) -> None:
    paths = admin.get("/openapi.json").json()["paths"]
    mode = paths["/api/playbooks/{name}/mode"]["post"]["requestBody"]["content"]
    assert set(mode["application/json"]["schema"]["properties"]) == {"mode", "actor", "reason"}
    backtest = paths["/api/playbooks/backtest"]["post"]["requestBody"]["content"]
    assert "source" in backtest["application/json"]["schema"]["properties"]
    source = paths["/api/sources/{name}"]["put"]["requestBody"]["content"]
    assert source["application/yaml"]["schema"] == {"type": "string"}
