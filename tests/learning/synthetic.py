"""Lead histories with a known relation between features and outcome, stored through the
service like any import: `lead.created` (with a budget trait), page views before it, and a
`deal.won` two days later for the leads that buy."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from opsloop.core.events import validate_events
from opsloop.service import OpsLoop

Kind = Literal["informative", "noise", "inverted", "budget"]

SCORING = """\
name: scoring
subject: lead
trigger:
  events: lead.created
features:
  budget:
    trait: budget
    default: 0
  visits:
    count: page.viewed
    within: 7d
scorecard:
  - label: Funded
    when: budget >= 5000
    points: 10
score: points + 40 * p_convert
rules:
  - label: Likely to buy
    when: score >= 35
    choose: call
otherwise: wait
options:
  call:
    label: Call them
  wait:
    label: Wait
outcome:
  success: deal.won
  within: 7d
model:
  as: p_convert
  predicts: deal.won
  features: [budget, visits]
  min_rows: 40
  algorithm: logistic_regression
"""


@dataclass(frozen=True)
class Lead:
    subject: str
    at: datetime
    budget: int
    visits: int
    won: bool


def plan(start: datetime, count: int, kind: Kind, *, seed: int, first: int = 0) -> list[Lead]:
    """`count` leads one hour apart from `start`. informative: more visits, likelier to buy;
    noise: buying has nothing to do with the features; inverted: the reverse of informative;
    budget: only the budget matters (a world that changed: visits came to matter later)."""
    rng = random.Random(f"{seed}:{kind}:{first}")
    leads = []
    for n in range(count):
        visits = rng.randint(0, 6)
        budget = rng.choice([0, 1000, 2500, 5000, 10000])
        if kind == "budget":
            logit = 0.0008 * (budget - 3700)
        else:
            strength = {"informative": 1.0, "noise": 0.0, "inverted": -1.0}[kind]
            logit = strength * (1.1 * (visits - 3) + 0.0001 * (budget - 3700))
        p = 1 / (1 + math.exp(-logit))
        leads.append(
            Lead(
                subject=f"lead:{first + n}",
                at=start + timedelta(hours=n),
                budget=budget,
                visits=visits,
                won=rng.random() < p,
            )
        )
    return leads


def events_of(leads: list[Lead]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for lead in leads:
        for k in range(lead.visits):
            events.append(
                {
                    "type": "page.viewed",
                    "subject": lead.subject,
                    "occurred_at": (lead.at - timedelta(hours=2 + k)).isoformat(),
                    "payload": {"path": "/pricing"},
                    "idempotency_key": f"{lead.subject}:view:{k}",
                }
            )
        events.append(
            {
                "type": "lead.created",
                "subject": lead.subject,
                "occurred_at": lead.at.isoformat(),
                "traits": {"budget": lead.budget},
                "idempotency_key": f"{lead.subject}:created",
            }
        )
        if lead.won:
            events.append(
                {
                    "type": "deal.won",
                    "subject": lead.subject,
                    "occurred_at": (lead.at + timedelta(days=2)).isoformat(),
                    "payload": {"amount": 1000},
                    "idempotency_key": f"{lead.subject}:won",
                }
            )
    return events


def store_history(ops: OpsLoop, leads: list[Lead]) -> None:
    """Store as imported history: features, training and outcomes see it, nothing is decided."""
    events = validate_events(events_of(leads), source="import", received_at=ops.now())
    for start in range(0, len(events), 1000):
        ops.ingest.store_events(events[start : start + 1000], decide=False)
