"""A simulated B2B business with a hidden ground truth.

Every lead has traits a CRM would know (size, budget, industry, role, source) and a hidden
propensity to buy, `p`, that no event carries. `p` drives what the lead does: how often it visits,
how much of that is the pricing page, whether it asks for a demo, and whether the deal is won.
OpsLoop only ever sees the events; tests and the learning work can ask `ground_truth(subject)`.

The business is one deterministic timeline per seed, anchored to calendar days: lead
`lead:<n>` (n = 100 * day number + index) always has the same traits and journey, wherever the
history window starts. So re-running the demo stores nothing twice (events carry stable
idempotency keys), `history()` is the timeline before `now`, and `live()` plays the timeline
after `now` in fast-forward for the live stream.

The business also sells coffee-corner products to offices: its shop, with customers who lapse,
stock that runs out and a win-back ground truth, is `shop.py`.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

SOURCE = "demo"
EPOCH = date(2024, 1, 1)
"""Day 0 of the business; a lead's number encodes the day it arrived."""
LEADS_PER_DAY_SLOT = 100
PRE_CREATION_DAYS = 10
"""Anonymous visits happen up to this many days before a lead fills in the form."""

INDUSTRIES = {
    "software": 0.6,
    "agency": 0.3,
    "manufacturing": 0.2,
    "retail": 0.0,
    "healthcare": -0.2,
    "education": -0.6,
    "nonprofit": -0.8,
}
ROLES = {
    "head of operations": 0.7,
    "founder": 0.6,
    "ceo": 0.5,
    "marketing manager": 0.1,
    "engineer": -0.2,
    "consultant": -0.4,
    "student": -1.5,
}
SOURCES = {
    "referral": 0.9,
    "partner": 0.5,
    "webinar": 0.4,
    "organic": 0.1,
    "paid_search": -0.1,
    "cold_outbound": -0.7,
}
BUDGETS = (0, 1000, 2500, 5000, 10000, 25000, 50000)
BUDGET_WEIGHTS = (20, 15, 20, 18, 14, 9, 4)
FIRST_NAMES = (
    "Ana", "Bo", "Chen", "Dara", "Elif", "Farah", "Gus", "Hana", "Ines", "Jon", "Kai", "Lena",
    "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Vik", "Wren", "Yara",
)  # fmt: skip
LAST_NAMES = (
    "Silva", "Novak", "Okafor", "Larsen", "Kim", "Moreau", "Rossi", "Haddad", "Berg", "Costa",
    "Ivanova", "Mensah", "Tanaka", "Fischer", "Lopez", "Walsh", "Dubois", "Nair",
)  # fmt: skip
COMPANY_WORDS = (
    "Acme", "Bright", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Juniper",
    "Kite", "Lumen", "Maple", "Nimbus", "Orbit", "Pine", "Quarry", "River", "Summit", "Tidal",
)  # fmt: skip
COMPANY_SUFFIXES = ("Labs", "Works", "Studio", "Supply", "Health", "Foods", "Logistics", "Group")
BLOG_POSTS = (
    "/blog/automate-lead-follow-up",
    "/blog/five-metrics-for-small-teams",
    "/blog/what-is-a-playbook",
    "/blog/customer-support-that-scales",
    "/blog/stop-losing-leads",
)
LOST_REASONS = ("chose a competitor", "no budget this year", "bad timing", "went quiet")


@dataclass(frozen=True, slots=True)
class Lead:
    number: int
    created_at: datetime
    traits: dict[str, Any]
    propensity: float
    """The hidden probability that this lead buys: never in any event."""

    @property
    def subject(self) -> str:
        return f"lead:{self.number}"


@dataclass(frozen=True, slots=True, order=True)
class PlannedEvent:
    at: datetime
    key: str
    type: str = field(compare=False)
    subject: str = field(compare=False)
    payload: dict[str, Any] = field(compare=False, default_factory=dict)
    traits: dict[str, Any] = field(compare=False, default_factory=dict)

    def as_dict(self, *, stamped: bool = True) -> dict[str, Any]:
        """The event as OpsLoop's ingest API takes it; unstamped events get their time when
        they are received (the live stream)."""
        event: dict[str, Any] = {
            "type": self.type,
            "subject": self.subject,
            "payload": self.payload,
            "idempotency_key": self.key,
            "source": SOURCE,
        }
        if self.traits:
            event["traits"] = self.traits
        if stamped:
            event["occurred_at"] = self.at.isoformat()
        return event


