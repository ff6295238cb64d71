"""The demo business: deterministic, valid events, and a hidden propensity that really drives
what leads do, which is what makes the demo worth learning from."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsloop.core.events import validate_events
from opsloop.demo.simulator import Simulator

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def history() -> list[dict[str, Any]]:
    return Simulator(seed=7).history(90, NOW)


def by_lead(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The leads' events by lead (a won lead's customer events are left out)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["subject"].startswith("lead:"):
            grouped[event["subject"]].append(event)
    return grouped


def quartiles(sim: Simulator, subjects: list[str]) -> tuple[list[str], list[str]]:
    ranked = sorted(subjects, key=sim.ground_truth)
    quarter = len(ranked) // 4
    return ranked[:quarter], ranked[-quarter:]


def test_the_same_seed_gives_the_same_business(history: list[dict[str, Any]]) -> None:
    assert Simulator(seed=7).history(90, NOW) == history
    live = list(itertools.islice(Simulator(seed=7).live(NOW), 200))
    assert list(itertools.islice(Simulator(seed=7).live(NOW), 200)) == live
    assert Simulator(seed=8).history(90, NOW) != history


def test_history_is_oldest_first_before_now_with_unique_keys(
    history: list[dict[str, Any]],
) -> None:
    times = [datetime.fromisoformat(e["occurred_at"]) for e in history]
    assert times == sorted(times)
    assert times[-1] < NOW
    keys = [e["idempotency_key"] for e in history]
    assert len(set(keys)) == len(keys)
    assert {e["source"] for e in history} == {"demo"}


def test_every_generated_event_is_valid_for_opsloop(history: list[dict[str, Any]]) -> None:
    live = list(itertools.islice(Simulator(seed=7).live(NOW), 500))
    stored = validate_events([*history, *live], source="demo", received_at=NOW)
    assert len(stored) == len(history) + len(live)
    types = Counter(e.type for e in stored)
    assert set(types) == {
        "lead.created",
        "page.viewed",
        "demo.requested",
        "deal.won",
        "deal.lost",
        "signup.completed",
        "project.created",
    }
    created = next(e for e in stored if e.type == "lead.created")
    assert {"email", "first_name", "name", "company", "company_size", "budget"} <= set(
        created.traits
    )
    assert {e.payload["path"] for e in stored if e.type == "page.viewed"} >= {
        "/",
        "/pricing",
        "/docs",
        "/case-studies",
    }


def test_ten_to_twenty_new_leads_a_day(history: list[dict[str, Any]]) -> None:
    per_day = Counter(
        e["occurred_at"][:10] for e in history if e["type"] == "lead.created"
    ).values()
    full_days = sorted(per_day)[1:-1]  # the window cuts the first and last day
    assert min(full_days) >= 10
    assert max(full_days) <= 20
    assert 85 * 10 <= sum(per_day) <= 91 * 20


def test_the_propensity_is_hidden_from_every_event(history: list[dict[str, Any]]) -> None:
    sim = Simulator(seed=7)
    for event in history[:2000]:
        # A customer is a won lead: the same hidden propensity, not in its events either.
        p = sim.ground_truth(event["subject"].replace("customer:", "lead:"))
        values = [*event["payload"].values(), *event.get("traits", {}).values()]
        assert p not in values
        assert not {"propensity", "p", "intent", "score"} & {
            *event["payload"],
            *event.get("traits", {}),
        }


def test_high_propensity_leads_win_far_more_often(history: list[dict[str, Any]]) -> None:
    sim = Simulator(seed=7)
    leads = by_lead(history)
    settled = [s for s, events in leads.items() if any(e["type"] == "lead.created" for e in events)]
    bottom, top = quartiles(sim, settled)

    def win_rate(subjects: list[str]) -> float:
        won = sum(any(e["type"] == "deal.won" for e in leads[s]) for s in subjects)
        return won / len(subjects)

    assert win_rate(top) > 0.4
    assert win_rate(top) > 4 * win_rate(bottom)


def test_high_propensity_leads_visit_more_and_look_at_pricing_more(
    history: list[dict[str, Any]],
) -> None:
    sim = Simulator(seed=7)
    leads = by_lead(history)
    bottom, top = quartiles(sim, list(leads))

    def views(subjects: list[str]) -> float:
        return statistics.mean(sum(e["type"] == "page.viewed" for e in leads[s]) for s in subjects)

    def pricing_share(subjects: list[str]) -> float:
        paths = [
            e["payload"]["path"] for s in subjects for e in leads[s] if e["type"] == "page.viewed"
        ]
        return paths.count("/pricing") / len(paths)

    def demo_rate(subjects: list[str]) -> float:
        return statistics.mean(
            any(e["type"] == "demo.requested" for e in leads[s]) for s in subjects
        )

    assert views(top) > 2.5 * views(bottom)
    assert pricing_share(top) > 2 * pricing_share(bottom)
    assert demo_rate(top) > 4 * demo_rate(bottom)


def test_moving_the_window_keeps_the_same_events_under_the_same_keys(
    history: list[dict[str, Any]],
) -> None:
    later = Simulator(seed=7).history(90, NOW + timedelta(days=1))
    earlier = {e["idempotency_key"]: e for e in history}
    shared = [e for e in later if e["idempotency_key"] in earlier]
    assert len(shared) > 0.9 * len(history)
    assert all(earlier[e["idempotency_key"]] == e for e in shared)


def test_live_events_continue_the_history_and_are_stamped_when_sent(
    history: list[dict[str, Any]],
) -> None:
    sim = Simulator(seed=7)
    live = list(itertools.islice(sim.live(NOW, since=NOW - timedelta(days=90)), 400))
    assert all("occurred_at" not in e for e in live)
    assert not {e["idempotency_key"] for e in live} & {e["idempotency_key"] for e in history}
    types = Counter(e["type"] for e in live)
    assert types["lead.created"] >= 10
    assert types["page.viewed"] > types["lead.created"]
    assert types["deal.won"] + types["deal.lost"] >= 1
    known = {e["subject"] for e in history} | {
        e["subject"] for e in live if e["type"] == "lead.created"
    }
    # Visits and deals in the stream belong to leads the ledger knows or is about to meet, and
    # a customer is a won lead of theirs.
    subjects = {
        e["subject"].replace("customer:", "lead:") for e in live if e["type"] != "page.viewed"
    }
    assert subjects <= known


def test_ground_truth_knows_only_the_businesss_leads() -> None:
    sim = Simulator(seed=7)
    [lead, *_] = sim.leads_between(NOW - timedelta(days=1), NOW)
    assert 0 < sim.ground_truth(lead.subject) < 1
    with pytest.raises(KeyError):
        sim.ground_truth("lead:9099")
    with pytest.raises(KeyError):
        sim.ground_truth("ticket:1")
