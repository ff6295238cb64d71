"""Weekly demand, the model chosen per product, forecasts and MASE, on small synthetic series.

statsforecast compiles nothing at fit time (2.x has no numba): the first fit here costs the
import, about a second, and every other fit milliseconds."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import date, datetime

import numpy as np
import pytest

from opsloop.learning.forecasts import (
    average_demand_interval,
    choose_model,
    forecast_all,
    forecast_demand,
    holdout_mase,
    mase,
    naive_scale,
    seasonal_naive,
    week_start,
    weekly_demand,
)

MONDAY = date(2026, 1, 5)


def test_order_lines_become_units_per_monday_week_with_returns_left_out() -> None:
    rows = [
        ("BEANS", date(2026, 1, 5), 3.0),  # Monday
        ("BEANS", datetime(2026, 1, 11, 23, 0), 2.0),  # Sunday: same week
        ("BEANS", date(2026, 1, 8), -4.0),  # a return is not demand
        ("MUGS", date(2026, 1, 21), 1.0),  # two weeks later
    ]
    demand = weekly_demand(rows)
    assert demand.weeks == (date(2026, 1, 5), date(2026, 1, 12), date(2026, 1, 19))
    assert demand.series["BEANS"].tolist() == [5.0, 0.0, 0.0]
    assert demand.series["MUGS"].tolist() == [0.0, 0.0, 1.0]
    assert demand.top(1) == ["BEANS"]
    train, test = demand.split(date(2026, 1, 19))
    assert train.weeks == demand.weeks[:2]
    assert test.series["MUGS"].tolist() == [1.0]
    assert week_start(date(2026, 1, 11)) == MONDAY


def test_weeks_outside_the_asked_range_are_dropped_and_missing_ones_filled() -> None:
    rows = [("A", date(2026, 1, 1), 1.0), ("A", date(2026, 1, 14), 2.0)]
    demand = weekly_demand(rows, first_week=MONDAY, last_week=date(2026, 1, 26))
    assert len(demand.weeks) == 4
    assert demand.series["A"].tolist() == [0.0, 2.0, 0.0, 0.0]


def test_the_model_follows_how_often_a_product_sells() -> None:
    steady = np.array([10, 12, 9, 11, 10, 13, 9, 10, 12, 11], dtype=float)
    lumpy = np.array([0, 0, 6, 0, 0, 0, 4, 0, 0, 5], dtype=float)  # 3 selling weeks of 10
    rare = np.array([0, 0, 0, 7, 0, 0, 0, 0, 0, 1], dtype=float)
    assert average_demand_interval(lumpy) == pytest.approx(10 / 3)
    assert average_demand_interval(np.zeros(4)) == math.inf
    assert choose_model(steady) == "AutoETS"
    assert choose_model(lumpy) == "IMAPA"
    assert choose_model(rare) == "mean"


def test_forecasts_sit_at_the_level_and_the_error_at_the_noise() -> None:
    rng = np.random.default_rng(7)
    steady = 50 + rng.normal(0, 5, size=40)
    fc = forecast_demand("STEADY", steady, h=6)
    assert fc.model == "AutoETS"
    assert len(fc.mean) == 6
    assert fc.weekly_rate == pytest.approx(50, abs=4)
    assert 3 < fc.error < 8  # one-step error ≈ the noise's sigma of 5

    lumpy = np.array([0, 0, 6, 0, 0, 0, 4, 0, 0, 5] * 4, dtype=float)
    fc = forecast_demand("LUMPY", lumpy, h=3)
    assert fc.model == "IMAPA"
    assert fc.weekly_rate == pytest.approx(lumpy.mean(), rel=0.5)  # 1.5 a week on average
    assert all(v >= 0 for v in fc.mean)

    rare = forecast_demand("RARE", [0, 0, 7, 0, 1], h=2)
    assert rare.model == "mean"
    assert rare.mean == (1.6, 1.6)


def test_mase_scales_by_the_in_sample_naive_error() -> None:
    train = np.array([1.0, 2.0, 3.0, 4.0])  # naive one-step error: 1 every week
    assert naive_scale(train) == 1.0
    assert mase([5, 5], [4, 6], train) == pytest.approx(1.0)
    assert mase([5, 5], [5, 5], train) == 0.0
    assert math.isnan(mase([1], [1], np.array([3.0, 3.0, 3.0])))  # constant: no scale
    # a season of 2: the error against two weeks back
    assert naive_scale(np.array([1.0, 5.0, 2.0, 7.0]), season_length=2) == pytest.approx(1.5)
    assert seasonal_naive(np.array([1.0, 5.0, 2.0, 7.0]), 3, season_length=2).tolist() == [
        2.0,
        7.0,
        2.0,
    ]


def test_the_holdout_compares_the_models_with_the_naive_forecast() -> None:
    rng = np.random.default_rng(3)
    rows = []
    steady = [f"S{i}" for i in range(8)]
    for week in range(60):
        day = date.fromordinal(MONDAY.toordinal() + 7 * week)
        for product in steady:
            rows.append((product, day, float(max(0, round(40 + rng.normal(0, 8))))))
        if week % 3 == 0:
            rows.append(("LUMPY", day, float(rng.integers(2, 9))))
    demand = weekly_demand(rows)
    train, test = demand.split(date.fromordinal(MONDAY.toordinal() + 7 * 40))
    run = forecast_all(train, h=len(test.weeks))
    score = holdout_mase(train, test, run.forecasts)
    assert score.products == 9
    assert score.by_model == {"AutoETS": 8, "IMAPA": 1}
    # smoothing beats repeating last week on noise around a level
    assert score.model_mase < score.baseline_mase
    assert score.improvement > 0.1


def test_importing_the_module_does_not_import_statsforecast() -> None:
    probe = (
        "import sys, opsloop.learning.forecasts, opsloop.learning.reorder; "
        "print(','.join(m for m in ('statsforecast', 'pandas', 'scipy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
