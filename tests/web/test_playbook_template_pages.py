"""The playbook template gallery through the test client, signed in through the real /login
form, on SQLite and PostgreSQL: every built-in listed with what it needs; a template in plain
words; its backtest over the stored history (and over none); installing it in recommend mode,
once; owners only; unknown names are 404s. And the same through the JSON API."""

from __future__ import annotations

import json
import re

import pytest

from opsloop.service import OpsLoop
from opsloop.service.decide.playbook_templates import template_names
from tests.conftest import OpsFactory
from tests.people import OWNER, REVIEWER, VIEWER, add_people
from tests.web.test_playbook_pages import Browse, browse, leads, text_of

__all__ = ["browse"]  # a fixture used here


LEAD = "lead-qualification"
GALLERY = "/playbooks/_templates"


@pytest.fixture
def ops(make_ops: OpsFactory, database_url: str) -> OpsLoop:
    """The service with no playbook and the three people, once on each database."""
    service = make_ops(database_url)
    add_people(service)
    return service


def test_the_gallery_lists_every_built_in_playbook_with_what_it_needs(
    ops: OpsLoop, browse: Browse
) -> None:
    owner = browse(ops, OWNER)
    playbooks = owner.get("/playbooks")
    assert f'href="{GALLERY}"' in playbooks.text
    assert "Start from a template" in text_of(playbooks.text)

    page = owner.get(GALLERY)
    assert page.status_code == 200
    assert '<a href="/playbooks" aria-current="page">Playbooks</a>' in page.text
    cards = dict(
        zip(
            re.findall(r'data-testid="template-([a-z0-9-]+)"', page.text),
            [text_of(card) for card in page.text.split('data-testid="template-')[1:]],
            strict=True,
        )
    )
    assert list(cards) == template_names()
    assert set(cards) >= {LEAD, "customer-onboarding", "support-triage", "support-triage-rules"}
    assert "Hot leads go to sales with a follow-up task" in cards[LEAD]
    assert "Runs on lead.created, demo.requested about a lead" in cards[LEAD]
    assert "Needs the chat channel 'sales'" in cards[LEAD]
    assert "Needs a language model: set the language model's address" in cards["support-triage"]
    assert "Open Settings" in cards["support-triage"]
    assert "no language model" in cards["support-triage-rules"]
    assert "language model:" not in cards["support-triage-rules"]
    assert "Installed as" not in page.text
    assert page.text.count('href="/settings#llm"') == 1


def test_a_template_reads_in_plain_words_with_the_yaml_it_installs(
    ops: OpsLoop, browse: Browse
) -> None:
    page = browse(ops, OWNER).get(f"{GALLERY}/{LEAD}")
    assert page.status_code == 200
    words = text_of(page.text)
    for said in (
        "Runs when a lead.created or demo.requested event arrives about a lead.",
        "Page views in the last 7 days (visits_7d) how many page.viewed events in the last 7 days",
        "Installed in recommend mode: every decision waits for a person's review",
        "Backtest on my history",
        "Install in recommend mode",
    ):
        assert said in words, said
    assert "mode: recommend" in words
    assert 'action="/playbooks/_templates/lead-qualification/install"' in page.text
    assert 'hx-post="/playbooks/_templates/lead-qualification/backtest"' in page.text

    triage = text_of(browse(ops, OWNER).get(f"{GALLERY}/support-triage").text)
    assert "it cannot be installed without a language model" in triage


