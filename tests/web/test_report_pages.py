"""The Reports page and `GET /api/reports/{week}`: the weekly report a viewer reads, with the
email's PNG charts, the same numbers the API answers; the list says which weeks were emailed."""

from __future__ import annotations

import re

from opsloop.core.decisions import ReviewRequest
from opsloop.service import OpsLoop
from tests.conftest import Clock, lead_playbook
from tests.leads import new_lead
from tests.people import VIEWER
from tests.web.test_playbook_pages import AppFor, Browse, app_for, browse, text_of

__all__ = ["app_for", "browse"]


QUIET = lead_playbook(
    **{
        "name: lead-qualification": "name: quiet-leads",
        "events: [lead.created, demo.requested]": "events: [lead.archived]",
    }
)


def two_weeks(app_for: AppFor, clock: Clock) -> OpsLoop:
    ops = app_for(lead_playbook(), QUIET)
    first = new_lead(ops, 1)
    ops.review.verdict(first["id"], ReviewRequest("reject", "rui", reason="a competitor"))
    clock.advance(days=7)  # week 11
    for number in (2, 3):
        decision = new_lead(ops, number, email=None)  # no address: dead-lettered
        ops.review.verdict(decision["id"], ReviewRequest("approve", "rui"))
    new_lead(ops, 4)
    ops.run_jobs()
    return ops


def test_a_viewer_reads_a_weeks_report_with_its_charts(
    app_for: AppFor, browse: Browse, clock: Clock
) -> None:
    ops = two_weeks(app_for, clock)
    viewer = browse(ops, VIEWER)

    listing = viewer.get("/reports")
    assert listing.status_code == 200
    assert re.search(r'<a href="/reports"[^>]*aria-current="page">Reports</a>', listing.text)
    words = text_of(listing.text)
    assert "2026-W10 (last week)" in words
    # Week 10 ended as the clock moved on: its email was tried (no mail server here).
    assert "2026-W10 (last week)" in words
    assert re.search(r"2026-W10 \(last week\) .* to 1 person 1 failed", words)

    page = viewer.get("/reports/2026-W11")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "Weekly report, 2026-W11" in words
    assert "not over yet" in words
    assert "Human override rate lead-qualification" in words
    assert "0% of the 2 reviewed decisions were overridden or rejected by a person, down 100 " \
        "points from 100% the week before." in words  # fmt: skip
    assert "1 decision waits for a person" in words
    table = page.text.split('data-testid="numbers"')[1].split("</table>")[0]
    assert "quiet-leads" not in table, "a playbook with nothing this week has no rows"
    assert "Quiet this week: quiet-leads." in words
    assert "email for lead-qualification after" in words
    charts = re.findall(
        r'<img src="data:image/png;base64,[^"]+"[^>]*data-testid="([^"]+)"', page.text
    )
    assert "chart-override-rate" in charts

    api = viewer.get("/api/reports/2026-W11")
    assert api.status_code == 200
    numbers = {(n["key"], n["playbook"]): n for n in api.json()["numbers"]}
    assert numbers[("override_rate", "lead-qualification")]["value"] == 0.0
    assert numbers[("override_rate", "lead-qualification")]["previous"] == 1.0
    assert len(api.json()["failed_deliveries"]) == 2
    assert api.json()["quiet"] == ["quiet-leads"]
    assert "quiet-leads" not in {n["playbook"] for n in api.json()["numbers"]}

    only = viewer.get("/reports/2026-W11?playbook=lead-qualification")
    assert only.status_code == 200
    assert "Weekly report, 2026-W11 — lead-qualification" in text_of(only.text)


def test_a_week_that_is_not_one_or_an_unknown_playbook_is_a_404_saying_so(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for(lead_playbook())
    viewer = browse(ops, VIEWER)
    page = viewer.get("/reports/next-week")
    assert page.status_code == 404
    assert "'next-week' is not an ISO week such as 2026-W47" in text_of(page.text)
    page = viewer.get("/reports/2026-W10?playbook=nope")
    assert page.status_code == 404
    assert "there is no playbook called 'nope'" in text_of(page.text)
    assert viewer.get("/api/reports/2026-W99").status_code == 422
