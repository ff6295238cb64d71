"""Every route's access rule, walked from the app's route table and checked over real HTTP:
anonymous requests are refused everywhere but the public routes, a viewer cannot review, and a
reviewer cannot change playbooks, training, accounts or tokens."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from opsloop.core.access import Permission
from opsloop.service import OpsLoop
from opsloop.settings import Settings
from opsloop.web import auth
from opsloop.web.app import create_app
from opsloop.web.pages.ui import PageOwner, page_router, render
from tests.conftest import LiveServer, OpsFactory, eventually, lead_playbook
from tests.people import OWNER, REVIEWER, VIEWER, add_people, sign_in

SAMPLES = {
    "decision_id": "1",
    "action_id": "1",
    "task_id": "1",
    "event_id": "1",
    "item_id": "1",
    "backtest_id": "1",
    "token_id": "1",
    "sequence_id": "1",
    "document_id": "1",
    "name": "lead-qualification",
    "subject": "lead:1",
    "source": "shop",
    "email": "nobody@example.com",
    "kind": "webhook",
    "group": "smtp",
    "week": "2026-W10",
}
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/hooks/{source}"),
    # Tracking: each call proves its source with a write key; browsers preflight it.
    ("POST", "/v1/{call}"),
    ("OPTIONS", "/v1/{call}"),
    ("GET", "/t.js"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/setup"),
    ("POST", "/setup"),
}


@dataclass(frozen=True)
class Rule:
    method: str
    path: str
    needed: Permission | None
    page: bool

    @property
    def url(self) -> str:
        def sample(match: re.Match[str]) -> str:
            name = match.group(1)
            assert name in SAMPLES, f"give the path parameter {{{name}}} a sample value"
            return SAMPLES[name]

        return re.sub(r"\{(\w+)\}", sample, self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def route_rules(app: FastAPI) -> list[Rule]:
    rules = []
    for route in auth.walk_routes(app):
        if not isinstance(route, APIRoute):
            continue
        [access] = auth.route_access(route)
        for method in sorted(route.methods - {"HEAD"}):
            rules.append(Rule(method, route.path, access.needed, access.page))
    return rules


@pytest.fixture
def site(
    make_ops: OpsFactory, database_url: str, serve: Callable[[OpsLoop], LiveServer]
) -> LiveServer:
    ops = make_ops(database_url, playbooks=[lead_playbook("recommend")], use_clock=False)
    add_people(ops)
    ops.start()
    return serve(ops)


@pytest.fixture
def sessions(site: LiveServer) -> Iterator[dict[str, tuple[httpx.Client, str]]]:
    signed = {person.role: sign_in(site.url, person) for person in (OWNER, REVIEWER, VIEWER)}
    yield signed
    for client, _ in signed.values():
        client.close()


def test_every_route_declares_its_rule_and_the_public_ones_are_these(tmp_path: Path) -> None:
    rules = {str(rule): rule for rule in route_rules(create_app(Settings(data_dir=tmp_path)))}

    public = {(r.method, r.path) for r in rules.values() if r.needed is None}
    assert public == PUBLIC_ROUTES
    assert rules["POST /api/decisions/{decision_id}/review"].needed == "review"
    assert rules["POST /api/events"].needed == "review"
    assert rules["POST /api/actions/{action_id}/cancel"].needed == "review"
    assert rules["POST /api/quarantine/{item_id}/replay"].needed == "admin"  # as on /sources
    for changes_playbooks_or_settings in (
        "POST /api/playbooks",
        "POST /api/playbooks/{name}/mode",
        "POST /api/playbooks/{name}/train",
        "POST /api/playbooks/_templates/{name}/install",
        "GET /playbooks/{name}/form",
        "GET /playbooks/_new/form",
        "POST /playbooks/_form/validate",
        "POST /playbooks/_form/save",
        "GET /api/tokens",
        "POST /api/tokens",
        "DELETE /api/tokens/{token_id}",
        "GET /api/users",
        "POST /api/users",
        "POST /api/users/{email}/disable",
    ):
        assert rules[changes_playbooks_or_settings].needed == "admin", changes_playbooks_or_settings
    api_reads = {name for name, r in rules.items() if r.method == "GET" and "/api/" in name}
    owner_reads = {"GET /api/tokens", "GET /api/users"}
    assert {name for name in api_reads if rules[name].needed == "read"} == api_reads - owner_reads
    assert rules["GET /account"].page
    assert not rules["GET /api/decisions"].page


def test_an_app_with_a_route_that_declares_no_rule_is_refused() -> None:
    app = create_app(Settings())

    @app.get("/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="GET /forgotten declares 0 access rules"):
        auth.check_routes(app)


def test_anonymous_requests_are_refused_by_every_route_that_is_not_public(
    site: LiveServer,
) -> None:
    checked = 0
    with httpx.Client(base_url=site.url, timeout=10) as anonymous:
        for rule in route_rules(site.app):
            if rule.needed is None:
                continue
            answer = anonymous.request(rule.method, rule.url)
            if rule.page:
                assert answer.status_code == 303, rule
                assert answer.headers["location"].startswith("/login"), rule
            else:
                assert answer.status_code == 401, (str(rule), answer.text)
                assert answer.json()["error"] == "unauthorized", rule
                assert answer.headers["www-authenticate"] == "Bearer", rule
            checked += 1
        # A bad token is refused, not taken for anonymous.
        bad = anonymous.get("/api/decisions", headers={"Authorization": "Bearer olt_nope"})
        assert (bad.status_code, bad.json()["message"]) == (
            401,
            "the API token is unknown or revoked",
        )
    assert checked > 30


def test_a_viewer_cannot_review_and_a_reviewer_cannot_change_playbooks_or_settings(
    site: LiveServer, sessions: dict[str, tuple[httpx.Client, str]]
) -> None:
    refused: dict[str, list[str]] = {"viewer": [], "reviewer": [], "owner": []}
    for role, (client, csrf) in sessions.items():
        allowed = {"viewer": ("read",), "reviewer": ("read", "review"), "owner": ()}[role]
        for rule in route_rules(site.app):
            if rule.needed is None or rule.page:
                continue
            # The CSRF token is sent, so a refusal is about the role alone.
            answer = client.request(rule.method, rule.url, headers={"X-CSRF-Token": csrf})
            if answer.status_code == 403:
                assert answer.json()["error"] == "forbidden", rule
                refused[role].append(str(rule))
            else:
                assert answer.status_code != 401, rule
                if role != "owner":
                    assert rule.needed in allowed, f"{role} was let through {rule}"
    rules = [r for r in route_rules(site.app) if not r.page]  # pages: checked in their tests
    assert set(refused["viewer"]) == {str(r) for r in rules if r.needed in ("review", "admin")}
    assert set(refused["reviewer"]) == {str(r) for r in rules if r.needed == "admin"}
    assert refused["owner"] == []
    assert "POST /api/decisions/{decision_id}/review" in refused["viewer"]
    assert "POST /api/playbooks/{name}/mode" in refused["reviewer"]
    assert "POST /api/tokens" in refused["reviewer"]
    message = (
        sessions["viewer"][0]
        .post(
            "/api/decisions/1/review",
            json={"verdict": "approve"},
            headers={"X-CSRF-Token": sessions["viewer"][1]},
        )
        .json()["message"]
    )
    assert message == (
        "your role viewer does not allow this; it needs the reviewer role or a token of scope review"
    )


def test_token_scopes_follow_the_same_rules(site: LiveServer) -> None:
    tokens = {
        scope: site.ops.accounts.create_token(f"{scope} token", scope, actor="tests").token
        for scope in ("read", "review")
    }
    for scope, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=site.url, headers=headers, timeout=10) as client:
            for rule in route_rules(site.app):
                if rule.needed is None or rule.page:
                    continue
                answer = client.request(rule.method, rule.url)
                too_low = rule.needed == "admin" or (scope == "read" and rule.needed == "review")
                assert (answer.status_code == 403) == too_low, (scope, str(rule), answer.text)


def test_people_do_what_their_role_allows(
    site: LiveServer, sessions: dict[str, tuple[httpx.Client, str]]
) -> None:
    reviewer, reviewer_csrf = sessions["reviewer"]
    created = reviewer.post(
        "/api/events",
        json={"type": "lead.created", "subject": "lead:77", "traits": {"email": "a@b.co"}},
        headers={"X-CSRF-Token": reviewer_csrf},
    )
    assert created.status_code == 201, created.text

    viewer, _ = sessions["viewer"]

    def pending() -> list[dict[str, object]]:
        answer = viewer.get("/api/decisions", params={"status": "pending", "subject": "lead:77"})
        return answer.json()["decisions"]  # type: ignore[no-any-return]

    [decision] = eventually(pending)
    approved = reviewer.post(
        f"/api/decisions/{decision['id']}/review",
        json={"verdict": "approve"},
        headers={"X-CSRF-Token": reviewer_csrf},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["reviews"][0]["reviewer"] == REVIEWER.email

    owner, owner_csrf = sessions["owner"]
    demoted = owner.post(
        "/api/playbooks/lead-qualification/mode",
        json={"mode": "shadow"},
        headers={"X-CSRF-Token": owner_csrf},
    )
    assert (demoted.status_code, demoted.json()["mode"]) == (200, "shadow")
    assert site.ops.decide.get_playbook("lead-qualification")["mode"] == "shadow"


def test_pages_send_strangers_to_sign_in_and_refuse_a_role_too_low(
    site: LiveServer, sessions: dict[str, tuple[httpx.Client, str]]
) -> None:
    # A page only owners may open, added the way docs in opsloop/web/pages/ui.py say.
    router = page_router()

    @router.get("/owners-only")
    def owners_only(request: Request, who: PageOwner) -> HTMLResponse:
        return render(request, "error.html", {"message": f"hello {who.name}"})

    site.app.include_router(router)

    with httpx.Client(base_url=site.url, timeout=10) as anonymous:
        answer = anonymous.get("/owners-only?tab=2")
        assert (answer.status_code, answer.headers["location"]) == (
            303,
            "/login?next=/owners-only%3Ftab%3D2",
        )
        htmx = anonymous.get("/owners-only", headers={"HX-Request": "true"})
        assert (htmx.status_code, htmx.headers["hx-redirect"]) == (401, "/login?next=/owners-only")

    viewer, _ = sessions["viewer"]
    refused = viewer.get("/owners-only")
    assert refused.status_code == 403
    assert "needs the owner role" in refused.text
    owner, _ = sessions["owner"]
    page = owner.get("/owners-only")
    assert page.status_code == 200
    assert f"hello {OWNER.email}" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_needs_no_account(site: LiveServer, path: str) -> None:
    assert httpx.get(f"{site.url}{path}", timeout=10).status_code == 200


def test_a_depends_marker_is_found_in_parameters_too() -> None:
    app = FastAPI()

    @app.get("/x")
    def x(who: auth.Reviewer) -> None:
        return None

    @app.get("/y", dependencies=[Depends(auth.READ)])
    def y() -> None:
        return None

    found = {r.path: auth.route_access(r) for r in app.routes if isinstance(r, APIRoute)}
    assert found == {"/x": [auth.REVIEW], "/y": [auth.READ]}