def test_a_backtest_of_a_template_shows_the_report_over_the_stored_history(
    ops: OpsLoop, browse: Browse
) -> None:
    leads(ops, 10)
    owner = browse(ops, OWNER)
    report = owner.htmx(f"{GALLERY}/{LEAD}/backtest", {"since": "30d"})
    assert report.status_code == 200
    assert "<html" not in report.text
    words = text_of(report.text)
    assert "Backtest of lead-qualification: draft" in words
    assert "10 decisions from 10 triggering events; 0 would wait for a person." in words
    assert "(the last 30 days)" in words
    assert "This playbook has no saved version yet, so there is nothing to compare with." in words
    [chart] = re.findall(
        r'<script type="application/json" id="backtest-chart-\d+">(.*?)</script>', report.text, re.S
    )
    [rows] = json.loads(chart)["datasets"].values()
    assert {(r["name"], r["decisions"]) for r in rows} == {("hot", 0), ("nurture", 10)}
    assert ops.decide.list_playbooks() == [], "a backtest installs nothing"

    # Without JavaScript: the template's page with the report on it, and the install button.
    page = owner.post(f"{GALLERY}/{LEAD}/backtest", {"since": "90d"})
    assert page.status_code == 200
    words = text_of(page.text)
    assert "10 decisions from 10 triggering events" in words
    assert "Install in recommend mode" in words
    assert '<option value="90d" selected>' in page.text

    bad = owner.htmx(f"{GALLERY}/{LEAD}/backtest", {"since": "soon"})
    assert bad.status_code == 422
    assert "'soon' is neither a duration back from now" in text_of(bad.text)


def test_a_backtest_over_no_history_says_so_in_words(ops: OpsLoop, browse: Browse) -> None:
    report = browse(ops, OWNER).htmx(f"{GALLERY}/support-triage-rules/backtest", {"since": "90d"})
    assert report.status_code == 200
    words = text_of(report.text)
    assert (
        "Nothing to replay: none of your stored events in the last 90 days starts this playbook "
        "(it starts on ticket.created)." in words
    )
    assert "backtest-chart-" not in report.text
    assert "<table" not in report.text
    assert "null" not in words


def test_installing_puts_it_in_recommend_mode_and_a_second_install_is_refused(
    ops: OpsLoop, browse: Browse
) -> None:
    owner = browse(ops, OWNER)
    installed = owner.post(f"{GALLERY}/{LEAD}/install", {})
    assert installed.status_code == 303
    assert installed.headers["location"] == f"/playbooks/{LEAD}?installed=true"
    playbook = owner.get(installed.headers["location"])
    assert "Installed from the template in recommend mode" in text_of(playbook.text)
    record = ops.decide.get_playbook(LEAD)
    assert (record["mode"], record["version"]) == ("recommend", 1)
    assert record["versions"][0]["created_by"] == OWNER.email

    again = owner.post(f"{GALLERY}/{LEAD}/install", {})
    assert again.status_code == 409
    words = text_of(again.text)
    assert (
        "lead-qualification is already installed (version 1, recommend mode), so it was not "
        "installed again. Open lead-qualification to change it." in words
    )
    assert f'href="/playbooks/{LEAD}"' in again.text
    assert len(ops.decide.get_playbook(LEAD)["versions"]) == 1

    gallery = text_of(owner.get(GALLERY).text)
    assert "Installed as lead-qualification: recommend version 1." in gallery


def test_with_htmx_an_install_opens_the_playbook_and_a_refusal_is_the_box(
    ops: OpsLoop, browse: Browse
) -> None:
    owner = browse(ops, OWNER)
    first = owner.htmx(f"{GALLERY}/customer-onboarding/install", {})
    assert first.status_code == 200
    assert first.headers["hx-redirect"] == "/playbooks/customer-onboarding?installed=true"
    second = owner.htmx(f"{GALLERY}/customer-onboarding/install", {})
    assert second.status_code == 409
    assert "<html" not in second.text
    assert "customer-onboarding is already installed" in text_of(second.text)

    refused = owner.htmx(f"{GALLERY}/support-triage/install", {})
    assert refused.status_code == 422
    assert "Not installed: This playbook needs a language model" in text_of(refused.text)
    assert [p["name"] for p in ops.decide.list_playbooks()] == ["customer-onboarding"]


def test_reviewers_and_viewers_may_not_see_or_install_templates(
    ops: OpsLoop, browse: Browse
) -> None:
    for person in (REVIEWER, VIEWER):
        client = browse(ops, person)
        assert f'href="{GALLERY}"' not in client.get("/playbooks").text
        for answer in (
            client.get(GALLERY),
            client.get(f"{GALLERY}/{LEAD}"),
            client.post(f"{GALLERY}/{LEAD}/backtest", {}),
            client.post(f"{GALLERY}/{LEAD}/install", {}),
        ):
            assert answer.status_code == 403
            assert "needs the owner role" in answer.text
    assert ops.decide.list_playbooks() == []


