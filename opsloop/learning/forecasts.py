"""Demand forecasts per product: weekly sales from order lines, one model per product.

    order lines ─► weekly_demand ─► series per product ─► forecast_demand ─► DemandForecast
                                                           (Croston-type or AutoETS)

A product's weekly series chooses its model by how often it sells (Syntetos & Boylan, 2005):
the average demand interval (ADI) is the number of weeks per week with a sale. A product
that sells in fewer than three weeks out of four (ADI ≥ `INTERMITTENT_ADI`, 1.32) is an
intermittent seller, and exponential smoothing of its zeros and spikes forecasts badly: it
gets a Croston-type model, statsforecast `IMAPA` (Croston's idea of smoothing the size of a
sale and the gap between sales, averaged over several levels of time aggregation, as ADIDA
does at one). Others get `AutoETS` without a trend (`model="ZNN"`: the error type and the
smoothing chosen by AICc). Both choices are measured (docs/performance.md#demand-forecasts):
on `uci_online_retail` a trend fitted to under a year of weekly sales extrapolates and
loses to no trend, and IMAPA beats `CrostonOptimized` on the intermittent sellers. A product
with fewer than `MIN_SALES` weeks of sales is not modelled: its forecast is its historical
weekly average (model `"mean"`).

`error` is the root mean square of the one-step-ahead in-sample errors, in units per week:
the sigma that safety stock multiplies (opsloop/learning/reorder.py).

`holdout_mase` scores a forecast against the weeks that followed: MASE (Hyndman & Koehler,
2006) is the mean absolute error over the test weeks divided by the mean absolute error of the
seasonal-naive forecast one step ahead inside the training weeks, so 1.0 means "as wrong as
repeating last season, one step ahead"; the same scale applies to every product, so the mean
over products is meaningful.

statsforecast (and pandas, scipy and statsmodels under it) is imported when the first model
is fitted, never when this module is imported: the server starts without it
(tests/test_startup.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np

ModelName = Literal["AutoETS", "IMAPA", "CrostonOptimized", "mean", "SeasonalNaive"]
INTERMITTENT_ADI = 1.32
"""Weeks per selling week at and above which a product is an intermittent seller."""
MIN_SALES = 3
"""Fewer weeks with a sale than this: no model, the forecast is the weekly average."""
MIN_WEEKS_ETS = 8
"""AutoETS needs more weeks than its parameters plus four (statsforecast refuses "tiny
datasets"): a regular seller with a shorter history gets the weekly average."""


@dataclass(frozen=True, kw_only=True)
class WeeklyDemand:
    """Units sold per product per week; weeks start on Monday and are consecutive."""

    weeks: tuple[date, ...]
    series: dict[str, np.ndarray]

    def totals(self) -> dict[str, float]:
        return {product: float(y.sum()) for product, y in self.series.items()}

    def top(self, n: int) -> list[str]:
        """The `n` products that sold the most units, largest first (ties by name)."""
        totals = self.totals()
        return sorted(totals, key=lambda p: (-totals[p], p))[:n]

    def split(self, first_test_week: date) -> tuple[WeeklyDemand, WeeklyDemand]:
        """(training, test): the weeks before `first_test_week`, and that week onwards."""
        cut = sum(1 for w in self.weeks if w < first_test_week)
        train = WeeklyDemand(
            weeks=self.weeks[:cut], series={p: y[:cut] for p, y in self.series.items()}
        )
        test = WeeklyDemand(
            weeks=self.weeks[cut:], series={p: y[cut:] for p, y in self.series.items()}
        )
        return train, test


@dataclass(frozen=True, kw_only=True)
class DemandForecast:
    """One product's forecast: units per week for the `h` weeks after its history."""

    product: str
    model: ModelName
    mean: tuple[float, ...]
    error: float
    """Root mean square one-step-ahead in-sample error, units per week (sigma for safety stock)."""
    adi: float
    """Average demand interval: weeks of history per week with a sale (inf: never sold)."""
    history_weeks: int
    average: float
    """Mean units per week over the history."""

    @property
    def weekly_rate(self) -> float:
        """The mean forecast per week over the horizon (what the reorder policy uses)."""
        return sum(self.mean) / len(self.mean) if self.mean else 0.0


def week_start(day: date | datetime) -> date:
    """The Monday of the week `day` falls in."""
    d = day.date() if isinstance(day, datetime) else day
    return d - timedelta(days=d.weekday())


def weekly_demand(
    rows: Iterable[tuple[str, date | datetime, float]],
    *,
    first_week: date | None = None,
    last_week: date | None = None,
) -> WeeklyDemand:
    """Sum order lines `(product, day, quantity)` into units per product per week.

    Lines with a quantity of zero or less (returns, cancellations, corrections) are not
    demand and are skipped. The weeks run from the first line's week (or `first_week`) to the
    last line's (or `last_week`), every week present, a product's weeks without sales being 0.
    """
    sums: dict[tuple[str, date], float] = {}
    for product, day, quantity in rows:
        if quantity <= 0:
            continue
        key = (product, week_start(day))
        sums[key] = sums.get(key, 0.0) + float(quantity)
    if not sums:
        return WeeklyDemand(weeks=(), series={})
    seen = [w for _, w in sums]
    start = week_start(first_week) if first_week else min(seen)
    end = week_start(last_week) if last_week else max(seen)
    n = (end - start).days // 7 + 1 if end >= start else 0
    weeks = tuple(start + timedelta(weeks=i) for i in range(n))
    series: dict[str, np.ndarray] = {}
    for (product, week), units in sums.items():
        i = (week - start).days // 7
        if not 0 <= i < n:
            continue
        if product not in series:
            series[product] = np.zeros(n)
        series[product][i] += units
    return WeeklyDemand(weeks=weeks, series=dict(sorted(series.items())))


def average_demand_interval(y: np.ndarray) -> float:
    """Weeks of history per week with a sale; `inf` when nothing sold."""
    selling = int(np.count_nonzero(y > 0))
    return len(y) / selling if selling else math.inf


def choose_model(y: np.ndarray) -> ModelName:
    """`mean` with fewer than `MIN_SALES` selling weeks, Croston-type (IMAPA) for an
    intermittent seller (ADI ≥ 1.32), AutoETS otherwise (the mean again with fewer than
    `MIN_WEEKS_ETS` weeks of history)."""
    if np.count_nonzero(y > 0) < MIN_SALES:
        return "mean"
    if average_demand_interval(y) >= INTERMITTENT_ADI:
        return "IMAPA"
    if y.size < MIN_WEEKS_ETS:
        return "mean"
    return "AutoETS"


def _statsforecast_model(name: ModelName, season_length: int) -> Any:
    from statsforecast.models import IMAPA, AutoETS, CrostonOptimized, SeasonalNaive

    if name == "AutoETS":
        return AutoETS(season_length=season_length, model="ZNZ" if season_length > 1 else "ZNN")
    if name == "IMAPA":
        return IMAPA()
    if name == "CrostonOptimized":
        return CrostonOptimized()
    return SeasonalNaive(season_length=season_length)


def _rms(residuals: np.ndarray) -> float:
    finite = residuals[np.isfinite(residuals)]
    return float(np.sqrt(np.mean(finite**2))) if finite.size else 0.0


def forecast_demand(
    product: str,
    y: Sequence[float] | np.ndarray,
    *,
    h: int,
    season_length: int = 1,
    model: ModelName | None = None,
) -> DemandForecast:
    """Fit the chosen model (or `model`) to the weekly series `y` and forecast `h` weeks.

    Forecasts are clipped at zero (demand is never negative). `season_length` is in weeks:
    1 (no season) unless the history holds at least two full seasons, as AutoETS needs.
    """
    series = np.asarray(y, dtype=float)
    chosen = model or choose_model(series)
    adi = average_demand_interval(series)
    average = float(series.mean()) if series.size else 0.0
    if chosen == "mean" or series.size < 2:
        mean = np.full(h, average)
        error = float(series.std()) if series.size else 0.0
        chosen = "mean"
    else:
        m = season_length if series.size >= 2 * season_length else 1
        out = _statsforecast_model(chosen, m).forecast(y=series, h=h, fitted=True)
        mean = np.clip(np.asarray(out["mean"], dtype=float), 0.0, None)
        error = _rms(series - np.asarray(out["fitted"], dtype=float))
    return DemandForecast(
        product=product,
        model=chosen,
        mean=tuple(float(v) for v in mean),
        error=error,
        adi=adi,
        history_weeks=int(series.size),
        average=average,
    )


@dataclass(frozen=True, kw_only=True)
class ForecastRun:
    forecasts: dict[str, DemandForecast]
    seconds: float


def forecast_all(
    demand: WeeklyDemand,
    *,
    h: int,
    products: Iterable[str] | None = None,
    season_length: int = 1,
    model: ModelName | None = None,
) -> ForecastRun:
    """`forecast_demand` for every product (or the ones named), timed."""
    started = time.perf_counter()
    chosen = list(products) if products is not None else list(demand.series)
    forecasts = {
        p: forecast_demand(p, demand.series[p], h=h, season_length=season_length, model=model)
        for p in chosen
    }
    return ForecastRun(forecasts=forecasts, seconds=time.perf_counter() - started)


def naive_scale(train: np.ndarray, season_length: int = 1) -> float:
    """Mean absolute one-step error of the seasonal-naive forecast inside `train`: the MASE
    denominator. 0.0 when the series is too short or constant."""
    m = season_length
    if train.size <= m:
        return 0.0
    return float(np.mean(np.abs(train[m:] - train[:-m])))


def mase(
    actual: Sequence[float] | np.ndarray,
    forecast: Sequence[float] | np.ndarray,
    train: Sequence[float] | np.ndarray,
    *,
    season_length: int = 1,
) -> float:
    """Mean absolute scaled error of `forecast` against `actual`; `nan` when the training
    series gives no scale (constant or shorter than a season)."""
    a = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)[: a.size]
    scale = naive_scale(np.asarray(train, dtype=float), season_length)
    if scale == 0.0 or a.size == 0:
        return math.nan
    return float(np.mean(np.abs(a - f)) / scale)


