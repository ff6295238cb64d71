"""The demo business's shop: offices order coffee supplies, with a hidden ground truth.

Besides the leads of `simulator.py`, the business sells a handful of products to its customers
(offices). Customers arrive every day (the same ones per seed, anchored to calendar days like
the leads), order every few weeks at a pace of their own, and after a hidden lifetime stop
ordering: these are the lapsed customers the win-back playbook writes to. Each order is one
`order.placed` event about the customer (`customer:shop-<n>`) and one per line about the product
(`product:<SKU>`, with its `quantity` and the product's `stock` and `on_order` traits after the
sale). The shop owner's own restocking is hidden too: for most products an order when stock runs
low and a delivery ten days later (`purchase.ordered`, `stock.received`); one product was
forgotten and is running out, one was bought far too much of, and one stopped selling.

What a win-back email does is the ground truth OpsLoop has to find: each subject line brings a
lapsed customer back with its own hidden probability (`WIN_BACK_RATES`), and `win_back()` says
whether and when that customer orders again after an email. `history()` is the window's
timeline, and `live()` goes on from its end for the demo's live stream, with the same customers
and the stock where the history left it. Pure: no I/O, same seed and window → same events.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal

from opsloop.demo.simulator import (
    COMPANY_SUFFIXES,
    COMPANY_WORDS,
    EPOCH,
    FIRST_NAMES,
    LAST_NAMES,
    LEADS_PER_DAY_SLOT,
    PlannedEvent,
    _day_index,
    _day_start,
    _poisson,
)

SHOP_DAYS = 112
"""The shop's history goes back at least this far (16 weeks), so that customers have been quiet
for 60 days and the forecasts have weeks of sales, however few days the demo loads."""
LIFETIME_DAYS = 100.0
"""Mean of a customer's hidden lifetime (exponential): after it, they order no more."""
MAX_LIFETIME_DAYS = 400
LEAD_TIME_DAYS = 10
"""The owner's supplier delivers this many days after an order."""
STOPPED_WEEKS = 13
"""The product that stopped selling sold nothing in the last weeks of the history."""
WIN_BACK_RATES = {"miss-you": 0.08, "running-low": 0.24, "new-arrivals": 0.12}
"""Hidden: the chance that a lapsed customer orders again within two weeks of a win-back email
with this subject line (the variants of playbooks/win-back.yaml). Any other email: 0.10."""
WIN_BACK_OTHER = 0.10
STILL_ORDERING = 0.9
"""A customer who has not lapsed (only a long gap) orders in the next two weeks anyway."""

Policy = Literal["managed", "forgotten", "overstocked", "stopped"]


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    price: float
    weight: float
    """How often it is in an order, relative to the others."""
    units: float
    """Mean units of it in an order line."""
    policy: Policy
    """The owner's hidden restocking: `managed` (reorders when low), `forgotten` (never
    reordered: running out), `overstocked` (bought years' worth), `stopped` (no longer sells)."""

    @property
    def subject(self) -> str:
        return f"product:{self.sku}"


PRODUCTS = (
    Product("BEANS-1KG", "House blend beans, 1 kg", 24.0, 10, 2.0, "managed"),
    Product("FILTERS-100", "Paper filters, 100", 6.5, 5, 2.0, "managed"),
    Product("DECAF-250G", "Decaf beans, 250 g", 9.0, 2, 1.0, "managed"),
    Product("OAT-MILK-1L", "Oat milk, 1 l", 2.8, 7, 4.0, "forgotten"),
    Product("MUG-CERAMIC", "Ceramic mug", 12.0, 0.4, 1.0, "overstocked"),
    Product("GRINDER-HAND", "Hand grinder", 79.0, 0.8, 1.0, "stopped"),
)
RUNNING_OUT = "OAT-MILK-1L"


@dataclass(frozen=True, slots=True)
class Customer:
    number: int
    joined_at: datetime
    lifetime: timedelta
    """Hidden: when they stop ordering, after joining."""
    every_days: float
    """Hidden: their mean number of days between orders."""
    traits: dict[str, Any]

    @property
    def subject(self) -> str:
        return f"customer:shop-{self.number}"


