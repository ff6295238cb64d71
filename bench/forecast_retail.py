"""Demand forecasts and the reorder policy on real data: UCI Online Retail (541,909 lines).

    .venv/bin/python bench/forecast_retail.py [--data PATH] [--top 500] [--json OUT]

Order lines become units per product per week (opsloop/learning/forecasts.py: returns,
cancellations and other negative quantities are not demand). Only full weeks count: the data
starts on Wednesday 2010-12-01 and stops on Friday 2011-12-09, so the weeks run from Monday
2010-12-06 to the week of 2011-11-28. Time-ordered hold-out: train on the weeks before
Monday 2011-10-03 (43 weeks), test on the 9 weeks from it.

1. Accuracy: the `top` products by units sold in training, each with the model
   `choose_model` gives it, against the seasonal-naive forecast, by mean MASE. The training
   weeks hold no full year, so the yearly season (52 weeks) cannot be fitted nor used by the
   baseline: the baseline's season is 1 week (the naive forecast, last week repeated) and,
   as a second reference, 4 weeks. The variants the module did not choose are printed too.
2. Fit time: every product that sold in the training weeks, one model each, timed.
3. Replay: over the test weeks, for the same products, the reorder policy (reorder point and
   order-up-to level from the forecast made at the end of training, lead time 1 week, review
   period 2 weeks) against a fixed min/max rule (reorder at 2 weeks of the training average,
   fill to 4 weeks), both starting at their maximum, orders arriving a week after the review,
   unmet demand lost. Counted: stock-out weeks, units short, average units on hand.

Prints figures; asserts nothing. Exit code 2 when the data folder is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT = ROOT.parent / "shared" / "data" / "uci_online_retail" / "online_retail.parquet"
FIRST_WEEK = date(2010, 12, 6)
LAST_WEEK = date(2011, 11, 28)
FIRST_TEST_WEEK = date(2011, 10, 3)
LEAD_TIME_DAYS = 7
REVIEW_DAYS = 14


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--top", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    if not args.data.is_file():
        print(
            f"data not found: {args.data}\n"
            "This benchmark reads the UCI Online Retail data set from ../shared/data/ beside "
            "the project (see ../shared/data/README.md). Put online_retail.parquet in "
            "uci_online_retail/ there, or pass --data PATH. Never copy it into the repository.",
            file=sys.stderr,
        )
        return 2

    import numpy as np
    import pandas as pd

    from opsloop.learning.forecast_backtest import backtest_product
    from opsloop.learning.forecasts import (
        forecast_all,
        holdout_mase,
        rolling_origin,
        weekly_demand,
    )
    from opsloop.learning.reorder import ReorderPolicy, replay_min_max, suggest_reorder

    warnings.filterwarnings("ignore", module="statsforecast")
    figures: dict[str, Any] = {}

    started = time.perf_counter()
    lines = pd.read_parquet(
        args.data, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate"]
    )
    lines = lines[~lines["InvoiceNo"].astype(str).str.startswith("C")]
    days = pd.to_datetime(lines["InvoiceDate"]).dt.date
    demand = weekly_demand(
        zip(lines["StockCode"].astype(str), days, lines["Quantity"].astype(float), strict=True),
        first_week=FIRST_WEEK,
        last_week=LAST_WEEK,
    )
    train, test = demand.split(FIRST_TEST_WEEK)
    h = len(test.weeks)
    print(
        f"{len(lines):,} order lines → {len(demand.series):,} products × {len(demand.weeks)} "
        f"weeks in {time.perf_counter() - started:.1f} s; train {len(train.weeks)} weeks "
        f"to {train.weeks[-1]}, test {h} weeks from {test.weeks[0]}"
    )

    # 1. accuracy on the top products
    sold = [p for p in train.top(args.top) if train.series[p].sum() > 0]
    run = forecast_all(train, h=h, products=sold)
    print(f"\n1. Top {len(sold)} products by units sold in training: mean MASE over the test weeks")
    print(f"   {'forecast':<44} {'MASE':>6} {'s-naive':>7} {'better':>7}")
    accuracy: dict[str, Any] = {}
    variants: list[tuple[str, dict[str, Any]]] = [
        ("chosen per product (AutoETS/IMAPA)", {}),
        ("AutoETS for all (no trend)", {"model": "AutoETS"}),
        ("IMAPA for all", {"model": "IMAPA"}),
        ("CrostonOptimized for all", {"model": "CrostonOptimized"}),
    ]
    for label, kwargs in variants:
        fc = run if not kwargs else forecast_all(train, h=h, products=sold, **kwargs)
        for season in (1, 4):
            score = holdout_mase(train, test, fc.forecasts, season_length=season)
            name = f"{label}, season {season}w"
            print(
                f"   {name:<44} {score.model_mase:6.3f} {score.baseline_mase:7.3f} "
                f"{score.improvement:7.1%}"
            )
            accuracy[name] = asdict(score) | {"improvement": score.improvement}
    chosen = holdout_mase(train, test, run.forecasts)
    print(f"   models chosen: {chosen.by_model}")
    figures["accuracy"] = accuracy

    # 1b. weekly forecasts as the schedule makes them: refitted every Monday
    print(
        f"\n1b. Refitted every week (rolling origin over the {h} test weeks): MASE of the "
        "forecast for the week `lead` ahead, against the naive forecast made the same day"
    )
    print(f"   {'forecast':<44} {'MASE':>6} {'naive':>7} {'better':>7}")
    weekly: dict[str, Any] = {}
    for lead in (1, 2):
        score = rolling_origin(train, test, sold, lead_weeks=lead)
        name = f"chosen per product, {lead} week{'s' if lead > 1 else ''} ahead"
        print(
            f"   {name:<44} {score.model_mase:6.3f} {score.baseline_mase:7.3f} "
            f"{score.improvement:7.1%}"
        )
        weekly[name] = asdict(score) | {"improvement": score.improvement}
    figures["weekly_refit"] = weekly

    # 2. fit time
    everything = [p for p, y in train.series.items() if y.sum() > 0]
    full = forecast_all(train, h=h, products=everything)
    per_4000 = full.seconds / len(everything) * 4000
    print(
        f"\n2. Fit: {len(everything):,} products in {full.seconds:.1f} s "
        f"({per_4000:.1f} s per 4,000; 1 process)"
    )
    figures["fit"] = {
        "products": len(everything),
        "seconds": full.seconds,
        "seconds_per_4000": per_4000,
    }

    # 3. replay
    print(
        f"\n3. Replay over the {h} test weeks, top {len(sold)} products, lead time "
        f"{LEAD_TIME_DAYS} days, review period {REVIEW_DAYS} days"
    )
    print(f"   {'rule':<36} {'stock-out weeks':>15} {'units short':>12} {'avg on hand':>12}")
    lead_weeks = math.ceil(LEAD_TIME_DAYS / 7)
    replays: dict[str, Any] = {}

    def total(rule: str, results: list[Any]) -> None:
        out = sum(r.stockout_weeks for r in results)
        short = sum(r.units_short for r in results)
        stock = sum(r.average_stock for r in results)
        demanded = sum(float(test.series[p].sum()) for p in sold)
        print(f"   {rule:<36} {out:>15,} {short:>12,.0f} {stock:>12,.0f}")
        replays[rule] = {
            "stockout_weeks": out,
            "product_weeks": len(results) * h,
            "units_short": short,
            "fill_rate": 1 - short / demanded if demanded else 1.0,
            "average_stock": stock,
        }

    for low, high in ((2, 4), (3, 6)):
        fixed = []
        for p in sold:
            avg = float(train.series[p].mean())
            fixed.append(
                replay_min_max(
                    test.series[p].tolist(),
                    minimum=low * avg,
                    maximum=high * avg,
                    lead_time_weeks=lead_weeks,
                    initial_stock=high * avg,
                )
            )
        total(f"fixed min/max ({low} and {high} weeks)", fixed)
    for level in (0.90, 0.95, 0.99):
        policy = ReorderPolicy(
            lead_time_days=LEAD_TIME_DAYS, service_level=level, review_period_days=REVIEW_DAYS
        )
        results = []
        for p in sold:
            f = run.forecasts[p]
            s = suggest_reorder(
                policy, weekly_demand=f.weekly_rate, weekly_error=f.error, on_hand=0
            )
            results.append(
                replay_min_max(
                    test.series[p].tolist(),
                    minimum=s.reorder_point,
                    maximum=s.order_up_to,
                    lead_time_weeks=lead_weeks,
                    initial_stock=s.order_up_to,
                )
            )
        total(f"forecast policy, service {level:.0%}", results)
    # The same policy refitted every Monday on the demand seen so far, as the playbook runs
    # (the forecast report's backtest, opsloop/learning/forecast_backtest.py).
    for level in (0.90, 0.95):
        policy = ReorderPolicy(
            lead_time_days=LEAD_TIME_DAYS, service_level=level, review_period_days=REVIEW_DAYS
        )
        results = []
        for p in sold:
            tested = backtest_product(
                np.concatenate([train.series[p], test.series[p]]), weeks=h, policy=policy
            )
            assert tested is not None
            results.append(tested.policy)
        total(f"refitted weekly, service {level:.0%}", results)
    figures["replay"] = replays
    print(f"   ({len(sold) * h:,} product-weeks; avg on hand: units summed over the products)")

    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=float))
    del np
    return 0


if __name__ == "__main__":
    sys.exit(main())
