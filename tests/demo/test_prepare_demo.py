"""`prepare_demo`: what `opsloop demo` loads before it serves, checked in-process on a small
history: decisions, a simulated reviewer, actions that reach the sinks, re-runs that add
nothing, and a refusal to touch a database with real data."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from opsloop.demo.run import (
    PLAYBOOK,
    DemoBusiness,
    DemoRefused,
    LiveStream,
    live_events,
    prepare_demo,
)
from opsloop.demo.shop import PRODUCTS
from opsloop.demo.simulator import Simulator
from opsloop.service import OpsLoop
from opsloop.settings import Settings
from tests.conftest import eventually

DAYS = 15
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the history is fixed; the service clock is real


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, worker_poll_seconds=0.05)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoBusiness]:
    business = prepare_demo(
        settings(tmp_path_factory.mktemp("demo")), days=DAYS, seed=7, console=quiet(), now=NOW
    )
    yield business
    business.close()


def all_decisions(ops: OpsLoop, **filters: Any) -> list[dict[str, Any]]:
    return ops.decide.list_decisions(limit=5000, **filters)


def test_the_history_is_decided_and_old_decisions_are_reviewed(demo: DemoBusiness) -> None:
    [metrics] = demo.ops.learn.metrics(playbook=PLAYBOOK)
    assert metrics["playbook"] == "lead-qualification"
    assert metrics["total"] > 100
    assert metrics["pending_reviews"] > 0
    assert metrics["reviewed"] > 0.3 * metrics["total"]
    assert 0.05 < metrics["override_rate"] < 0.5, "the playbook is decent, not perfect"
    assert metrics["decisions"]["error"] == 0
    assert demo.loaded is not None
    assert demo.loaded.pending == metrics["pending_reviews"]


def test_recent_decisions_wait_for_the_user(demo: DemoBusiness) -> None:
    pending = all_decisions(demo.ops, status="pending")
    for decision in pending[:20]:
        trigger = demo.ops.decide.decision_detail(decision["id"])["trigger"]
        assert trigger["occurred_at"] >= NOW - timedelta(days=3)
    reviewed = all_decisions(demo.ops, status="approved")[:20]
    for decision in reviewed:
        trigger = demo.ops.decide.decision_detail(decision["id"])["trigger"]
        assert trigger["occurred_at"] < NOW - timedelta(days=3)


def test_the_simulated_reviewer_follows_the_ground_truth(demo: DemoBusiness) -> None:
    sim = Simulator(seed=7)
    overridden = all_decisions(demo.ops, status="overridden", playbook=PLAYBOOK)
    approved = all_decisions(demo.ops, status="approved", playbook=PLAYBOOK)
    assert overridden
    assert approved
    for decision in overridden + approved:
        hot = sim.ground_truth(decision["subject"]) >= 0.4
        assert decision["final_choice"] == ("hot" if hot else "nurture")
    detail = demo.ops.decide.decision_detail(overridden[0]["id"])
    [review] = detail["reviews"]
    assert review["reviewer"] == "simulated-reviewer"
    assert review["reason"].startswith("simulated reviewer: ground truth says")


def test_reviewed_decisions_actions_reached_the_sinks(demo: DemoBusiness) -> None:
    ops = demo.ops
    assert ops.deliver.list_actions(status="pending") == []
    assert ops.deliver.list_actions(status="dead") == []
    delivered = ops.deliver.list_actions(status="delivered", limit=5000)
    emails = [a for a in delivered if a["kind"] == "email"]
    chats = [a for a in delivered if a["kind"] == "notify"]
    totals = demo.outbox.totals()
    assert totals["emails"] == len(emails) > 0
    assert totals["chats"] == len(chats) > 0

    mail = demo.outbox.latest("emails", 1)[0]
    [to] = mail["to"]
    action = next(a for a in emails if a["request"]["to"] == to)
    entity = ops.ingest.get_entity(ops.decide.decision_detail(action["decision_id"])["subject"])
    assert to == entity["traits"]["email"]
    assert mail["subject"] == f"A few ideas for {entity['traits']['company']}"
    assert f"Hi {entity['traits']['first_name']}," in mail["body"]
    assert demo.outbox.latest("chats", 1)[0]["text"].startswith("Hot lead ")
    assert ops.deliver.list_tasks(limit=1)[0]["title"].startswith("Call ")


def test_won_and_lost_deals_become_outcomes(demo: DemoBusiness) -> None:
    [metrics] = demo.ops.learn.metrics(playbook=PLAYBOOK)
    assert metrics["successes"] > 0
    assert metrics["failures"] > 0


def test_the_live_stream_adds_leads_and_decisions(demo: DemoBusiness) -> None:
    ops = demo.ops
    newest = ops.ingest.list_events(limit=1)[0]["id"]
    started = datetime.now(UTC)
    stream = LiveStream(ops, demo.simulator.live(NOW, since=demo.history_start), per_minute=6000)
    stream.start()
    try:
        eventually(lambda: ops.ingest.list_events(type="lead.created", limit=1)[0]["id"] > newest)
        # The workers prepare_demo started decide on it.
        eventually(lambda: ops.decide.list_decisions(limit=1)[0]["event_id"] > newest)
    finally:
        stream.stop()
    live = [e for e in ops.ingest.list_events(limit=100) if e["id"] > newest]
    assert {e["source"] for e in live} == {"demo"}
    assert all(e["occurred_at"] >= started for e in live), "live events happen as they are sent"
    [decision] = ops.decide.list_decisions(limit=1)
    assert decision["status"] == "pending"


def test_the_live_stream_brings_the_shops_orders_and_its_stock_falls(demo: DemoBusiness) -> None:
    ops = demo.ops
    newest = ops.ingest.list_events(limit=1)[0]["id"]
    products = {p.subject for p in PRODUCTS}
    before = {s: ops.ingest.get_entity(s)["traits"].get("stock") for s in products}
    first = list(itertools.islice(live_events(demo, NOW), 200))
    shop = [e for e in first if e["idempotency_key"].startswith("demo:shop:")]
    assert any(e["subject"].startswith("lead:") for e in first), "interleaved with the leads'"
    assert any(e["subject"].startswith("customer:shop-") for e in shop), "customers order"
    lines = [e for e in shop if e["subject"] in products and e["type"] == "order.placed"]
    assert len({e["subject"] for e in lines}) >= 2, "lines about the shop's own products"

    stream = LiveStream(ops, iter(first), per_minute=60_000)
    stream.start()
    try:
        # Every shop event is new (the history ends at NOW): each one is stored, none is
        # quarantined.
        eventually(lambda: {e["idempotency_key"] for e in shop} <= stored_keys(ops, newest))
    finally:
        stream.stop()
    assert ops.ingest.list_quarantine(source="demo") == []
    sold = {e["subject"] for e in lines}
    after = {s: ops.ingest.get_entity(s)["traits"]["stock"] for s in sold}
    for subject in sold:
        assert after[subject] == [e for e in shop if e["subject"] == subject][-1]["traits"]["stock"]
    assert any(after[s] < before[s] for s in sold), "a user watching sees stock falling"


def stored_keys(ops: OpsLoop, after_id: int) -> set[str | None]:
    return {e["idempotency_key"] for e in ops.ingest.list_events(limit=1000) if e["id"] > after_id}


def test_running_the_demo_again_stores_nothing_twice(tmp_path: Path) -> None:
    first = prepare_demo(settings(tmp_path), days=3, seed=7, console=quiet(), now=NOW)
    try:
        newest = first.ops.ingest.list_events(limit=1)[0]["id"]
        decisions = first.ops.learn.metrics(playbook=PLAYBOOK)[0]["total"]
        # The shop's win-back emails and orders (opsloop/demo/shop.py) are made once too.
        win_back_sent = first.loaded.win_back_sent if first.loaded else 0
        orders = {e["id"] for e in first.ops.ingest.list_events(type="order.placed", limit=10**6)}
        # What a user does while trying the demo (README): send an event of their own.
        user_event = {
            "type": "lead.created",
            "subject": "lead:9001",
            "occurred_at": (NOW - timedelta(days=5)).isoformat(),
            "traits": {"email": "ana@example.com", "company_size": 40, "budget": 8000},
        }
        first.ops.ingest.body(json.dumps(user_event).encode())
        first.ops.run_jobs()
    finally:
        first.close()

    again = prepare_demo(settings(tmp_path), days=3, seed=7, console=quiet(), now=NOW)
    try:
        assert again.loaded is not None
        assert again.loaded.new_events == 0
        assert again.ops.ingest.list_events(limit=1)[0]["id"] == newest + 1
        assert again.ops.learn.metrics(playbook=PLAYBOOK)[0]["total"] == decisions + 1
        assert again.outbox.totals()["emails"] == 0, "nothing is sent twice"
        assert win_back_sent > 0
        assert again.loaded.win_back_sent == 0
        later = {e["id"] for e in again.ops.ingest.list_events(type="order.placed", limit=10**6)}
        assert later == orders
        [mine] = again.ops.decide.list_decisions(subject="lead:9001")
        assert mine["status"] == "pending", "the simulated reviewer leaves the user's leads alone"
    finally:
        again.close()


def test_the_demo_refuses_a_database_with_real_data(tmp_path: Path) -> None:
    ops = OpsLoop(settings(tmp_path))
    ops.prepare()
    ops.ingest.body(b'{"type": "order.placed", "subject": "order:1"}', source="shop")
    ops.close()

    with pytest.raises(DemoRefused, match=r"1 from 'shop'.*--data-dir"):
        prepare_demo(settings(tmp_path), days=3, seed=7, console=quiet(), now=NOW)