@dataclass(frozen=True, slots=True)
class _Line:
    at: datetime
    order: str
    customer: str
    product: Product
    quantity: int


class Shop:
    """The shop's timeline from `start` to `end` for one seed."""

    def __init__(self, seed: int, start: datetime, end: datetime) -> None:
        self.seed, self.start, self.end = seed, start, end

    # --- the public surface ----------------------------------------------------------------

    def history(self) -> list[PlannedEvent]:
        """Every order, purchase and delivery in [start, end), oldest first."""
        events, _ = self._history()
        return events

    def live(self) -> Iterator[PlannedEvent]:
        """The timeline from `end` on, oldest first and endless, in the history's shapes: the
        orders of the customers still ordering and of those who arrive, each product line with
        the stock after it (going on from where the history left it), and the owner's purchases
        and deliveries. The history's customers go on ordering until their lifetime ends; new
        ones arrive as they did in it. The history is replayed for its stock when the first
        event is asked for (about a tenth of a second), not before."""
        _, rooms = self._history()
        orders: list[tuple[datetime, int, int, Customer]] = []

        def plan(customer: Customer) -> None:
            for number, at in enumerate(self._order_times(customer)):
                if at >= self.end:
                    heapq.heappush(orders, (at, customer.number, number, customer))

        for customer in self.customers():
            plan(customer)
        ready: list[PlannedEvent] = []  # made, but not yet due: purchases, deliveries
        day = _day_index(self.end)
        while True:
            # A customer's first order is when it joins: load a day before any order of it.
            while not orders or orders[0][0] >= _day_start(day):
                for customer in self.customers_on(day):
                    if customer.joined_at >= self.end:
                        plan(customer)
                day += 1
            at, _, number, customer = heapq.heappop(orders)
            for room in rooms.values():
                for event in room.receive(at):
                    heapq.heappush(ready, event)
            placed, lines = self._order(customer, number, at)
            heapq.heappush(ready, placed)
            for line in lines:
                for event in rooms[line.product.sku].sell(line):
                    heapq.heappush(ready, event)
            while ready and ready[0].at <= at:
                yield heapq.heappop(ready)

    def win_back(self, subject: str, variant: str | None, sent_at: datetime) -> PlannedEvent | None:
        """The order a win-back email sent at `sent_at` brings, if any (the hidden ground truth):
        a lapsed customer comes back with the chance of its subject line, one who only paused
        orders anyway."""
        customer = self.customer(subject)
        rng = random.Random(f"{self.seed}:win-back:{subject}:{sent_at.date()}")
        lapsed = sent_at >= customer.joined_at + customer.lifetime
        rate = self.win_back_rate(variant) if lapsed else STILL_ORDERING
        if rng.random() >= rate:
            return None
        at = sent_at + timedelta(days=rng.uniform(0.5, 12.5))
        order = f"{customer.number}-back-{sent_at.date()}"
        return PlannedEvent(
            at,
            f"demo:shop:order:{order}",
            "order.placed",
            subject,
            {"order": order, "items": 1, "total": 24.0, "currency": "EUR"},
            customer.traits,
        )

    @staticmethod
    def win_back_rate(variant: str | None) -> float:
        """Hidden: how often a lapsed customer comes back after this subject line."""
        return WIN_BACK_RATES.get(variant or "", WIN_BACK_OTHER)

    def customer(self, subject: str) -> Customer:
        kind, _, key = subject.partition(":")
        number = key.removeprefix("shop-")
        if kind != "customer" or not number.isdigit():
            raise KeyError(f"{subject!r} is not a customer of the demo shop")
        day, index = divmod(int(number), LEADS_PER_DAY_SLOT)
        found = self.customers_on(day)
        if index >= len(found):
            raise KeyError(f"{subject!r} is not a customer of the demo shop")
        return found[index]

    # --- the model ---------------------------------------------------------------------------

    def customers(self) -> list[Customer]:
        """The customers who may order between start and end."""
        first = max(0, _day_index(self.start) - MAX_LIFETIME_DAYS)  # the shop opened at EPOCH
        return [
            customer
            for day in range(first, _day_index(self.end) + 1)
            for customer in self.customers_on(day)
            if customer.joined_at < self.end
            and customer.joined_at + customer.lifetime >= self.start
        ]

    def customers_on(self, day: int) -> list[Customer]:
        """The offices that placed their first order on day `day` (days since EPOCH)."""
        rng = random.Random(f"{self.seed}:shop:day:{day}")
        count = rng.choice((2, 3, 3, 4)) if (EPOCH + timedelta(days=day)).weekday() < 5 else 1
        start = _day_start(day)
        customers = []
        for index in range(count):
            number = day * LEADS_PER_DAY_SLOT + index
            joined = start + timedelta(hours=rng.uniform(8, 18))
            lifetime = min(rng.expovariate(1 / LIFETIME_DAYS), MAX_LIFETIME_DAYS)
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            company = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)}"
            domain = company.lower().replace(" ", "") + ".example"
            traits = {
                "email": f"{first}.{last}@{domain}".lower(),
                "first_name": first,
                "name": f"{first} {last}",
                "company": company,
            }
            customers.append(
                Customer(number, joined, timedelta(days=lifetime), rng.uniform(10, 30), traits)
            )
        return customers

    def order_times(self, customer: Customer) -> list[datetime]:
        """When the customer orders before `end`."""
        return list(itertools.takewhile(lambda at: at < self.end, self._order_times(customer)))

    def _order_times(self, customer: Customer) -> Iterator[datetime]:
        """When the customer orders: from joining until their lifetime ends, every so often."""
        rng = random.Random(f"{self.seed}:shop:orders:{customer.number}")
        ends = customer.joined_at + customer.lifetime
        at = customer.joined_at
        while at < ends:
            yield at
            gap = rng.gammavariate(4, customer.every_days / 4)
            at = _office_hours(at + timedelta(days=max(gap, 1)), rng)

    def _history(self) -> tuple[list[PlannedEvent], dict[str, _Stockroom]]:
        """The history's events, and the products' shelves at its end."""
        events: list[PlannedEvent] = []
        lines: list[_Line] = []
        for customer in self.customers():
            for number, at in enumerate(self.order_times(customer)):
                if self.start <= at:
                    placed, bought = self._order(customer, number, at)
                    events.append(placed)
                    lines.extend(bought)
        rooms = self._stockrooms(lines)
        for line in sorted(lines, key=lambda line: (line.at, line.order)):
            events.extend(rooms[line.product.sku].sell(line))
        for room in rooms.values():
            events.extend(room.receive(self.end, inclusive=False))
        return sorted(events), rooms

    def _order(
        self, customer: Customer, number: int, at: datetime
    ) -> tuple[PlannedEvent, list[_Line]]:
        """The customer's order event and its lines, one per product."""
        order = f"{customer.number}-{number}"
        bought = self._basket(order, at)
        total = round(sum(p.price * q for p, q in bought), 2)
        placed = PlannedEvent(
            at,
            f"demo:shop:order:{order}",
            "order.placed",
            customer.subject,
            {"order": order, "items": len(bought), "total": total, "currency": "EUR"},
            customer.traits,
        )
        return placed, [_Line(at, order, customer.subject, p, q) for p, q in bought]

    def _basket(self, order: str, at: datetime) -> list[tuple[Product, int]]:
        rng = random.Random(f"{self.seed}:shop:basket:{order}")
        stopped = self.end - timedelta(weeks=STOPPED_WEEKS)
        offered = [p for p in PRODUCTS if p.policy != "stopped" or at < stopped]
        count = min(len(offered), rng.choice((1, 1, 2, 2, 3)))
        chosen: list[Product] = []
        while len(chosen) < count:
            product = rng.choices(offered, [p.weight for p in offered])[0]
            if product not in chosen:
                chosen.append(product)
        return [(p, 1 + _poisson(rng, p.units - 1)) for p in chosen]

    def _stockrooms(self, lines: list[_Line]) -> dict[str, _Stockroom]:
        """Each product's shelf at the start of the history: the owner's hidden policy sets its
        stock and, for the managed ones, the reorder point and batch from the history's sales."""
        demand: dict[str, int] = defaultdict(int)
        last_two_weeks: dict[str, int] = defaultdict(int)
        recent = self.end - timedelta(days=14)
        for line in lines:
            demand[line.product.sku] += line.quantity
            if line.at >= recent:
                last_two_weeks[line.product.sku] += line.quantity
        weeks = max(1.0, (self.end - self.start) / timedelta(weeks=1))
        rooms = {}
        for product in PRODUCTS:
            sold = demand[product.sku]
            weekly = sold / weeks
            reorder_at = math.ceil(weekly * 2.5)
            batch = max(1, math.ceil(weekly * 4))
            if product.policy == "forgotten":
                stock = sold + max(1, round(last_two_weeks[product.sku] * 0.3))
            elif product.policy == "overstocked":
                stock = 240
            elif product.policy == "stopped":
                stock = sold + 14
            else:
                stock = reorder_at + batch // 2
            rooms[product.sku] = _Stockroom(product, stock, reorder_at, batch)
        return rooms


