"""The stock-alerts and slow-movers templates end to end: order events and stock traits in, the
morning check warns in chat about the product that is out of stock and the one that will run
out before a delivery could come (once, not every morning), and the monthly check gives a
person a task for the product whose stock would take years to sell and the one that stopped
selling."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from opsloop.core.decisions import ReviewRequest
from opsloop.service.decide import playbook_templates
from tests.conftest import Clock, OpsFactory
from tests.sinks import HttpSink

FIRST = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
"""A Monday: the sales below are the twelve weeks before it."""


def sales(
    subject: str, weekly: list[int], stock: int, *, on_order: int = 0
) -> list[dict[str, Any]]:
    start = FIRST - timedelta(weeks=len(weekly))
    events = [
        {
            "type": "order.placed",
            "subject": subject,
            "occurred_at": (start + timedelta(weeks=week, days=2)).isoformat(),
            "payload": {"quantity": units},
        }
        for week, units in enumerate(weekly)
        if units
    ]
    events.append(
        {
            "type": "stock.counted",
            "subject": subject,
            "occurred_at": (FIRST - timedelta(hours=1)).isoformat(),
            "payload": {},
            "traits": {"stock": stock, "on_order": on_order},
        }
    )
    return events


def test_the_morning_check_warns_once_about_products_out_of_stock_or_running_out(
    make_ops: OpsFactory, database_url: str, clock: Clock, http_sink: HttpSink
) -> None:
    clock.now = FIRST - timedelta(days=1)
    text, _ = playbook_templates.template_source("stock-alerts")
    ops = make_ops(database_url, playbooks=[text], notify_url=http_sink.url)
    ops.run_jobs()
    steady = [10] * 12
    body = {
        "events": sales("product:empty", steady, 0, on_order=30)
        + sales("product:low", steady, 12)  # 12 on hand at 10 a week: 8 days, delivery takes 14
        + sales("product:plenty", steady, 200)
        + sales("product:never-counted", steady, 0)[:-1]  # no stock trait: nothing to say
    }
    ops.ingest.body(json.dumps(body).encode())

    clock.now = FIRST + timedelta(hours=1, seconds=30)  # 08:00 has passed
    ops.run_jobs()
    decisions = ops.decide.list_decisions(playbook="stock-alerts")
    assert sorted((d["subject"], d["choice"]) for d in decisions) == [
        ("product:empty", "out_of_stock"),
        ("product:low", "running_out"),
    ]
    for decision in decisions:
        ops.review.verdict(decision["id"], ReviewRequest(verdict="approve", reviewer="ana"))
    ops.run_jobs()
    texts = sorted(" ".join(r.json()["text"].split()) for r in http_sink.requests)
    assert texts[0].startswith("Out of stock: product:empty. It sells about 10")
    assert "30 are on order." in texts[0]
    assert texts[1].startswith("product:low runs out in about 8.4 days (12 on hand at 10")
    assert "a delivery takes 14 days. Nothing is on order." in texts[1]

    # The next morning nothing has changed, and nobody is told again (cooldown: 3d).
    clock.now += timedelta(days=1)
    ops.run_jobs()
    assert len(ops.decide.list_decisions(playbook="stock-alerts")) == 2
    # Three days on, a product still out of stock is announced again.
    clock.now += timedelta(days=3)
    ops.run_jobs()
    assert len(ops.decide.list_decisions(playbook="stock-alerts")) == 4


def test_the_monthly_check_asks_a_person_about_slow_movers(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    clock.now = datetime(2026, 2, 20, tzinfo=UTC)
    text, _ = playbook_templates.template_source("slow-movers")
    ops = make_ops(database_url, playbooks=[text])
    ops.run_jobs()
    body = {
        "events": sales("product:fast", [10] * 12, 40)
        + sales("product:crawl", [0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0], 60)  # 4 in 12 weeks
        + sales("product:stopped", [5, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][:12], 0)
        + sales("product:dead", [3] + [0] * 11, 25)[1:]  # the sale is older than 12 weeks
    }
    body["events"].append(
        {
            "type": "order.placed",
            "subject": "product:dead",
            "occurred_at": "2025-10-01T10:00:00+00:00",
            "payload": {"quantity": 3},
        }
    )
    ops.ingest.body(json.dumps(body).encode())

    clock.now = datetime(2026, 3, 1, 8, 0, 30, tzinfo=UTC)
    ops.run_jobs()
    decisions = {d["subject"]: d for d in ops.decide.list_decisions(playbook="slow-movers")}
    assert sorted(decisions) == ["product:crawl", "product:dead"], "stopped has nothing in stock"
    for decision in decisions.values():
        ops.review.verdict(decision["id"], ReviewRequest(verdict="approve", reviewer="ana"))
    ops.run_jobs()
    tasks = {t["title"]: t for t in ops.deliver.list_tasks()}
    assert sorted(tasks) == [
        "Slow mover: product:crawl (60 in stock)",
        "Slow mover: product:dead (25 in stock)",
    ]
    crawl = tasks["Slow mover: product:crawl (60 in stock)"]["notes"]
    assert crawl is not None
    assert "4 sold in the last 12 weeks: the 60 in stock last about 180 weeks." in crawl
    dead = tasks["Slow mover: product:dead (25 in stock)"]["notes"]
    assert dead is not None
    assert dead.startswith("No sales in the last 12 weeks (the last 151 days ago).")


def test_the_stock_templates_are_backtested_on_the_shops_history(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    """A scheduled template has no triggering events to replay: the backtest makes the runs
    its schedule would have made, each deciding about the subjects `select` picks as of then,
    forecasts included."""
    clock.now = FIRST + timedelta(hours=2)
    ops = make_ops(database_url)
    steady = [10] * 12
    body = {
        "events": sales("product:low", steady, 12)
        + sales("product:plenty", steady, 500)
        + sales("product:crawl", [0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0], 60)
    }
    ops.ingest.body(json.dumps(body).encode())

    # Mornings at 08:00 from the stock count (an hour before FIRST) to now: one run, on FIRST
    # itself, when only product:low's 12 units last less than the 14-day lead time.
    alerts = ops.learn.backtest_template("stock-alerts", since="2d", actor="olga")
    assert alerts["counts"]["decisions"] == 1
    chosen = {c["choice"]: c["decisions"] for c in alerts["choices"] if c["decisions"]}
    assert chosen == {"running_out": 1}

    # Restock on Mondays at 07:00: the one before the count saw no stock trait (nothing picked;
    # quantity is null), FIRST's run picks product:low.
    restock = ops.learn.backtest_template("restock", since="8d", actor="olga")
    assert restock["counts"]["decisions"] == 1
    assert restock["counts"]["failed"] == 0
    assert restock["counts"]["held_for_review"] == 1, "a purchase waits for a person"

    # The 1st of March: crawl has 60 in stock and sold 4 in 12 weeks.
    clock.now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    slow = ops.learn.backtest_template("slow-movers", since="3d", actor="olga")
    assert slow["counts"]["decisions"] == 0, "the count arrived after the run on the 1st"
