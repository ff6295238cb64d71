"""The forecast report of a restock playbook: every product with sales, the most urgent first,
today's forecast and reorder point, and a backtest of the last weeks — per product and overall
— on the page, in the API and from the CLI."""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta

import pytest

from opsloop.core.decisions import ReviewRequest
from opsloop.core.errors import Conflict, InvalidInput
from opsloop.service import OpsLoop
from opsloop.service.decide import playbook_templates
from tests.conftest import Clock, OpsFactory, lead_playbook
from tests.people import VIEWER, add_people
from tests.service.test_stock_templates import FIRST, sales
from tests.test_cli_replay_and_cancel import cli_database, run
from tests.web.test_playbook_pages import Browse, browse, text_of

__all__ = ["browse", "cli_database", "shop"]

SEASONAL = [20, 22, 25, 30, 28, 24, 20, 18, 21, 26, 31, 29, 25, 21, 19, 22, 27, 32, 30, 26]
"""Twenty weeks of a product whose sales rise and fall."""


def shop(make_ops: OpsFactory, database_url: str, clock: Clock) -> OpsLoop:
    clock.now = FIRST + timedelta(hours=2)
    text, _ = playbook_templates.template_source("restock")
    ops = make_ops(database_url, playbooks=[text])
    body = {
        "events": sales("product:wave", SEASONAL, 0)
        + sales("product:steady", [10] * 20, 5, on_order=10)
        + sales("product:shelf", [1, 0, 0, 2, 0, 0, 1, 0, 0, 0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 1], 80)
        + sales("product:new", [0] * 17 + [4, 5, 6], 30)
    }
    ops.ingest.body(json.dumps(body).encode())
    return ops


def test_the_report_lists_each_product_most_urgent_first_with_its_backtest(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = shop(make_ops, database_url, clock)
    report = ops.learn.forecast_report("restock", weeks=8)
    rows = {p["subject"]: p for p in report["products"]}
    assert [p["subject"] for p in report["products"]][:2] == ["product:wave", "product:steady"]
    assert rows["product:wave"]["status"] == "out of stock"
    steady = rows["product:steady"]
    assert steady["status"] == "reorder", "5 + 10 on order is below two weeks of sales"
    assert steady["weekly"] == pytest.approx(10, abs=0.5)
    assert steady["quantity"] == math.ceil(steady["reorder_point"] + 2 * steady["weekly"] - 15)
    assert rows["product:shelf"]["status"] == "ok"
    assert rows["product:shelf"]["days_of_cover"] > 365

    # The backtest: eight weeks of weekly refits, each product's error against last week's.
    wave = rows["product:wave"]
    assert wave["mase"] is not None
    assert wave["naive_mase"] is not None
    assert wave["stockout_weeks"] is not None
    assert 0 <= wave["stockout_weeks"] <= 8
    assert rows["product:new"]["mase"] is None, "three weeks of sales: nothing to scale by"
    assert rows["product:steady"]["mase"] is None, "the same sales every week: no scale either"
    overall = report["overall"]
    assert overall["products"] == 4
    assert overall["out_of_stock"] == 1
    assert overall["to_reorder"] == 1
    assert overall["backtested"] == 2
    assert overall["improvement"] == pytest.approx(
        1 - overall["mase"] / overall["naive_mase"], abs=0.002
    )
    assert overall["stockout_weeks"] == sum(p["stockout_weeks"] or 0 for p in rows.values())

    with pytest.raises(InvalidInput, match="weeks"):
        ops.learn.forecast_report("restock", weeks=40)


def test_a_playbook_without_a_forecast_has_no_report(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook()])
    with pytest.raises(Conflict, match="no `forecast` feature"):
        ops.learn.forecast_report("lead-qualification")


def test_the_page_and_the_api_show_the_report_to_everyone(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock, browse: Browse
) -> None:
    ops = shop(make_ops, sqlite_url, clock)
    add_people(ops)
    client = browse(ops, VIEWER)
    playbook_page = client.get("/playbooks/restock")
    assert 'href="/playbooks/restock/forecasts"' in playbook_page.text
    page = client.get("/playbooks/restock/forecasts?weeks=8")
    assert page.status_code == 200
    words = text_of(page.text)
    assert "4 products forecast" in words
    assert "1 out of stock, 1 at or below the reorder point" in words
    assert "than repeating last week's sales" in words
    assert "product:wave out of stock" in words

    api = client.get("/api/playbooks/restock/forecasts?weeks=8")
    assert api.status_code == 200
    assert api.json()["overall"] == ops.learn.forecast_report("restock", weeks=8)["overall"]
    assert client.get("/api/playbooks/restock/forecasts?weeks=0").status_code == 422
    assert client.get("/playbooks/nope/forecasts").status_code == 404


def test_the_weekly_report_points_at_the_stock_and_the_message_tests_worth_a_look(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    from tests.service.test_experiments import PLAYBOOK, lead, send

    ops = shop(make_ops, database_url, clock)
    ops.decide.apply_playbook(PLAYBOOK, "welcome.yaml", actor="test")
    send(ops, *(lead(i) for i in range(6)))
    for decision in ops.decide.list_decisions(playbook="welcome"):
        ops.review.verdict(decision["id"], ReviewRequest(verdict="approve", reviewer="ana"))
    report = ops.learn.weekly_report("2026-W09")
    [stock] = report["forecasts"]
    assert stock["playbook"] == "restock"
    assert stock["out_of_stock"] == ["product:wave"]
    assert stock["to_reorder"] == ["product:steady"]
    assert stock["sentence"] == (
        "1 product out of stock and 1 product at or below the reorder point, of 4 forecast."
    )
    [test] = report["experiments"]
    assert (test["playbook"], test["sends"], test["winner"]) == ("welcome", 6, None)
    assert "no winner yet" in test["verdict"].lower()

    text = ops.learn.report_text(report)
    assert "WORTH A LOOK" in text
    assert "Out of stock: product:wave. To reorder: product:steady." in text
    assert "/playbooks/restock/forecasts" in text
    assert "/playbooks/welcome/experiments" in text


def test_the_cli_prints_the_report_and_its_json(
    make_ops: OpsFactory, cli_database: str, clock: Clock
) -> None:
    shop(make_ops, cli_database, clock)
    code, output = run("forecasts", "restock", "--weeks", "4")
    assert code == 0, output
    # The command runs on today's clock: the shop's sales stopped in March.
    assert output.startswith("4 products, about ")
    assert re.search(r"product:wave\s*│\s*out of stock", output)
    assert "Last 4 weeks, refitted weekly: " in output
    code, output = run("forecasts", "restock", "--json")
    assert code == 0, output
    assert json.loads(output)["overall"]["products"] == 4
    code, output = run("forecasts", "lead-qualification")
    assert code != 0
    assert "no active playbook named 'lead-qualification'" in output