def seasonal_naive(train: np.ndarray, h: int, season_length: int = 1) -> np.ndarray:
    """The last `season_length` weeks repeated for `h` weeks (the baseline)."""
    m = min(season_length, train.size)
    if m == 0:
        return np.zeros(h)
    last = train[-m:]
    return np.array([last[i % m] for i in range(h)], dtype=float)


@dataclass(frozen=True, kw_only=True)
class HoldoutScore:
    """Mean MASE over the products that have a scale, the model's and the baseline's."""

    products: int
    model_mase: float
    baseline_mase: float
    by_model: dict[str, int]

    @property
    def improvement(self) -> float:
        """How much lower the models' MASE is than the baseline's, as a fraction (0.1: 10%)."""
        return 1.0 - self.model_mase / self.baseline_mase if self.baseline_mase else 0.0


def holdout_mase(
    train: WeeklyDemand,
    test: WeeklyDemand,
    forecasts: dict[str, DemandForecast],
    *,
    season_length: int = 1,
) -> HoldoutScore:
    """Score each product's forecast and the seasonal-naive forecast on the test weeks."""
    ours: list[float] = []
    baseline: list[float] = []
    by_model: dict[str, int] = {}
    for product, fc in forecasts.items():
        y_train = train.series[product]
        y_test = test.series.get(product, np.zeros(len(test.weeks)))
        h = y_test.size
        score = mase(y_test, fc.mean[:h], y_train, season_length=season_length)
        if math.isnan(score):
            continue
        base = seasonal_naive(y_train, h, season_length)
        ours.append(score)
        baseline.append(mase(y_test, base, y_train, season_length=season_length))
        by_model[fc.model] = by_model.get(fc.model, 0) + 1
    return HoldoutScore(
        products=len(ours),
        model_mase=float(np.mean(ours)) if ours else math.nan,
        baseline_mase=float(np.mean(baseline)) if baseline else math.nan,
        by_model=dict(sorted(by_model.items())),
    )


