"""`forecast` features: a subject's demand forecast and reorder point, worked out for a decision.

Reasoning cannot fit a model (it may not import learning), so a live decision's values are
computed here from the same history and traits the decision reads and handed to
`compute_features` as `computed` (opsloop/service/decide/deciding.py); a backtest's replay
computes them here too (opsloop/learning/replay.py). For each `forecast:` feature:

    the subject's matching events (type, `where`, `within`), up to the last full week before
    the decision ─► units per week (`quantity` of each event) ─► forecast_demand (AutoETS,
    IMAPA or the mean: opsloop/learning/forecasts.py) ─► suggest_reorder with the `stock` and
    `on_order` traits, `lead_time`, `review_period`, `service_level` (opsloop/learning/reorder.py)

The week under way is left out: half a week of sales would read as a fall in demand. A subject
with no sales is null (the feature's `default`). statsforecast is imported only when a series
has enough sales to be modelled.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from opsloop.core.events import HistoryEvent
from opsloop.core.key_paths import key_path
from opsloop.learning.forecasts import forecast_demand, week_start, weekly_demand
from opsloop.learning.reorder import ReorderPolicy, suggest_reorder
from opsloop.reasoning.compiler import CompiledFeature, CompiledPlaybook
from opsloop.reasoning.features import matches

DAY = 86400.0


def computed_features(
    playbook: CompiledPlaybook,
    *,
    at: datetime,
    history: list[HistoryEvent],
    traits: dict[str, Any],
) -> dict[str, Any] | None:
    """The values of the playbook's `forecast` features as of `at` (None: it has none)."""
    wanted = [feature for feature in playbook.features if feature.kind == "forecast"]
    if not wanted:
        return None
    return {feature.name: forecast_value(feature, at, history, traits) for feature in wanted}


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _round(value: float | None) -> float | int | None:
    """Two decimals, and a whole number written as one (`12`, not `12.0`, in a message)."""
    if value is None:
        return None
    rounded = round(value, 2)
    return int(rounded) if rounded.is_integer() else rounded


def weekly_series(
    feature: CompiledFeature, at: datetime, history: list[HistoryEvent]
) -> np.ndarray | None:
    """The units sold per week up to the last full week before `at` (None: no sales)."""
    spec = feature.spec.forecast
    assert spec is not None
    since = at - feature.within if feature.within is not None else None
    last_week = week_start(at) - timedelta(weeks=1)
    quantity = key_path(spec.quantity)
    rows = []
    for event in history:
        if event.occurred_at > at or (since is not None and event.occurred_at <= since):
            continue
        if week_start(event.occurred_at) > last_week or not matches(feature, event):
            continue
        units = _number(quantity.read(event.payload))
        if units is not None:
            rows.append(("subject", event.occurred_at, units))
    return weekly_demand(rows, last_week=last_week).series.get("subject")


def policy_of(feature: CompiledFeature) -> ReorderPolicy:
    spec = feature.spec.forecast
    assert spec is not None
    return ReorderPolicy(
        lead_time_days=spec.lead_time.total_seconds() / DAY,
        review_period_days=spec.review_period.total_seconds() / DAY,
        service_level=spec.service_level,
    )


def forecast_value(
    feature: CompiledFeature,
    at: datetime,
    history: list[HistoryEvent],
    traits: dict[str, Any],
    series: np.ndarray | None = None,
) -> dict[str, Any] | None:
    """The feature's value; `series` when the caller summed the weeks already
    (`weekly_series`)."""
    spec = feature.spec.forecast
    assert spec is not None
    if series is None:
        series = weekly_series(feature, at, history)
    if series is None:
        return None
    h = max(1, math.ceil(spec.horizon / timedelta(weeks=1)))
    forecast = forecast_demand("subject", series, h=h)
    policy = policy_of(feature)
    stock = _number(key_path(spec.stock, "entity").read(traits)) if spec.stock else None
    on_order = _number(key_path(spec.on_order, "entity").read(traits)) if spec.on_order else None
    suggestion = suggest_reorder(
        policy,
        weekly_demand=forecast.weekly_rate,
        weekly_error=forecast.error,
        on_hand=stock or 0.0,
        on_order=on_order or 0.0,
        today=at.date(),
    )
    arithmetic = suggestion.explain().splitlines()
    if stock is None:  # no stock to compare: the forecast and the reorder point only
        arithmetic = arithmetic[:5]
    weeks = forecast.history_weeks
    heading = f"{forecast.model} forecast from {weeks} week{'s' if weeks != 1 else ''} of sales"
    return {
        "model": forecast.model,
        "history_weeks": weeks,
        "weekly": _round(forecast.weekly_rate),
        "error": _round(forecast.error),
        "horizon_weeks": h,
        "demand": _round(sum(forecast.mean)),
        "lead_time_days": _round(policy.lead_time_days),
        "lead_time_demand": _round(suggestion.lead_time_demand),
        "safety_stock": _round(suggestion.safety_stock),
        "reorder_point": _round(suggestion.reorder_point),
        "order_up_to": _round(suggestion.order_up_to),
        "stock": _round(stock),
        "on_order": _round(on_order),
        "quantity": suggestion.quantity if stock is not None else None,
        "days_of_cover": _round(suggestion.days_of_cover) if stock is not None else None,
        "order_by": suggestion.order_by.isoformat()
        if stock is not None and suggestion.order_by
        else None,
        "arithmetic": "\n".join([heading, *arithmetic]),
    }