class Simulator:
    """The demo business for one seed. Pure: no I/O, same seed → same events."""

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed

    # --- the public surface ----------------------------------------------------------------

    def history(self, days: int, now: datetime) -> list[dict[str, Any]]:
        """Every event before `now` of the leads that arrived in the last `days` days, oldest
        first (a lead's first anonymous visits may fall a few days before the window)."""
        return [event.as_dict() for event in self.planned_history(days, now)]

    def planned_history(self, days: int, now: datetime) -> list[PlannedEvent]:
        start = now - timedelta(days=days)
        planned: list[PlannedEvent] = []
        for lead in self.leads_between(start, now):
            planned.extend(e for e in self.journey(lead) if e.at < now)
        planned.sort()
        return planned

    def live(self, now: datetime, *, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """The timeline from `now` on, without timestamps: the stream stamps each event as it
        sends it, so the future plays in fast-forward. Only leads that arrived at or after
        `since` (default: 90 days before `now`) take part, so a lead never turns up live
        without the history that introduced it."""
        for event in self.planned_live(now, since=since):
            yield event.as_dict(stamped=False)

    def planned_live(
        self, now: datetime, *, since: datetime | None = None
    ) -> Iterator[PlannedEvent]:
        """`live()` with each event's planned time, oldest first (to interleave it with the
        shop's, `Shop.live()`)."""
        start = since if since is not None else now - timedelta(days=90)
        heap: list[PlannedEvent] = []
        day = _day_index(start)
        while True:
            # Leads of `day` visit from PRE_CREATION_DAYS before it: load them before any
            # event that late can be sent.
            while not heap or heap[0].at >= _day_start(day - PRE_CREATION_DAYS):
                for lead in self.leads_on(day):
                    if lead.created_at >= start:
                        for event in self.journey(lead):
                            if event.at >= now:
                                heapq.heappush(heap, event)
                day += 1
            yield heapq.heappop(heap)

    def onboarding(self, lead: Lead, won_at: datetime) -> list[PlannedEvent]:
        """A won lead becomes a customer: it signs up within a day or so, and most create
        their first project some days later (the key action of the built-in onboarding
        playbook). The customers do not read OpsLoop's emails: their pace is the same before
        and after the playbook goes live."""
        rng = random.Random(f"{self.seed}:customer:{lead.number}")
        subject = f"customer:{lead.number}"
        prefix = f"demo:{subject}"
        signed_up = won_at + timedelta(hours=rng.uniform(1, 30))
        events = [
            PlannedEvent(
                signed_up,
                f"{prefix}:signup",
                "signup.completed",
                subject,
                {"plan": "team"},
                _customer_traits(lead),
            )
        ]
        if rng.random() < 0.3 + 0.5 * lead.propensity:
            after = timedelta(days=math.exp(rng.gauss(math.log(3.5), 0.8)))
            events.append(
                PlannedEvent(
                    signed_up + after,
                    f"{prefix}:project",
                    "project.created",
                    subject,
                    {"template": rng.choice(("blank", "sales pipeline", "support queue"))},
                )
            )
        return events

    def ground_truth(self, subject: str) -> float:
        """The hidden propensity of a lead of this business (for tests and evaluation)."""
        kind, _, key = subject.partition(":")
        if kind != "lead" or not key.isdigit():
            raise KeyError(f"{subject!r} is not a lead of the demo business")
        number = int(key)
        day, index = divmod(number, LEADS_PER_DAY_SLOT)
        leads = self.leads_on(day)
        if index >= len(leads):
            raise KeyError(f"{subject!r} is not a lead of the demo business")
        return leads[index].propensity

    # --- the model ---------------------------------------------------------------------------

    def leads_between(self, start: datetime, end: datetime) -> list[Lead]:
        return [
            lead
            for day in range(_day_index(start), _day_index(end) + 1)
            for lead in self.leads_on(day)
            if start <= lead.created_at < end
        ]

    def leads_on(self, day: int) -> list[Lead]:
        """The leads that filled in the form on day `day` (days since EPOCH)."""
        rng = random.Random(f"{self.seed}:day:{day}")
        weekend = (EPOCH + timedelta(days=day)).weekday() >= 5
        count = rng.randint(10, 13) if weekend else rng.randint(13, 20)
        seconds = sorted(int(rng.triangular(6, 21, 11) * 3600) for _ in range(count))
        start = _day_start(day)
        return [
            self._lead(day * LEADS_PER_DAY_SLOT + i, start + timedelta(seconds=s))
            for i, s in enumerate(seconds)
        ]

    def _lead(self, number: int, created_at: datetime) -> Lead:
        rng = random.Random(f"{self.seed}:lead:{number}")
        size = max(1, min(5000, round(math.exp(rng.gauss(3.3, 1.4)))))
        budget = rng.choices(BUDGETS, BUDGET_WEIGHTS)[0]
        industry = rng.choice(list(INDUSTRIES))
        role = rng.choice(list(ROLES))
        source = rng.choices(list(SOURCES), (10, 4, 5, 30, 30, 21))[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)}"
        domain = company.lower().replace(" ", "") + ".example"
        intent = rng.gauss(0, 0.6)  # what no form asks: how badly they need it right now
        logit = (
            -2.3
            + _size_fit(size)
            + 0.45 * math.log2(1 + budget / 2500)
            + INDUSTRIES[industry]
            + ROLES[role]
            + SOURCES[source]
            + intent
        )
        traits = {
            "email": f"{first}.{last}@{domain}".lower(),
            "first_name": first,
            "name": f"{first} {last}",
            "company": company,
            "company_size": size,
            "budget": budget,
            "industry": industry,
            "role": role,
            "source": source,
        }
        return Lead(number, created_at, traits, 1 / (1 + math.exp(-logit)))

    def journey(self, lead: Lead) -> list[PlannedEvent]:
        """What the lead does: anonymous visits, the form, more visits (more and more often the
        pricing page the likelier it buys), maybe a demo request, then a won or lost deal."""
        rng = random.Random(f"{self.seed}:journey:{lead.number}")
        p, t0, subject = lead.propensity, lead.created_at, lead.subject
        prefix = f"demo:{subject}"
        events: list[PlannedEvent] = []

        def view(at: datetime, k: int) -> PlannedEvent:
            return PlannedEvent(
                at, f"{prefix}:view:{k}", "page.viewed", subject, {"path": _path(rng, p)}
            )

        for k in range(_poisson(rng, 0.5 + 6 * p)):
            before = timedelta(hours=rng.expovariate(1 / 40))
            before = min(before, timedelta(days=PRE_CREATION_DAYS - 0.1))
            events.append(view(t0 - before - timedelta(minutes=1), k))
        events.append(
            PlannedEvent(t0, f"{prefix}:created", "lead.created", subject, {}, lead.traits)
        )

        decided_days = rng.uniform(5, 40)
        decided_at = t0 + timedelta(days=decided_days)
        won = rng.random() < p
        for k in range(100, 100 + _poisson(rng, 1.5 + 22 * p)):
            after = timedelta(days=rng.expovariate(1 / (3 + 6 * p)))
            if after < timedelta(days=decided_days):
                events.append(view(t0 + after, k))
        if rng.random() < 0.04 + 0.6 * p:
            asked = t0 + timedelta(days=rng.uniform(0.5, min(10.0, decided_days - 0.5)))
            events.append(
                PlannedEvent(
                    asked,
                    f"{prefix}:demo",
                    "demo.requested",
                    subject,
                    {"form": "book-a-demo", "team_size": lead.traits["company_size"]},
                )
            )
        if won:
            amount = max(1200, round(lead.traits["budget"] * rng.uniform(0.6, 1.6), -2))
            events.append(
                PlannedEvent(
                    decided_at,
                    f"{prefix}:deal",
                    "deal.won",
                    subject,
                    {"amount": amount, "currency": "EUR"},
                )
            )
            events.extend(self.onboarding(lead, decided_at))
        elif rng.random() < 0.7:  # the rest simply go quiet
            events.append(
                PlannedEvent(
                    decided_at,
                    f"{prefix}:deal",
                    "deal.lost",
                    subject,
                    {"reason": rng.choice(LOST_REASONS[:3])},
                )
            )
        return sorted(events)


def _customer_traits(lead: Lead) -> dict[str, Any]:
    keys = ("email", "first_name", "name", "company", "company_size")
    return {**{key: lead.traits[key] for key in keys}, "plan": "team"}


def _size_fit(size: int) -> float:
    """Best between 20 and 300 people; tiny shops and large enterprises rarely buy."""
    if size < 5:
        return -1.2
    if size < 20:
        return 0.0
    if size <= 300:
        return 1.0
    if size <= 1000:
        return 0.2
    return -0.8


def _path(rng: random.Random, p: float) -> str:
    roll = rng.random()
    pricing = 0.06 + 0.4 * p
    if roll < pricing:
        return "/pricing"
    if roll < pricing + 0.1 + 0.15 * p:
        return rng.choice(("/docs", "/case-studies"))
    if roll < pricing + 0.35:
        return "/"
    return rng.choice(BLOG_POSTS)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means used here."""
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _day_index(at: datetime) -> int:
    return (at.astimezone(UTC).date() - EPOCH).days


def _day_start(day: int) -> datetime:
    return datetime.combine(EPOCH + timedelta(days=day), time(0), tzinfo=UTC)
