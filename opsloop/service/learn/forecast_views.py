"""What the forecast report returns (opsloop/service/learn/forecasts.py)."""

from __future__ import annotations

from typing import TypedDict


class ProductForecast(TypedDict):
    subject: str
    model: str
    history_weeks: int
    weekly: float
    """Forecast units per week."""
    error: float
    stock: float | None
    on_order: float | None
    days_of_cover: float | None
    reorder_point: float
    quantity: int | None
    """Units to order now (0 above the reorder point; None without a stock figure)."""
    order_by: str | None
    status: str
    """`out of stock`, `reorder`, `ok`, or `no stock figure`."""
    mase: float | None
    """The weekly forecasts' MASE over the backtest weeks (None: too short or no scale)."""
    naive_mase: float | None
    stockout_weeks: int | None
    """In the backtest weeks, replaying the reorder policy refitted weekly."""
    fixed_stockout_weeks: int | None
    """The same weeks under a fixed min/max rule (3 and 6 weeks of average demand)."""
    average_stock: float | None
    fixed_average_stock: float | None


class ForecastOverall(TypedDict):
    products: int
    """Products of the playbook's kind with sales to forecast."""
    weekly_units: float
    out_of_stock: int
    to_reorder: int
    backtested: int
    """Products with enough weeks to backtest (and a MASE scale)."""
    mase: float | None
    naive_mase: float | None
    improvement: float | None
    """1 − forecast MASE / naive MASE: 0.1 is 10% less error than last week repeated."""
    stockout_weeks: int
    fixed_stockout_weeks: int
    average_stock: float
    fixed_average_stock: float


class ForecastReport(TypedDict):
    playbook: str
    feature: str
    as_of: str
    backtest_weeks: int
    lead_time_days: float
    service_level: float
    overall: ForecastOverall
    products: list[ProductForecast]
    """Out of stock first, then by days of cover, then by name."""
