"""The demo's shop on its own: orders about customers and products, stock that falls with sales
and rises with deliveries, the products each stock playbook is about, and a hidden ground truth
for the win-back emails."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from opsloop.demo.shop import PRODUCTS, RUNNING_OUT, SHOP_DAYS, STOPPED_WEEKS, Shop
from opsloop.demo.simulator import PlannedEvent

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
START = NOW - timedelta(days=SHOP_DAYS)


def shop() -> Shop:
    return Shop(7, START, NOW)


def by_subject(events: list[PlannedEvent]) -> dict[str, list[PlannedEvent]]:
    found: dict[str, list[PlannedEvent]] = defaultdict(list)
    for event in events:
        found[event.subject].append(event)
    return found


def test_the_same_seed_and_window_give_the_same_history() -> None:
    first, again = shop().history(), shop().history()
    assert [e.as_dict() for e in first] == [e.as_dict() for e in again]
    assert len({e.key for e in first}) == len(first), "every event has its own key"
    assert all(START <= e.at < NOW for e in first)
    assert first == sorted(first)


def test_each_product_line_is_an_order_event_with_its_quantity_and_the_stock_after_it() -> None:
    assert_the_stock_adds_up(shop().history())


def assert_the_stock_adds_up(timeline: list[PlannedEvent]) -> None:
    """Orders are about customers or the shop's products; a product's stock falls by each
    line's quantity and rises by each delivery."""
    products = {p.subject for p in PRODUCTS}
    for subject, events in by_subject(timeline).items():
        if subject not in products:
            assert subject.startswith("customer:shop-")
            assert {e.type for e in events} == {"order.placed"}
            assert all(e.traits["email"] for e in events)
            continue
        stock: int | None = None
        for event in events:
            if event.type == "order.placed":
                assert event.payload["quantity"] >= 1
                if stock is not None:
                    assert event.traits["stock"] == stock - event.payload["quantity"]
            elif event.type == "stock.received":
                assert stock is not None
                assert event.traits["stock"] == stock + event.payload["quantity"]
                assert event.traits["on_order"] == 0
            else:
                assert event.type == "purchase.ordered"
                assert event.traits["on_order"] == event.payload["quantity"]
                continue
            stock = event.traits["stock"]
            assert stock >= 0


def test_one_product_runs_out_one_is_overstocked_and_one_stopped_selling() -> None:
    events = by_subject(shop().history())

    def sold(sku: str, since: datetime = START) -> int:
        return sum(
            e.payload["quantity"]
            for e in events[f"product:{sku}"]
            if e.type == "order.placed" and e.at >= since
        )

    def last_traits(sku: str) -> dict[str, int]:
        traits: dict[str, int] = {}
        for event in events[f"product:{sku}"]:
            traits.update(event.traits)
        return traits

    weeks = SHOP_DAYS / 7
    running_out = last_traits(RUNNING_OUT)
    assert running_out["on_order"] == 0
    assert 0 < running_out["stock"] < sold(RUNNING_OUT) / weeks, "less than a week's sales left"
    assert not any(e.type == "stock.received" for e in events[f"product:{RUNNING_OUT}"])

    mugs = last_traits("MUG-CERAMIC")
    assert mugs["stock"] > 26 * sold("MUG-CERAMIC") / weeks, "more than half a year's sales"
    assert sold("GRINDER-HAND") > 0
    assert sold("GRINDER-HAND", NOW - timedelta(weeks=STOPPED_WEEKS)) == 0
    assert last_traits("GRINDER-HAND")["stock"] > 0

    beans = events["product:BEANS-1KG"]
    assert any(e.type == "purchase.ordered" for e in beans)
    assert any(e.type == "stock.received" for e in beans), "the owner restocks the others"


def test_customers_lapse_and_one_subject_line_brings_more_of_them_back() -> None:
    history = shop().history()
    last_order = {e.subject: e.at for e in history if e.subject.startswith("customer:")}
    quiet = [s for s, at in last_order.items() if at <= NOW - timedelta(days=60)]
    assert len(quiet) > 50, "enough customers for the win-back playbook to write to"

    the_shop = shop()
    lapsed = [s for s in quiet if (c := the_shop.customer(s)).joined_at + c.lifetime <= NOW]
    assert len(lapsed) > 0.8 * len(quiet)
    came_back = {
        variant: sum(the_shop.win_back(s, variant, NOW) is not None for s in lapsed)
        for variant in ("miss-you", "running-low", "new-arrivals")
    }
    assert came_back["running-low"] > came_back["new-arrivals"] > came_back["miss-you"]
    reply = next(r for s in lapsed if (r := the_shop.win_back(s, "running-low", NOW)) is not None)
    assert reply.type == "order.placed"
    assert NOW < reply.at < NOW + timedelta(days=14), "inside the playbook's outcome window"
    assert the_shop.win_back(reply.subject, "running-low", NOW) == reply, "the same answer"


def test_the_live_orders_go_on_from_the_history_with_its_customers_and_stock() -> None:
    history = shop().history()
    live = list(itertools.islice(shop().live(), 3000))
    assert [e.as_dict() for e in live] == [
        e.as_dict() for e in itertools.islice(shop().live(), 3000)
    ], "the same seed gives the same live orders"
    assert live == sorted(live), "in time, so the stream can interleave them with the leads'"
    assert all(e.at >= NOW for e in live)
    assert live[-1].at > NOW + timedelta(weeks=4), "a plausible pace: about 35 events a day"
    assert not {e.key for e in live} & {e.key for e in history}
    assert {e.type for e in live} == {e.type for e in history}
    assert_the_stock_adds_up(history + live)

    the_shop = shop()
    for event in live:
        if event.subject.startswith("customer:"):
            customer = the_shop.customer(event.subject)
            assert customer.joined_at <= event.at < customer.joined_at + customer.lifetime
    ordering = {e.subject for e in live if e.subject.startswith("customer:")}
    known = {e.subject for e in history if e.subject.startswith("customer:")}
    assert ordering & known, "the history's customers order again"
    assert ordering - known, "and new ones arrive"
    sold = Counter(e.subject for e in live if e.type == "order.placed" and "quantity" in e.payload)
    assert sold["product:BEANS-1KG"] > 100
    assert sold["product:GRINDER-HAND"] == 0, "it stopped selling"
    oat_milk = [e for e in live if e.subject == f"product:{RUNNING_OUT}"]
    assert oat_milk[-1].traits["stock"] == 0, "never reordered, it runs out"
