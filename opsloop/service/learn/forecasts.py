"""The forecast report of a playbook with a `forecast` feature (the restock templates): for every
product of its kind, today's forecast, stock, days of cover and reorder point, and a backtest of
the last weeks — the weekly forecast against last week repeated (MASE), and the reorder policy
replayed against a fixed min/max rule (opsloop/learning/forecast_backtest.py) — with the same
figures summed up over all products.

Products are read a page at a time, as a scheduled run reads them. Each backtest week refits the
product's model, so a report on 4,000 products costs some seconds: it is worked out when asked
for, never on a request that has to be fast.
"""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from opsloop.core.errors import Conflict, InvalidInput, NotFound
from opsloop.core.events import Event, HistoryEvent
from opsloop.core.schedules import SCHEDULED_EVENT
from opsloop.learning.forecast_backtest import backtest_product
from opsloop.learning.forecast_features import forecast_value, policy_of, weekly_series
from opsloop.learning.reorder import ReorderPolicy
from opsloop.reasoning.compiler import CompiledFeature
from opsloop.service.context import Context
from opsloop.service.decide import deciding
from opsloop.service.decide.schedules import PAGE, SOURCE
from opsloop.service.learn.forecast_views import ForecastOverall, ForecastReport, ProductForecast
from opsloop.store import playbook_runs

MAX_WEEKS = 26


def forecast_report(ctx: Context, playbook: str, *, weeks: int = 8) -> ForecastReport:
    """The report with a backtest of the last `weeks`; `weeks=0` (for the weekly report's
    short list) leaves the backtest out."""
    if not 0 <= weeks <= MAX_WEEKS:
        raise InvalidInput.single("weeks", f"give 0 to {MAX_WEEKS} weeks to backtest, not {weeks}")
    active = ctx.catalog.active().get(playbook)
    if active is None:
        raise NotFound(f"no active playbook named {playbook!r}")
    feature = next((f for f in active.compiled.features if f.kind == "forecast"), None)
    if feature is None:
        raise Conflict(
            f"playbook {playbook!r} has no `forecast` feature: the forecast report is for "
            "playbooks that forecast demand, such as the restock template"
        )
    policy = policy_of(feature)
    now = ctx.clock()
    products: list[ProductForecast] = []
    after = ""
    while True:
        with ctx.db.read() as conn:
            subjects = playbook_runs.subjects_of_kind(
                conn, active.compiled.playbook.subject, after=after, limit=PAGE
            )
            if not subjects:
                break
            probes = [
                Event(0, SOURCE, SCHEDULED_EVENT, subject, now, now, {}, {}) for subject in subjects
            ]
            history, traits = deciding.read_inputs(ctx, conn, [(p, active) for p in probes])
        after = subjects[-1]
        for subject in subjects:
            row = _product(
                feature,
                subject,
                now,
                history.get(subject, []),
                traits.get(subject, {}),
                weeks,
                policy,
            )
            if row is not None:
                products.append(row)
    products.sort(key=_order)
    return {
        "playbook": playbook,
        "feature": feature.name,
        "as_of": now.isoformat(),
        "backtest_weeks": weeks,
        "lead_time_days": policy.lead_time_days,
        "service_level": policy.service_level,
        "overall": _overall(products),
        "products": products,
    }


def _product(
    feature: CompiledFeature,
    subject: str,
    now: datetime,
    history: list[HistoryEvent],
    traits: dict[str, Any],
    weeks: int,
    policy: ReorderPolicy,
) -> ProductForecast | None:
    series = weekly_series(feature, now, history)
    value = forecast_value(feature, now, history, traits, series)
    if series is None or value is None:
        return None
    tested = backtest_product(series, weeks=weeks, policy=policy) if weeks else None
    stock = value["stock"]
    if stock is None:
        status = "no stock figure"
    elif stock <= 0:
        status = "out of stock"
    elif value["quantity"]:
        status = "reorder"
    else:
        status = "ok"
    return {
        "subject": subject,
        "model": value["model"],
        "history_weeks": value["history_weeks"],
        "weekly": value["weekly"],
        "error": value["error"],
        "stock": stock,
        "on_order": value["on_order"],
        "days_of_cover": value["days_of_cover"],
        "reorder_point": value["reorder_point"],
        "quantity": value["quantity"],
        "order_by": value["order_by"],
        "status": status,
        "mase": _r(tested.mase) if tested else None,
        "naive_mase": _r(tested.naive_mase) if tested else None,
        "stockout_weeks": tested.policy.stockout_weeks if tested else None,
        "fixed_stockout_weeks": tested.fixed_rule.stockout_weeks if tested else None,
        "average_stock": _r(tested.policy.average_stock) if tested else None,
        "fixed_average_stock": _r(tested.fixed_rule.average_stock) if tested else None,
    }


_STATUS_ORDER = {"out of stock": 0, "reorder": 1, "ok": 2, "no stock figure": 3}


def _order(row: ProductForecast) -> tuple[int, float, str]:
    cover = row["days_of_cover"]
    return (_STATUS_ORDER[row["status"]], cover if cover is not None else 1e18, row["subject"])


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _overall(products: list[ProductForecast]) -> ForecastOverall:
    scored = [p for p in products if p["mase"] is not None and p["naive_mase"] is not None]
    mase = statistics.fmean(p["mase"] for p in scored if p["mase"] is not None) if scored else None
    naive = (
        statistics.fmean(p["naive_mase"] for p in scored if p["naive_mase"] is not None)
        if scored
        else None
    )
    replayed = [p for p in products if p["stockout_weeks"] is not None]
    return {
        "products": len(products),
        "weekly_units": round(sum(p["weekly"] for p in products), 2),
        "out_of_stock": sum(p["status"] == "out of stock" for p in products),
        "to_reorder": sum(p["status"] == "reorder" for p in products),
        "backtested": len(scored),
        "mase": _r(mase),
        "naive_mase": _r(naive),
        "improvement": _r(1 - mase / naive) if mase is not None and naive else None,
        "stockout_weeks": sum(p["stockout_weeks"] or 0 for p in replayed),
        "fixed_stockout_weeks": sum(p["fixed_stockout_weeks"] or 0 for p in replayed),
        "average_stock": round(sum(p["average_stock"] or 0.0 for p in replayed), 2),
        "fixed_average_stock": round(sum(p["fixed_average_stock"] or 0.0 for p in replayed), 2),
    }