class _Stockroom:
    """One product's shelf: each sale as a product event with the stock after it, and the
    owner's purchases and deliveries. A line the stock cannot fill is a lost sale: no event.
    `Shop.history()` and `Shop.live()` run the same shelves, so the live stock goes on from
    where the history's ended."""

    def __init__(self, product: Product, stock: int, reorder_at: int, batch: int) -> None:
        self.product, self.stock, self.reorder_at, self.batch = product, stock, reorder_at, batch
        self.on_order = 0
        self.deliveries: list[datetime] = []

    def receive(self, until: datetime, *, inclusive: bool = True) -> list[PlannedEvent]:
        """The deliveries that arrived by `until` (or before it, when not `inclusive`)."""
        events = []
        while self.deliveries and (
            self.deliveries[0] <= until if inclusive else self.deliveries[0] < until
        ):
            arrived = self.deliveries.pop(0)
            self.stock, self.on_order = self.stock + self.batch, 0
            events.append(self._delivery(arrived))
        return events

    def sell(self, line: _Line) -> list[PlannedEvent]:
        """The deliveries due by the line, the line itself, and the owner's purchase when the
        stock fell to the reorder point of a product the owner manages."""
        events = self.receive(line.at)
        quantity = min(line.quantity, self.stock)
        if quantity <= 0:
            return events
        self.stock -= quantity
        product = self.product
        events.append(
            PlannedEvent(
                line.at,
                f"demo:shop:order:{line.order}:{product.sku}",
                "order.placed",
                product.subject,
                {"quantity": quantity, "order": line.order, "customer": line.customer},
                {"stock": self.stock, "on_order": self.on_order, "name": product.name},
            )
        )
        if product.policy == "managed" and not self.on_order and self.stock <= self.reorder_at:
            self.on_order = self.batch
            ordered = line.at + timedelta(minutes=30)
            events.append(
                PlannedEvent(
                    ordered,
                    f"demo:shop:purchase:{product.sku}:{line.order}",
                    "purchase.ordered",
                    product.subject,
                    {"quantity": self.batch, "supplier": "Roastery Wholesale"},
                    {"on_order": self.on_order},
                )
            )
            self.deliveries.append(ordered + timedelta(days=LEAD_TIME_DAYS))
        return events

    def _delivery(self, at: datetime) -> PlannedEvent:
        return PlannedEvent(
            at,
            f"demo:shop:delivery:{self.product.sku}:{at.isoformat()}",
            "stock.received",
            self.product.subject,
            {"quantity": self.batch},
            {"stock": self.stock, "on_order": 0},
        )


def _office_hours(at: datetime, rng: random.Random) -> datetime:
    """`at`'s day at a working hour, moved to Monday when it falls on a weekend."""
    day = at.date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=at.tzinfo) + timedelta(hours=rng.uniform(8, 18))
