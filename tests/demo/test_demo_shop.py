"""The shop's decisions in a prepared demo, on a short history (the shop's own goes back 16
weeks whatever the days): the inbox holds a reorder for the product running out, explained by
its forecast, the morning stock alert and the monthly slow movers; the win-back emails went out
week by week with the subject line Thompson sampling chose, and the experiment report lists the
variants with their sends."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from opsloop.demo.run import DemoBusiness, prepare_demo
from opsloop.demo.shop import RUNNING_OUT, WIN_BACK_RATES
from opsloop.demo.shop_playbooks import OWNER
from opsloop.settings import Settings
from tests.people import VIEWER, add_people
from tests.web.test_playbook_pages import Browse, browse, text_of

__all__ = ["browse"]  # a fixture used here

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
"""The history is fixed; the service clock is real. Once the demo is prepared, its workers
run the schedules due by the real clock too, so the tests look at the runs at NOW."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoBusiness]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("demo"), worker_poll_seconds=0.05)
    business = prepare_demo(settings, days=3, seed=7, console=Console(file=io.StringIO()), now=NOW)
    yield business
    business.close()


def decided_at_the_demo(demo: DemoBusiness, playbook: str) -> list[dict[str, Any]]:
    """The playbook's decisions on schedule runs before NOW, with their detail."""
    found = []
    for summary in demo.ops.decide.list_decisions(playbook=playbook, limit=10_000):
        detail = demo.ops.decide.decision_detail(summary["id"])
        if detail["trigger"]["occurred_at"] <= NOW:
            found.append(detail)
    return found


def test_the_inbox_holds_a_reorder_for_the_product_running_out_with_its_forecast(
    demo: DemoBusiness,
) -> None:
    [reorder] = decided_at_the_demo(demo, "restock")
    assert reorder["subject"] == f"product:{RUNNING_OUT}"
    assert reorder["trigger"]["occurred_at"] == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert reorder["status"] == "pending"
    assert reorder["needs_approval"], "a purchase always waits for a person"

    restock = reorder["explanation"]["features"]["restock"]
    assert restock["history_weeks"] >= 12, "the shop's sales go back further than the leads"
    assert restock["on_order"] == 0
    assert 0 < restock["stock"] < restock["weekly"]
    assert restock["days_of_cover"] < 7
    assert restock["quantity"] > restock["weekly"]
    arithmetic = restock["arithmetic"]
    for line in (
        f"forecast from {restock['history_weeks']} weeks of sales",
        "lead-time demand =",
        "safety stock =",
        f"reorder point = {restock['lead_time_demand']:.1f} + {restock['safety_stock']:.1f}",
        f"stock on hand + on order = {restock['stock']}",
        f"= {restock['quantity']}",
    ):
        assert line in arithmetic, arithmetic


def test_the_morning_alert_and_the_monthly_slow_movers_are_in_the_inbox(
    demo: DemoBusiness,
) -> None:
    [alert] = decided_at_the_demo(demo, "stock-alerts")
    assert alert["subject"] == f"product:{RUNNING_OUT}"
    assert alert["choice"] == "running_out"
    assert alert["trigger"]["occurred_at"] == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    slow = decided_at_the_demo(demo, "slow-movers")
    assert {d["subject"] for d in slow} == {"product:MUG-CERAMIC", "product:GRINDER-HAND"}
    assert {d["trigger"]["occurred_at"] for d in slow} == {datetime(2026, 3, 1, 8, 0, tzinfo=UTC)}
    assert all(d["status"] == "pending" for d in [*slow, alert])


def test_win_back_emails_went_out_week_by_week_with_a_subject_line_each(
    demo: DemoBusiness,
) -> None:
    decisions = decided_at_the_demo(demo, "win-back")
    approved = [d for d in decisions if d["status"] == "approved"]
    assert demo.loaded is not None
    assert len(approved) == demo.loaded.win_back_sent > 50
    assert all(d["reviews"][0]["reviewer"] == OWNER for d in approved)
    runs = sorted({d["trigger"]["occurred_at"] for d in approved})
    assert len(runs) >= 5
    assert all(run.weekday() == 0 and run.hour == 9 for run in runs)
    # The last run's decisions wait for the person trying the demo.
    waiting = [d for d in decisions if d["status"] == "pending"]
    assert waiting
    assert all(d["trigger"]["occurred_at"] >= NOW - timedelta(days=3) for d in waiting)

    first = approved[0]
    assert first["inputs"]["features"]["days_since_order"] >= 60
    [chosen] = first["explanation"]["variants"]
    assert chosen["variant"] in WIN_BACK_RATES
    subjects = {mail["subject"] for mail in demo.outbox.latest("emails")}
    assert "Running low? Your usual order is one click away" in subjects
    assert any(subject.startswith("We miss you, ") for subject in subjects)


def test_the_win_back_experiment_report_lists_its_variants_with_sends(
    demo: DemoBusiness,
) -> None:
    [report] = demo.ops.learn.experiments("win-back")
    variants = {v["name"]: v for v in report["variants"]}
    assert set(variants) == set(WIN_BACK_RATES)
    assert demo.loaded is not None
    assert sum(v["sends"] for v in variants.values()) == demo.loaded.win_back_sent
    assert all(v["sends"] > 0 for v in variants.values())
    assert sum(v["successes"] for v in variants.values()) > 0
    # The hidden best subject line leads, and the bandit sent it the most.
    best = max(WIN_BACK_RATES, key=WIN_BACK_RATES.__getitem__)
    assert report["leader"] == best
    assert max(variants.values(), key=lambda v: v["sends"])["name"] == best


def test_the_experiment_page_shows_the_subject_lines_with_their_sends(
    demo: DemoBusiness, browse: Browse
) -> None:
    add_people(demo.ops)
    page = browse(demo.ops, VIEWER).get("/playbooks/win-back/experiments")
    assert page.status_code == 200
    words = text_of(page.text)
    [report] = demo.ops.learn.experiments("win-back")
    for variant in report["variants"]:
        row = f"{variant['name']} {variant['sends']} {variant['resolved']} {variant['successes']} "
        assert row in words, words
