"""How a product's forecast and reorder policy would have done over its last weeks of sales.

For each of the last `weeks` full weeks, the forecast is refitted on the weeks before it (as
the Monday schedule refits) and its forecast of that week is compared with what sold; the
naive forecast (the week before repeated) is the yardstick, and both errors are scaled by the
one-step naive error of the weeks before the test (MASE, opsloop/learning/forecasts.py). The
reorder policy is replayed over the same weeks, refitted weekly, beside a fixed min/max rule
of 3 and 6 weeks of average demand, both starting at their order-up-to level (lost sales,
orders arriving after the lead time: opsloop/learning/reorder.py `replay_rule`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from opsloop.learning.forecasts import forecast_demand, naive_scale
from opsloop.learning.reorder import ReorderPolicy, ReplayResult, replay_rule, suggest_reorder

FIXED_RULE_WEEKS = (3.0, 6.0)
"""The min/max rule the policy is compared with: reorder at 3 weeks of average, fill to 6."""


@dataclass(frozen=True, kw_only=True)
class ProductBacktest:
    weeks: int
    forecast_error: float
    """Mean absolute error of the weekly forecasts over the test weeks, units per week."""
    naive_error: float
    mase: float | None
    """The forecasts' MASE; None when the weeks before give no scale (constant sales)."""
    naive_mase: float | None
    policy: ReplayResult
    fixed_rule: ReplayResult


def backtest_product(
    series: np.ndarray, *, weeks: int, policy: ReorderPolicy
) -> ProductBacktest | None:
    """Backtest the last `weeks` of `series` (units per week, oldest first); None when the
    series is not longer than the test weeks plus two."""
    n = series.size
    start = n - weeks
    if weeks < 1 or start < 2:
        return None
    errors: list[float] = []
    naive: list[float] = []
    levels: list[tuple[float, float]] = []
    for origin in range(start, n):
        seen = series[:origin]
        forecast = forecast_demand("", seen, h=1)
        errors.append(abs(series[origin] - forecast.mean[0]))
        naive.append(abs(series[origin] - seen[-1]))
        s = suggest_reorder(
            policy, weekly_demand=forecast.weekly_rate, weekly_error=forecast.error, on_hand=0
        )
        levels.append((s.reorder_point, s.order_up_to))
    scale = naive_scale(series[:start])
    lead_weeks = math.ceil(policy.lead_time_days / 7)
    test = series[start:].tolist()
    average = float(series[:start].mean())
    low, high = FIXED_RULE_WEEKS
    forecast_error = float(np.mean(errors))
    naive_error = float(np.mean(naive))
    return ProductBacktest(
        weeks=weeks,
        forecast_error=forecast_error,
        naive_error=naive_error,
        mase=forecast_error / scale if scale else None,
        naive_mase=naive_error / scale if scale else None,
        policy=replay_rule(
            test,
            levels=lambda week: levels[week],
            lead_time_weeks=lead_weeks,
            initial_stock=levels[0][1],
        ),
        fixed_rule=replay_rule(
            test,
            levels=lambda _week: (low * average, high * average),
            lead_time_weeks=lead_weeks,
            initial_stock=high * average,
        ),
    )
