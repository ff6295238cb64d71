"""When to reorder a product and how many: a reorder point from a demand forecast.

Units are the product's units; time is in days (lead time, review period) with demand per
week, as the forecast gives it (opsloop/learning/forecasts.py). With

    d  = forecast demand per week           sigma = forecast error per week (in-sample RMSE)
    L  = lead time in weeks (days / 7)      R = review period in weeks (days / 7)
    z  = the standard normal quantile of the service level (95% → 1.645)

the policy is

    lead-time demand  = d * L
    safety stock      = z * sigma * √L
    reorder point     = lead-time demand + safety stock
    order-up-to level = reorder point + d * R
    position          = on hand + on order
    order quantity    = ⌈order-up-to level - position⌉ when position ≤ reorder point, else 0
    days of cover     = on hand / (d / 7)
    order by          = today + (position - reorder point) / (d / 7) days, today at the latest

so stock arriving a lead time after the order covers the demand of the lead time with the
chosen probability (the forecast errors taken as normal and independent week to week), and
an order lasts a review period. `explain()` writes the arithmetic with the numbers in it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist

MAX_ORDER_DAYS = 3660
"""An order date further out than about ten years is none (`order_by` is None)."""


@dataclass(frozen=True, kw_only=True)
class ReorderPolicy:
    lead_time_days: float
    service_level: float = 0.95
    review_period_days: float = 14.0

    def __post_init__(self) -> None:
        if not 0.5 <= self.service_level < 1.0:
            raise ValueError("service_level must be at least 0.5 and below 1")
        if self.lead_time_days < 0 or self.review_period_days < 0:
            raise ValueError("lead time and review period cannot be negative")

    @property
    def z(self) -> float:
        return NormalDist().inv_cdf(self.service_level)


@dataclass(frozen=True, kw_only=True)
class ReorderSuggestion:
    weekly_demand: float
    weekly_error: float
    lead_time_demand: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    position: float
    quantity: int
    """Units to order now; 0 when the position is above the reorder point."""
    days_of_cover: float | None
    """Days the stock on hand lasts at the forecast rate; None when nothing is forecast."""
    order_by: date | None
    """The day the position reaches the reorder point (today when it already has); None when
    that is more than `MAX_ORDER_DAYS` away."""
    z: float
    policy: ReorderPolicy

    def explain(self) -> str:
        p = self.policy
        lead_weeks = p.lead_time_days / 7
        lines = [
            f"forecast demand {self.weekly_demand:.1f}/week, error ±{self.weekly_error:.1f}/week",
            f"lead-time demand = {self.weekly_demand:.1f} × {lead_weeks:.2f} weeks"
            f" = {self.lead_time_demand:.1f}",
            f"safety stock = z({p.service_level:.0%}) {self.z:.2f} × {self.weekly_error:.1f}"
            f" × √{lead_weeks:.2f} = {self.safety_stock:.1f}",
            f"reorder point = {self.lead_time_demand:.1f} + {self.safety_stock:.1f}"
            f" = {self.reorder_point:.1f}",
            f"order-up-to = {self.reorder_point:.1f} + {self.weekly_demand:.1f}"
            f" × {p.review_period_days / 7:.2f} weeks = {self.order_up_to:.1f}",
            f"stock on hand + on order = {self.position:g}",
        ]
        if self.quantity:
            lines.append(f"order ⌈{self.order_up_to:.1f} − {self.position:g}⌉ = {self.quantity}")
        else:
            lines.append("above the reorder point: no order now")
        if self.days_of_cover is not None:
            lines.append(f"days of cover = {self.days_of_cover:.1f}")
        return "\n".join(lines)


def suggest_reorder(
    policy: ReorderPolicy,
    *,
    weekly_demand: float,
    weekly_error: float,
    on_hand: float,
    on_order: float = 0.0,
    today: date | None = None,
) -> ReorderSuggestion:
    """The reorder point, the quantity to order now and the days of cover (module docstring)."""
    d = max(weekly_demand, 0.0)
    sigma = max(weekly_error, 0.0)
    lead_weeks = policy.lead_time_days / 7
    z = policy.z
    lead_time_demand = d * lead_weeks
    safety_stock = z * sigma * math.sqrt(lead_weeks)
    reorder_point = lead_time_demand + safety_stock
    order_up_to = reorder_point + d * policy.review_period_days / 7
    position = on_hand + on_order
    quantity = math.ceil(order_up_to - position - 1e-9) if position <= reorder_point else 0
    daily = d / 7
    cover = max(on_hand, 0.0) / daily if daily > 0 else None
    order_by: date | None = None
    if today is not None and daily > 0:
        days = max(0.0, (position - reorder_point) / daily)
        # A product that hardly sells reaches its reorder point in centuries: no date then.
        order_by = today + timedelta(days=math.floor(days)) if days <= MAX_ORDER_DAYS else None
    elif today is not None and position <= reorder_point:
        order_by = today
    return ReorderSuggestion(
        weekly_demand=d,
        weekly_error=sigma,
        lead_time_demand=lead_time_demand,
        safety_stock=safety_stock,
        reorder_point=reorder_point,
        order_up_to=order_up_to,
        position=position,
        quantity=max(quantity, 0),
        days_of_cover=cover,
        order_by=order_by,
        z=z,
        policy=policy,
    )


@dataclass(frozen=True, kw_only=True)
class ReplayResult:
    """A policy replayed over weeks of real demand (lost sales, orders arrive after the lead
    time, one review at the start of each week)."""

    weeks: int
    stockout_weeks: int
    """Weeks in which demand exceeded the stock at hand."""
    average_stock: float
    """Mean units on hand at the end of a week."""
    units_short: float
    orders: int


def replay_min_max(
    demand: list[float] | tuple[float, ...],
    *,
    minimum: float,
    maximum: float,
    lead_time_weeks: int,
    initial_stock: float,
) -> ReplayResult:
    """Replay an (s, S) rule week by week: at the start of a week, when stock on hand plus on
    order is at or below `minimum`, order up to `maximum`; an order placed in week t arrives at
    the start of week t + `lead_time_weeks` (0: at once). Unmet demand is lost.

    The forecast policy fitted once is the same rule with `minimum` = its reorder point and
    `maximum` = its order-up-to level; a fixed min/max rule passes fixed numbers."""
    return replay_rule(
        demand,
        levels=lambda _week: (minimum, maximum),
        lead_time_weeks=lead_time_weeks,
        initial_stock=initial_stock,
    )


def replay_rule(
    demand: list[float] | tuple[float, ...],
    *,
    levels: Callable[[int], tuple[float, float]],
    lead_time_weeks: int,
    initial_stock: float,
) -> ReplayResult:
    """`replay_min_max` with the (minimum, maximum) of each week asked of `levels(week)`: a
    policy refitted every week (as the Monday schedule does) sees the demand up to that week."""
    on_hand = initial_stock
    pipeline: dict[int, float] = {}
    stockouts = orders = 0
    short = stock_sum = 0.0
    for week, units in enumerate(demand):
        on_hand += pipeline.pop(week, 0.0)
        position = on_hand + sum(pipeline.values())
        minimum, maximum = levels(week)
        if position <= minimum and maximum > position:
            quantity = math.ceil(maximum - position)
            orders += 1
            if lead_time_weeks == 0:
                on_hand += quantity
            else:
                arrives = week + lead_time_weeks
                pipeline[arrives] = pipeline.get(arrives, 0.0) + quantity
        if units > on_hand:
            stockouts += 1
            short += units - on_hand
            on_hand = 0.0
        else:
            on_hand -= units
        stock_sum += on_hand
    n = len(demand)
    return ReplayResult(
        weeks=n,
        stockout_weeks=stockouts,
        average_stock=stock_sum / n if n else 0.0,
        units_short=short,
        orders=orders,
    )