def rolling_origin(
    train: WeeklyDemand,
    test: WeeklyDemand,
    products: Iterable[str],
    *,
    lead_weeks: int = 1,
    model: ModelName | None = None,
) -> HoldoutScore:
    """Score forecasts made the way the Monday schedule makes them: before each test week the
    model is refitted on every week up to it and forecasts the week `lead_weeks` ahead; the
    baseline is the naive forecast made at the same time (the last known week repeated). Both
    are scaled by the training weeks' one-step naive error, as in `holdout_mase`."""
    ours: list[float] = []
    baseline: list[float] = []
    by_model: dict[str, int] = {}
    n0 = len(train.weeks)
    for product in products:
        y_train = train.series[product]
        scale = naive_scale(y_train)
        if scale == 0.0:
            continue
        y_test = test.series.get(product, np.zeros(len(test.weeks)))
        full = np.concatenate([y_train, y_test])
        errors: list[float] = []
        naive_errors: list[float] = []
        for origin in range(n0, n0 + len(y_test) - lead_weeks + 1):
            seen = full[:origin]
            target = full[origin + lead_weeks - 1]
            fc = forecast_demand(product, seen, h=lead_weeks, model=model)
            errors.append(abs(target - fc.mean[-1]))
            naive_errors.append(abs(target - seen[-1]))
            by_model[fc.model] = by_model.get(fc.model, 0) + 1
        if errors:
            ours.append(float(np.mean(errors)) / scale)
            baseline.append(float(np.mean(naive_errors)) / scale)
    return HoldoutScore(
        products=len(ours),
        model_mase=float(np.mean(ours)) if ours else math.nan,
        baseline_mase=float(np.mean(baseline)) if baseline else math.nan,
        by_model=dict(sorted(by_model.items())),
    )
