"""The restock template end to end: order events and stock traits, the Monday run forecasts each
product's demand, and only the product below its reorder point gets a reorder decision, which
waits for a person (the task is sensitive) and explains the forecast and the arithmetic."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from opsloop.core.decisions import ReviewRequest
from opsloop.service.decide import playbook_templates
from tests.conftest import Clock, OpsFactory

MONDAY = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
WEEKLY = [9, 11, 10, 12, 8, 10, 11, 9, 10, 12, 9, 11]
"""Units sold per week over the twelve weeks before MONDAY."""


def orders(subject: str, stock: int) -> list[dict[str, Any]]:
    first = MONDAY - timedelta(weeks=len(WEEKLY))
    events = []
    for week, units in enumerate(WEEKLY):
        # Two orders a week, on Tuesday and Thursday.
        for day, quantity in ((1, units // 2), (3, units - units // 2)):
            events.append(
                {
                    "type": "order.placed",
                    "subject": subject,
                    "occurred_at": (first + timedelta(weeks=week, days=day)).isoformat(),
                    "payload": {"quantity": quantity},
                    "traits": {"stock": stock},
                }
            )
    # An order in the week under way is left out of the forecast (half a week of sales).
    events.append(
        {
            "type": "order.placed",
            "subject": subject,
            "occurred_at": (MONDAY + timedelta(minutes=-30)).isoformat(),
            "payload": {"quantity": 1},
            "traits": {"stock": stock},
        }
    )
    return events


def test_the_monday_run_proposes_a_reviewed_reorder_for_the_product_below_its_reorder_point(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    clock.now = MONDAY - timedelta(days=7, hours=-1)  # the Monday before, after 07:00
    text, _ = playbook_templates.template_source("restock")
    ops = make_ops(database_url, playbooks=[text])
    ops.run_jobs()  # a new schedule starts with its next due time
    body = {"events": orders("product:low", stock=5) + orders("product:plenty", stock=500)}
    ops.ingest.body(json.dumps(body).encode())
    assert ops.decide.list_decisions(playbook="restock") == [], "order events decide nothing"

    clock.now = MONDAY + timedelta(seconds=30)
    ops.run_jobs()
    [summary] = ops.decide.list_decisions(playbook="restock")
    detail = ops.decide.decision_detail(summary["id"])
    assert detail["subject"] == "product:low"
    assert detail["status"] == "pending"
    assert detail["needs_approval"], "a purchase always waits for a person"

    restock = detail["inputs"]["features"]["restock"]
    assert restock["history_weeks"] == len(WEEKLY)
    assert restock["stock"] == 5
    assert 8 < restock["weekly"] < 12
    assert restock["error"] > 0
    assert restock["lead_time_demand"] == round(restock["weekly"] * 2, 2)
    assert restock["reorder_point"] > restock["stock"]
    assert restock["quantity"] == math.ceil(restock["order_up_to"] - 5)
    assert restock["order_by"] == "2026-03-02"
    arithmetic = restock["arithmetic"]
    assert arithmetic.startswith(f"{restock['model']} forecast from 12 weeks of sales")
    for line in ("error ±", "lead-time demand =", "safety stock =", "reorder point =", "order ⌈"):
        assert line in arithmetic
    assert detail["explanation"]["features"]["restock"]["arithmetic"] == arithmetic

    ops.review.verdict(summary["id"], ReviewRequest(verdict="approve", reviewer="ana"))
    ops.run_jobs()
    [task] = ops.deliver.list_tasks()
    assert task["title"] == f"Reorder {restock['quantity']} of product:low by 2026-03-02"
    assert task["notes"] is not None
    assert "reorder point =" in task["notes"]


def test_a_backtest_compares_the_replayed_runs_with_the_live_ones_and_their_reviews(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    """A scheduled playbook's replay remakes its runs; a run the live loop also made is
    compared with the live decision and with the person's review of it, as any trigger is."""
    clock.now = MONDAY - timedelta(days=7, hours=-1)
    text, _ = playbook_templates.template_source("restock")
    ops = make_ops(database_url, playbooks=[text])
    ops.run_jobs()
    body = {"events": orders("product:low", stock=5) + orders("product:plenty", stock=500)}
    ops.ingest.body(json.dumps(body).encode())
    clock.now = MONDAY + timedelta(seconds=30)
    ops.run_jobs()
    [summary] = ops.decide.list_decisions(playbook="restock")
    ops.review.verdict(summary["id"], ReviewRequest(verdict="approve", reviewer="ana"))
    ops.run_jobs()

    report = ops.learn.backtest(playbook="restock", since="1d", actor="ana")
    assert report["counts"]["decisions"] == 1
    live = report["live_record"]
    assert live is not None
    assert (live["stored"], live["reproduced"], live["not_replayed"]) == (1, 1, 0)
    agreement = report["agreement"]
    assert (agreement["reviewed"], agreement["compared"], agreement["agreed"]) == (1, 1, 1)
    assert agreement["not_decided"] == 0
