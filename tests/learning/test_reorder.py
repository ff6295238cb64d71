"""The reorder arithmetic on hand-worked numbers, and the week-by-week replay."""

from __future__ import annotations

from datetime import date

import pytest

from opsloop.learning.reorder import ReorderPolicy, replay_min_max, suggest_reorder

Z95 = 1.6448536  # the standard normal quantile of 95%


def test_below_the_reorder_point_it_orders_up_to_a_review_period_beyond_it() -> None:
    # 70 a week (10 a day) ± 14, one week's lead time, reviewed every two weeks
    policy = ReorderPolicy(lead_time_days=7, service_level=0.95, review_period_days=14)
    s = suggest_reorder(
        policy, weekly_demand=70, weekly_error=14, on_hand=50, on_order=20, today=date(2026, 3, 2)
    )
    assert s.z == pytest.approx(Z95)
    assert s.lead_time_demand == pytest.approx(70)  # 70 * 1 week
    assert s.safety_stock == pytest.approx(Z95 * 14)  # z * sigma * √1 = 23.03
    assert s.reorder_point == pytest.approx(70 + Z95 * 14)  # 93.03
    assert s.order_up_to == pytest.approx(70 + Z95 * 14 + 140)  # + 70 * 2 weeks = 233.03
    assert s.position == 70
    assert s.quantity == 164  # ⌈233.03 - 70⌉
    assert s.days_of_cover == pytest.approx(5.0)  # 50 on hand / 10 a day
    assert s.order_by == date(2026, 3, 2)  # already below: today
    text = s.explain()
    assert "reorder point = 70.0 + 23.0 = 93.0" in text
    assert "order ⌈233.0 − 70⌉ = 164" in text


def test_above_the_reorder_point_it_says_when_to_order() -> None:
    # four weeks' lead time: the safety stock grows with √4 = 2
    policy = ReorderPolicy(lead_time_days=28, service_level=0.95, review_period_days=7)
    s = suggest_reorder(
        policy, weekly_demand=70, weekly_error=10, on_hand=400, today=date(2026, 3, 2)
    )
    assert s.lead_time_demand == pytest.approx(280)
    assert s.safety_stock == pytest.approx(Z95 * 10 * 2)  # 32.90
    assert s.reorder_point == pytest.approx(312.9, abs=0.01)
    assert s.quantity == 0
    # (400 - 312.9) / 10 a day = 8.7 days: order within 8 days
    assert s.order_by == date(2026, 3, 10)
    assert s.days_of_cover == pytest.approx(40)
    assert "no order now" in s.explain()


def test_a_higher_service_level_holds_more_safety_stock() -> None:
    low = suggest_reorder(
        ReorderPolicy(lead_time_days=7, service_level=0.9),
        weekly_demand=10,
        weekly_error=5,
        on_hand=0,
    )
    high = suggest_reorder(
        ReorderPolicy(lead_time_days=7, service_level=0.99),
        weekly_demand=10,
        weekly_error=5,
        on_hand=0,
    )
    assert low.safety_stock == pytest.approx(1.2815516 * 5)
    assert high.safety_stock == pytest.approx(2.3263479 * 5)


def test_no_forecast_demand_means_no_cover_figure_and_no_order() -> None:
    s = suggest_reorder(
        ReorderPolicy(lead_time_days=7),
        weekly_demand=0,
        weekly_error=0,
        on_hand=3,
        today=date(2026, 3, 2),
    )
    assert s.days_of_cover is None
    assert s.quantity == 0
    assert s.order_by is None


@pytest.mark.parametrize("level", [0.3, 1.0])
def test_a_service_level_outside_half_to_one_is_refused(level: float) -> None:
    with pytest.raises(ValueError, match="service_level"):
        ReorderPolicy(lead_time_days=7, service_level=level)


def test_the_replay_counts_stockout_weeks_lost_units_and_average_stock() -> None:
    # min 5, max 20, orders arrive a week later; starts with 10 on hand
    r = replay_min_max([4, 4, 8, 0, 30], minimum=5, maximum=20, lead_time_weeks=1, initial_stock=10)
    # week 0: 10 > 5, no order; sells 4 → 6
    # week 1: 6 > 5, no order; sells 4 → 2
    # week 2: 2 ≤ 5, order 18 (arrives week 3); demand 8 > 2: stock-out, 6 short → 0
    # week 3: +18 → 18, position 18 > 5; sells 0 → 18
    # week 4: 18 > 5; demand 30 > 18: stock-out, 12 short → 0
    assert r.stockout_weeks == 2
    assert r.units_short == 18
    assert r.orders == 1
    assert r.average_stock == pytest.approx((6 + 2 + 0 + 18 + 0) / 5)


def test_with_no_lead_time_an_order_arrives_before_the_weeks_demand() -> None:
    r = replay_min_max([5, 5, 5], minimum=5, maximum=10, lead_time_weeks=0, initial_stock=5)
    assert r.stockout_weeks == 0
    assert r.orders == 3  # 5 → 10 → sells 5 → 5 ≤ 5 again
    assert r.average_stock == pytest.approx(5)
