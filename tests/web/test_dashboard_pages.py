"""The dashboard page over real HTTP, signed in through the real /login form: the empty state,
seven weeks of history as numbers and Vega-Lite charts, one playbook at a time, and an unknown
playbook."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import opsloop.web
from tests.conftest import Clock, LiveServer, OpsFactory, Serve
from tests.people import VIEWER, Person, add_people, sign_in
from tests.web.dashboard_story import CSAT, WEEKS, build_history

CHARTS = ("success-rate", "override-rate", "time-to-action", "csat")
VENDOR = Path(opsloop.web.__file__).parent / "static" / "vendor"


@pytest.fixture
def signed_in() -> Iterator[Callable[[LiveServer], httpx.Client]]:
    """A client signed in as the viewer (the least role that may open the dashboard)."""
    clients: list[httpx.Client] = []

    def open_as_viewer(server: LiveServer, person: Person = VIEWER) -> httpx.Client:
        if not server.ops.accounts.list_users():
            add_people(server.ops)
        client, _ = sign_in(server.url, person)
        clients.append(client)
        return client

    yield open_as_viewer
    for client in clients:
        client.close()


SignedIn = Callable[[LiveServer], httpx.Client]


def specs(page: str) -> dict[str, dict[str, Any]]:
    """The Vega-Lite specs the page carries, by chart id."""
    found = re.findall(
        r'<script type="application/json" id="([\w-]+)-spec">(.*?)</script>', page, re.S
    )
    return {chart: json.loads(text) for chart, text in found}


def weekly_values(spec: dict[str, Any]) -> dict[tuple[str, str], float]:
    [rows] = spec["datasets"].values()
    return {(row["series"], row["week"]): row["value"] for row in rows}


def metric(page: str, key: str) -> str:
    found = re.search(rf'data-metric="{key}">(.*?)</p>\s*</div>', page, re.S)
    assert found, f"no metric {key}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


@pytest.fixture
def history(make_ops: OpsFactory, sqlite_url: str, clock: Clock, serve: Serve) -> LiveServer:
    return serve(build_history(make_ops, sqlite_url, clock))


def test_anonymous_visitors_sign_in_and_come_back_to_the_dashboard(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, signed_in: SignedIn
) -> None:
    server = serve(make_ops(sqlite_url))
    client = signed_in(server)
    with httpx.Client(base_url=server.url) as anonymous:
        answer = anonymous.get("/dashboard")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/dashboard"
    page = client.get("/login?next=/dashboard")
    assert page.status_code == 303
    assert page.headers["location"] == "/dashboard"


def test_the_empty_dashboard_says_what_the_numbers_will_mean(
    make_ops: OpsFactory, sqlite_url: str, serve: Serve, signed_in: SignedIn
) -> None:
    server = serve(make_ops(sqlite_url))
    answer = signed_in(server).get("/dashboard")

    assert answer.status_code == 200
    page = answer.text
    assert "No decisions yet" in page
    for words in ("Decision success rate", "Human override rate", "Time to action",
                  "Customer satisfaction", "opsloop playbook apply", "opsloop demo"):  # fmt: skip
        assert words in page
    assert specs(page) == {}
    assert "vega" not in page, "no chart library on a page without charts"
    assert '<a href="/dashboard" aria-current="page">Dashboard</a>' in page
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")


def test_the_dashboard_shows_each_metric_against_its_baseline(
    history: LiveServer, signed_in: SignedIn
) -> None:
    answer = signed_in(history).get("/dashboard")

    assert answer.status_code == 200
    page = answer.text
    assert "No decisions yet" not in page
    assert 'data-playbook="follow-up"' in page
    assert 'data-playbook="ticket-triage"' in page
    assert "Calls the leads big enough to be worth a call" in page
    # The numbers as the service reports them (tests/service/test_metrics.py checks those).
    assert metric(page, "override_rate").startswith(
        "Human override rate 14% baseline 20% → recent 0% −100%"
    )
    assert metric(page, "time_to_action").startswith(
        "Time to action 4.0 h baseline 5.0 h → recent 45 min −85%"
    )
    # Weeks 15 and 16 are the recent period: 8 actions, each 4.25 h sooner than the baseline's
    # median, from the same two medians Time to action compares.
    assert metric(page, "time_saved").startswith(
        "Time saved 34.0 h the recent period's 8 actions came 4.2 h sooner each than in the "
        "baseline (median 5.0 h → 45 min)"
    )
    assert metric(page, "csat").startswith(
        "Customer satisfaction 3.86 / 5 baseline 3.40 → recent 5.00 +47%"
    )
    assert 'class="change good">−85%' in page
    tiles = re.sub(
        r"\s+",
        " ",
        re.sub(
            r"<[^>]+>",
            " ",
            page.split('aria-label="What needs attention"')[1].split("</section>")[0],
        ),
    )
    assert "Reviews waiting 1" in tiles
    assert "Failed deliveries 1" in tiles
    assert '<a href="/actions?status=dead">See them and retry</a>' in page
    assert "Time saved 34.0 h" in tiles


def test_the_weekly_charts_are_valid_vega_lite_with_each_weeks_values(
    history: LiveServer, signed_in: SignedIn
) -> None:
    import altair as alt

    page = signed_in(history).get("/dashboard").text
    charts = specs(page)
    assert sorted(charts) == sorted(CHARTS)
    for spec in charts.values():
        assert spec["$schema"].endswith(f"/v{alt.SCHEMA_VERSION.lstrip('v')}.json")
        alt.LayerChart.from_dict(spec)  # validates against the Vega-Lite schema
    # The vendored Vega is the major version the specs compile to, by its own account (npm's
    # vega 6.3.0 build says 5.33.1, and Vega-Lite warned on every chart).
    vega = (VENDOR / "vega.min.js").read_text()
    assert re.findall(r'\.version="(\d+)\.', vega) == [alt.VEGA_VERSION.lstrip("v")]
    assert f'"{alt.VEGALITE_VERSION.lstrip("v")}"' in (VENDOR / "vega-lite.min.js").read_text()

    report = history.ops.learn.metrics_report(by="week")
    [follow_up] = [row for row in report["playbooks"] if row["playbook"] == "follow-up"]
    override = weekly_values(charts["override-rate"])
    assert len([key for key in override if key[0] == "follow-up"]) == WEEKS
    for week in follow_up["weeks"]:
        assert override["follow-up", week["week"]] == week["override_rate"]
        assert (
            weekly_values(charts["success-rate"])["follow-up", week["week"]] == week["success_rate"]
        )
    assert override["follow-up", "2026-W10"] == 0.5
    assert override["ticket-triage", "2026-W16"] == 0.0
    # Time to action in hours, since some weeks took more than two.
    waits = weekly_values(charts["time-to-action"])
    assert waits["follow-up", "2026-W10"] == 8.0
    assert waits["follow-up", "2026-W16"] == 0.5
    assert "Time to action (hours)" in page
    ratings = weekly_values(charts["csat"])
    assert sorted(ratings.values()) == sorted(float(r) for r in CSAT)
    # The page draws them with the vendored scripts, nothing from elsewhere.
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert all(src.startswith("/static/") for src in scripts)
    assert any("vendor/vega-embed.min.js" in src for src in scripts)


def test_one_playbook_at_a_time(history: LiveServer, signed_in: SignedIn) -> None:
    answer = signed_in(history).get("/dashboard", params={"playbook": "ticket-triage"})

    assert answer.status_code == 200
    page = answer.text
    assert 'data-playbook="ticket-triage"' in page
    assert 'data-playbook="follow-up"' not in page
    assert '<option value="ticket-triage" selected>ticket-triage</option>' in page
    charts = specs(page)
    assert {series for series, _ in weekly_values(charts["override-rate"])} == {"ticket-triage"}
    assert "success-rate" not in charts, "no outcome window of this playbook has closed"
    assert "No week has a closed outcome window yet." in page
    assert metric(page, "time_saved") == (
        "Time saved — shown once the baseline period is over, on 13 May 2026"
    )
    # Deliveries are not counted per playbook: the tile says so.
    tile = page.split('data-tile="failed-deliveries"')[1].split('data-tile="time-saved"')[0]
    assert "counted over all playbooks" in tile
    # "All playbooks" sends an empty value: everything again.
    everything = signed_in(history).get("/dashboard", params={"playbook": ""}).text
    assert 'data-playbook="follow-up"' in everything


def test_an_unknown_playbook_says_so_and_offers_the_others(
    history: LiveServer, signed_in: SignedIn
) -> None:
    answer = signed_in(history).get("/dashboard", params={"playbook": "no-such-thing"})

    assert answer.status_code == 404
    page = answer.text
    assert "There is no playbook called &#39;no-such-thing&#39;" in page
    assert '<a href="/dashboard?playbook=follow-up">follow-up</a>' in page
    assert '<a href="/dashboard">Show all playbooks</a>' in page
