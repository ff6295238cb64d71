"""The Sequences page and API: who is at which step, the next step and when; stopping one or
all. Through the app, signed in as the people who use it."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Clock
from tests.people import REVIEWER, VIEWER
from tests.service.test_sequences import ONBOARDING
from tests.web.test_playbook_pages import AppFor, Browse, app_for, browse, text_of

__all__ = ["app_for", "browse"]  # fixtures used here


def signups(ops: Any, clock: Clock, *names: str) -> None:
    events = [
        {
            "type": "signup.completed",
            "subject": f"customer:{name}",
            "occurred_at": clock.now.isoformat(),
            "traits": {"email": f"{name}@example.com"},
        }
        for name in names
    ]
    ops.ingest.body(json.dumps({"events": events}).encode())
    ops.run_jobs()


def test_the_page_shows_each_step_and_a_reviewer_stops_one_then_all(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    ops = app_for(ONBOARDING)
    signups(ops, clock, "ann", "bo", "cy")
    viewer = browse(ops, VIEWER).get("/sequences")
    assert viewer.status_code == 200
    table = text_of(viewer.text.split('data-testid="sequences"')[1].split("</table>")[0])
    assert table.count('email "Resources" in 1 day') == 3, table
    assert "customer:ann onboarding · onboard" in table
    assert "/sequences/" not in viewer.text.split("<table")[1], "a viewer cannot stop one"

    reviewer = browse(ops, REVIEWER)
    [ann] = ops.deliver.list_sequences(subject="customer:ann")
    stopped = reviewer.post(f"/sequences/{ann['id']}/stop", {"reason": "asked us to"})
    assert stopped.status_code == 303
    assert reviewer.get(stopped.headers["location"]).text.count("Stopped 1 sequence.") == 1
    one_subject = reviewer.post("/sequences/stop", {"reason": "called", "subject": "customer:bo"})
    assert one_subject.headers["location"] == "/sequences?stopped=1"
    everyone = reviewer.post("/sequences/stop", {"reason": "the offer ended"})
    assert everyone.headers["location"] == "/sequences?stopped=1"
    page = text_of(reviewer.get("/sequences?status=stopped").text)
    assert f"stopped by {REVIEWER.email}: asked us to" in page
    assert f"stopped by {REVIEWER.email}: the offer ended" in page
    assert f"stopped by {REVIEWER.email}: called" in page


def test_the_api_lists_filters_and_stops_sequences(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    ops = app_for(ONBOARDING)
    signups(ops, clock, "dee", "eve")
    reviewer = browse(ops, REVIEWER)
    listed = reviewer.get("/api/sequences?status=open").json()
    assert listed["counts"] == {"active": 2}
    assert {s["subject"] for s in listed["sequences"]} == {"customer:dee", "customer:eve"}
    assert reviewer.get("/api/sequences?status=sleeping").status_code == 422
    dee = next(s for s in listed["sequences"] if s["subject"] == "customer:dee")
    stop = reviewer.client.post(
        f"/api/sequences/{dee['id']}/stop",
        json={"reason": "moved to a person"},
        headers={"X-CSRF-Token": reviewer.csrf},
    )
    assert stop.json() == {"stopped": 1}
    again = reviewer.client.post(
        f"/api/sequences/{dee['id']}/stop",
        json={"reason": "twice"},
        headers={"X-CSRF-Token": reviewer.csrf},
    )
    assert again.json() == {"stopped": 0}
    missing = reviewer.client.post(
        f"/api/sequences/{dee['id']}/stop", json={}, headers={"X-CSRF-Token": reviewer.csrf}
    )
    assert missing.status_code == 422
    assert "reason" in missing.text
    left = reviewer.get("/api/sequences?subject=customer:dee").json()["sequences"]
    assert left[0]["status"] == "stopped"
    by_subject = reviewer.client.post(
        "/api/sequences/stop",
        json={"reason": "took over by phone", "subject": "customer:eve"},
        headers={"X-CSRF-Token": reviewer.csrf},
    )
    assert by_subject.json() == {"stopped": 1}
    assert reviewer.get("/api/sequences?status=open").json()["sequences"] == []


def test_the_dashboard_shows_completion_speed_and_the_funnel(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    from tests.service.test_completion import ONBOARDING as BUILT_IN

    ops = app_for(BUILT_IN.replace("mode: recommend", "mode: auto"))
    signups(ops, clock, "fay", "gil")
    page = browse(ops, VIEWER).get("/dashboard")
    assert page.status_code == 200
    section = page.text.split('data-testid="completion-customer-onboarding"')[1]
    section = text_of(section.split("</section>")[0])
    assert "customer-onboarding: time to project.created" in section
    assert "No customer has completed since the playbook went live yet." in section
    assert "Started: 2 Welcome: 2 wait 1 day: 2 Resources: 0" in section
    assert "Stopped because the customer acted: 0" in section
    api = browse(ops, VIEWER).get("/api/metrics/completion?playbook=customer-onboarding&weeks=2")
    assert api.json()["funnel"]["started"] == 2
    assert [c["started"] for c in api.json()["cohorts"]] == [0, 2]


def test_a_waiting_decision_shows_what_approving_would_send_and_when(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    ops = app_for(ONBOARDING.replace("mode: auto", "mode: recommend"))
    event = {
        "type": "signup.completed",
        "subject": "customer:77",
        "traits": {"email": "ana@acme.example", "name": "Ana Silva", "company": "Acme"},
    }
    ops.ingest.body(json.dumps(event).encode())
    reviewer = browse(ops, REVIEWER)
    inbox = text_of(reviewer.get("/inbox").text)
    assert "Ana Silva, Acme customer:77" in inbox, "people, not ids"
    assert "Sends an email to ana@acme.example: “Welcome” and 4 more" in inbox

    [waiting] = ops.decide.list_decisions(status="pending")
    page = text_of(reviewer.get(f"/decisions/{waiting['id']}").text)
    assert "Ana Silva, Acme customer:77 Decision" in page, "the person first, at the top"
    assert "Approving sends this, one step at a time:" in page
    # No mail server is set up in this test: each email says so, naming the setting.
    unset = (
        "It could not be delivered yet: email goes to a mail server at localhost:25, the "
        "default: set the mail server under Settings → Email (or OPSLOOP_SMTP_HOST"
    )
    for when, what in (
        ("email · at once", "To ana@acme.example Subject: Welcome Hello"),
        ("email · after 1 day", "To ana@acme.example Subject: Resources Guides"),
        ("email · after 1 day, if login comes", "To ana@acme.example Subject: Good to see you"),
        ("email · after 3 days", "To ana@acme.example Subject: Last tip"),
    ):
        assert f"{when} {unset}" in page, when
        assert what in page, what
    assert "task · after 3 days, if no login by then Task: Call customer:77" in page
