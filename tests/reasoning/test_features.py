"""Features computed from a subject's history, as of the triggering event: what each kind
computes, which events a window and a `where` let in, and when defaults apply."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

from opsloop.core.events import HistoryEvent
from opsloop.reasoning.compiler import CompiledPlaybook
from opsloop.reasoning.features import compute_features
from opsloop.service.decide.playbooks import load_playbook

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""The time of the triggering event in every test."""


def playbook(features: str) -> CompiledPlaybook:
    """A minimal valid playbook around the given `features:` block."""
    text = (
        "name: shop\nsubject: customer\ntrigger:\n  events: order.placed\n"
        "otherwise: thank\noptions:\n  thank: {}\nfeatures:\n"
        + textwrap.indent(textwrap.dedent(features), "  ")
    )
    return load_playbook(text, "shop.yaml")[1]


def at(days: float = 0, **kwargs: float) -> datetime:
    """A time `days` before the trigger (negative: after it)."""
    return T - timedelta(days=days, **kwargs)


def order(when: datetime, **payload: Any) -> HistoryEvent:
    return HistoryEvent("order.placed", when, payload)


def features(
    compiled: CompiledPlaybook,
    history: list[HistoryEvent],
    traits: dict[str, Any] | None = None,
    *,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    values, errors = compute_features(
        compiled, at=T, history=history, traits=traits or {}, base=base or {}
    )
    assert errors == {}
    return values


def test_count_sum_avg_min_max_and_last_over_the_history() -> None:
    compiled = playbook(
        """\
        orders:
          count: order.placed
        spent:
          sum: order.placed
          field: amount
        average:
          avg: order.placed
          field: amount
        smallest:
          min: order.placed
          field: amount
        largest:
          max: order.placed
          field: amount
        latest_plan:
          last: order.placed
          field: plan.name
        """
    )
    history = [
        order(at(10), amount=30, plan={"name": "basic"}),
        order(at(5), amount=12.5, plan={"name": "pro"}),
        order(at(1), amount=100, plan={"name": "team"}),
    ]
    assert features(compiled, history) == {
        "orders": 3,
        "spent": 142.5,
        "average": 47.5,
        "smallest": 12.5,
        "largest": 100,
        "latest_plan": "team",
    }


def test_count_only_counts_the_event_types_it_names() -> None:
    compiled = playbook(
        """\
        refunds:
          count: [refund.issued, chargeback.opened]
        """
    )
    history = [
        order(at(3)),
        HistoryEvent("refund.issued", at(2), {}),
        HistoryEvent("chargeback.opened", at(1), {}),
    ]
    assert features(compiled, history) == {"refunds": 2}


def test_days_since_the_last_matching_event() -> None:
    compiled = playbook(
        """\
        days_since_order:
          days_since: order.placed
        """
    )
    history = [order(at(30)), order(at(2, hours=12))]
    assert features(compiled, history) == {"days_since_order": 2.5}


def test_a_window_counts_events_after_its_start_up_to_and_including_the_trigger() -> None:
    compiled = playbook(
        """\
        orders_7d:
          count: order.placed
          within: 7d
        """
    )
    history = [
        order(at(7)),  # exactly 7 days before: outside (t - 7d, t]
        order(at(7) + timedelta(seconds=1)),
        order(at(3)),
        order(T),  # at the trigger's own time: inside
    ]
    assert features(compiled, history) == {"orders_7d": 3}


def test_events_after_the_trigger_are_ignored_so_a_late_run_gives_the_same_answer() -> None:
    compiled = playbook(
        """\
        orders:
          count: order.placed
        spent_30d:
          sum: order.placed
          field: amount
          within: 30d
        days_since_order:
          days_since: order.placed
        """
    )
    known_then = [order(at(20), amount=10), order(at(4), amount=5)]
    arrived_later = [order(at(-1), amount=1000), order(at(0, minutes=-5), amount=7)]
    expected = {"orders": 2, "spent_30d": 15, "days_since_order": 4}
    assert features(compiled, known_then) == expected
    assert features(compiled, known_then + arrived_later) == expected


def test_where_filters_events_on_their_payload() -> None:
    compiled = playbook(
        """\
        pricing_views:
          count: page.viewed
          where: payload.path == "/pricing"
        """
    )
    history = [
        HistoryEvent("page.viewed", at(3), {"path": "/pricing"}),
        HistoryEvent("page.viewed", at(2), {"path": "/blog"}),
        HistoryEvent("page.viewed", at(1), {}),
        HistoryEvent("page.viewed", at(1), {"path": "/pricing"}),
    ]
    assert features(compiled, history) == {"pricing_views": 2}


def test_an_event_a_where_cannot_be_checked_on_does_not_match_and_the_others_still_count() -> None:
    compiled = playbook(
        """\
        big_orders:
          count: order.placed
          where: payload.amount > 100
        """
    )
    history = [
        order(at(4), amount=150),
        order(at(3)),  # no amount: `null > 100` cannot be compared
        order(at(2), amount="lots"),
        order(at(1), amount=250),
        order(at(1), amount=50),
    ]
    assert features(compiled, history) == {"big_orders": 2}


def test_where_can_read_the_event_source() -> None:
    compiled = playbook(
        """\
        shop_orders:
          count: order.placed
          where: source == "shopify"
        """
    )
    history = [
        HistoryEvent("order.placed", at(2), {}, source="shopify"),
        HistoryEvent("order.placed", at(1), {}, source="api"),
    ]
    assert features(compiled, history) == {"shop_orders": 1}


def test_sum_ignores_values_that_are_not_numbers() -> None:
    compiled = playbook(
        """\
        spent:
          sum: order.placed
          field: amount
        largest:
          max: order.placed
          field: amount
        """
    )
    history = [
        order(at(3), amount=20),
        order(at(2), amount="1000"),
        order(at(2), amount=True),
        order(at(1), amount=None),
        order(at(1)),
        order(at(1), amount=2.5),
    ]
    assert features(compiled, history) == {"spent": 22.5, "largest": 20}


def test_defaults_apply_when_there_is_no_value() -> None:
    compiled = playbook(
        """\
        company_size:
          trait: company.size
          default: 0
        plan:
          last: order.placed
          field: plan
          default: free
        average:
          avg: order.placed
          field: amount
          default: 0
        days_since_order:
          days_since: order.placed
          default: 999
        no_default:
          max: order.placed
          field: amount
        """
    )
    assert features(compiled, []) == {
        "company_size": 0,
        "plan": "free",
        "average": 0,
        "days_since_order": 999,
        "no_default": None,
    }


def test_an_empty_count_or_sum_is_zero_not_the_default() -> None:
    compiled = playbook(
        """\
        orders:
          count: order.placed
          default: 5
        spent:
          sum: order.placed
          field: amount
          default: 5
        """
    )
    assert features(compiled, []) == {"orders": 0, "spent": 0}


def test_traits_are_read_from_the_entity_profile_by_dotted_path() -> None:
    compiled = playbook(
        """\
        size:
          trait: company.size
        budget:
          trait: budget
        """
    )
    traits = {"company": {"size": 40}, "budget": 8000}
    assert features(compiled, [], traits) == {"size": 40, "budget": 8000}


def test_a_formula_uses_the_features_above_it_and_the_triggering_event() -> None:
    compiled = playbook(
        """\
        orders:
          count: order.placed
        spent:
          sum: order.placed
          field: amount
        average:
          formula: spent / orders
        with_this_order:
          formula: spent + event.payload.amount
        """
    )
    history = [order(at(2), amount=30), order(at(1), amount=50)]
    base = {"event": {"payload": {"amount": 20}}, "entity": {}, "subject": "customer:1"}
    assert features(compiled, history, base=base) == {
        "orders": 2,
        "spent": 80,
        "average": 40,
        "with_this_order": 100,
    }


def test_a_formula_that_fails_takes_its_default_and_reports_why() -> None:
    compiled = playbook(
        """\
        budget:
          trait: budget
        doubled:
          formula: budget * 2
          default: 0
        """
    )
    values, errors = compute_features(compiled, at=T, history=[], traits={}, base={})
    assert values == {"budget": None, "doubled": 0}
    assert errors == {"doubled": "a value was null or of the wrong type"}