@pytest.mark.parametrize("name", ["nope", "%2E%2E", "lead-qualification.yaml"])
def test_an_unknown_template_is_a_404_page(ops: OpsLoop, browse: Browse, name: str) -> None:
    owner = browse(ops, OWNER)
    for answer in (
        owner.get(f"{GALLERY}/{name}"),
        owner.post(f"{GALLERY}/{name}/backtest", {}),
        owner.post(f"{GALLERY}/{name}/install", {}),
    ):
        assert answer.status_code == 404, answer.text
        words = text_of(answer.text)
        assert "No such template" in words
        assert "the templates are customer-onboarding, lead-qualification" in words
    assert ops.decide.list_playbooks() == []


@pytest.mark.parametrize("path", ["..%2Fx", "..%2F..%2F..%2Fpyproject.toml", "%2E%2E%2Fbuiltin"])
def test_a_path_out_of_the_templates_is_not_found(ops: OpsLoop, browse: Browse, path: str) -> None:
    owner = browse(ops, OWNER)
    for answer in (
        owner.get(f"{GALLERY}/{path}"),
        owner.post(f"{GALLERY}/{path}/install", {}),
        owner.get(f"/api/playbooks/_templates/{path}"),
        owner.client.post(
            f"/api/playbooks/_templates/{path}/install", headers={"X-CSRF-Token": owner.csrf}
        ),
    ):
        assert answer.status_code == 404, answer.text
        assert "[project]" not in answer.text
    assert ops.decide.list_playbooks() == []


def test_the_api_lists_shows_and_installs_templates(ops: OpsLoop, browse: Browse) -> None:
    owner, viewer, reviewer = (browse(ops, p) for p in (OWNER, VIEWER, REVIEWER))
    listed = viewer.get("/api/playbooks/_templates")
    assert listed.status_code == 200
    templates = listed.json()["templates"]
    assert [t["name"] for t in templates] == template_names()
    [lead] = [t for t in templates if t["name"] == LEAD]
    assert lead["installed"] is None
    assert lead["trigger"] == ["lead.created", "demo.requested"]
    assert {key: lead["needs"][0][key] for key in ("what", "ready")} == {
        "what": "the chat channel 'sales'",
        "ready": False,
    }
    detail = viewer.get(f"/api/playbooks/_templates/{LEAD}").json()
    assert "\nmode: recommend\n" in detail["source"]

    csrf = {"X-CSRF-Token": reviewer.csrf}
    refused = reviewer.client.post(f"/api/playbooks/_templates/{LEAD}/install", headers=csrf)
    assert refused.status_code == 403

    csrf = {"X-CSRF-Token": owner.csrf}
    made = owner.client.post(f"/api/playbooks/_templates/{LEAD}/install", headers=csrf)
    assert made.status_code == 201
    assert {k: made.json()[k] for k in ("name", "version", "mode")} == {
        "name": LEAD,
        "version": 1,
        "mode": "recommend",
    }
    again = owner.client.post(f"/api/playbooks/_templates/{LEAD}/install", headers=csrf)
    assert (again.status_code, again.json()["error"]) == (409, "conflict")
    assert "'lead-qualification' is already installed (version 1" in again.json()["message"]
    [lead] = [
        t for t in viewer.get("/api/playbooks/_templates").json()["templates"] if t["name"] == LEAD
    ]
    assert lead["installed"] == {"version": 1, "mode": "recommend", "as_shipped": True}

    for name in ("nope", "%2E%2E", "lead-qualification.yaml"):
        missing = viewer.get(f"/api/playbooks/_templates/{name}")
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
        assert "no playbook template named" in missing.json()["message"]
        gone = owner.client.post(f"/api/playbooks/_templates/{name}/install", headers=csrf)
        assert gone.status_code == 404
    # A playbook's own address still answers for its name.
    assert viewer.get(f"/api/playbooks/{LEAD}").json()["mode"] == "recommend"
