"""The win-back template end to end, on SQLite and PostgreSQL: installed from the gallery, its
Monday run picks the customers who have not ordered for 60 days, each decision chooses one of
the three subject lines, the approved email sends it, a purchase within 14 days is the
outcome, and the experiment report lists the variants with their sends and orders. Its
backtest and its outline work like any template's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from opsloop.core.decisions import ReviewRequest
from opsloop.service import OpsLoop
from opsloop.service.decide.playbook_templates import template_names
from tests.conftest import Clock, OpsFactory
from tests.sinks import SmtpSink

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
VARIANTS = {
    "miss-you": "We miss you, {first}",
    "running-low": "Running low? Your usual order is one click away",
    "new-arrivals": "New this season: three things you have not tried yet",
}


def order(customer: int, days_before: float, **traits: Any) -> dict[str, Any]:
    return {
        "type": "order.placed",
        "subject": f"customer:{customer}",
        "occurred_at": (MONDAY - timedelta(days=days_before)).isoformat(),
        "payload": {"order": f"{customer}-{days_before}", "total": 40},
        "traits": traits,
    }


def send(ops: OpsLoop, *events: dict[str, Any]) -> None:
    ops.ingest.body(json.dumps({"events": list(events)}).encode())


def test_the_win_back_template_is_in_the_gallery() -> None:
    assert "win-back" in template_names()


def test_the_monday_run_writes_to_quiet_customers_with_a_subject_line_each(
    make_ops: OpsFactory, database_url: str, clock: Clock, smtp_sink: SmtpSink
) -> None:
    clock.now = MONDAY - timedelta(days=6)
    ops = make_ops(database_url, smtp_host="127.0.0.1", smtp_port=smtp_sink.port)
    applied = ops.decide.install_template("win-back", actor="olga")
    assert (applied.name, applied.mode) == ("win-back", "recommend")
    [card] = [t for t in ops.decide.list_templates() if t["name"] == "win-back"]
    assert card["options"] == ["Send the win-back email"]
    assert card["installed"] == {"version": 1, "mode": "recommend", "as_shipped": True}
    ops.run_jobs()  # a new schedule starts with its next due time

    quiet = range(20)
    send(
        ops,
        *(order(n, 90 + n, email=f"buyer{n}@example.com", first_name=f"Ana{n}") for n in quiet),
        *(order(n, 75 + n) for n in quiet),  # two orders each, the last 75+ days ago
        order(100, 10, email="regular@example.com", first_name="Bo"),  # ordered last week
        order(101, 61),  # quiet, but no email address to write to
    )
    assert ops.decide.list_decisions(playbook="win-back") == [], "orders decide nothing"

    clock.now = MONDAY + timedelta(seconds=30)
    ops.run_jobs()
    decisions = ops.decide.list_decisions(playbook="win-back", limit=100)
    assert sorted(d["subject"] for d in decisions) == sorted(f"customer:{n}" for n in quiet)
    assert all(d["status"] == "pending" for d in decisions), "recommend: a person approves"

    detail = ops.decide.decision_detail(decisions[0]["id"])
    assert detail["inputs"]["features"]["days_since_order"] >= 75
    assert detail["inputs"]["features"]["orders_1y"] == 2
    [chosen] = detail["explanation"]["variants"]
    assert (chosen["option"], chosen["action"], chosen["how"]) == ("win_back", 0, "thompson")
    assert chosen["variant"] in VARIANTS
    assert set(chosen["draws"]) == set(VARIANTS)
    assert f"Sends variant {chosen['variant']!r}" in detail["why"]

    for decision in decisions:
        ops.review.verdict(decision["id"], ReviewRequest(verdict="approve", reviewer="olga"))
    ops.run_jobs()
    sent: dict[str, str] = {}
    for action in ops.deliver.list_actions(limit=100):
        request = action["request"]
        assert action["status"] == "delivered"
        first = request["to"].removeprefix("buyer").split("@")[0]
        assert request["subject"] == VARIANTS[request["variant"]].format(first=f"Ana{first}")
        assert "since your last order" in request["body"]
        sent[request["to"]] = request["variant"]
    assert len(sent) == len(smtp_sink.messages) == 20
    assert len(set(sent.values())) > 1, "with no outcomes yet every subject line has a chance"

    # Those sent "running-low" order again within the window; the others do not.
    back = [to for to, variant in sent.items() if variant == "running-low"]
    clock.advance(days=3)
    send(
        ops,
        *({"type": "order.placed", "subject": f"customer:{to[5:].split('@')[0]}"} for to in back),
    )
    clock.advance(days=12)
    ops.learn.close_outcome_windows()

    [report] = ops.learn.experiments("win-back")
    assert (report["option"], report["action"]) == ("win_back", 0)
    figures = {v["name"]: v for v in report["variants"]}
    assert set(figures) == set(VARIANTS)
    assert sum(v["sends"] for v in figures.values()) == 20
    assert all(v["sends"] == v["resolved"] for v in figures.values())
    if back:
        assert figures["running-low"]["successes"] == len(back)
        assert figures["running-low"]["rate"] == 1.0
        assert report["leader"] == "running-low"
    assert figures["miss-you"]["successes"] == figures["new-arrivals"]["successes"] == 0


def test_the_win_back_template_backtests_before_it_is_installed(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock
) -> None:
    clock.now = MONDAY
    ops = make_ops(sqlite_url)
    send(ops, order(1, 70, email="a@example.com"))
    report = ops.learn.backtest_template("win-back", since="120d", actor="olga")
    # The Mondays replayed: the customer is picked once 60 days have passed, then the cooldown.
    assert report["counts"]["decisions"] == 1
    assert [c["choice"] for c in report["choices"]] == ["win_back"]
    assert ops.decide.list_playbooks() == [], "a backtest installs nothing"
    detail = ops.decide.get_template("win-back")
    assert detail["subject"] == "customer"
    assert detail["description"].startswith("Every Monday, email the customers who have not")
    assert "\nmode: recommend\n" in detail["source"]
