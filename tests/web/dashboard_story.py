"""A history for the dashboard's tests, built through the service on a fake clock the way
tests/service/test_metrics.py builds its own: seven ISO weeks of leads reviewed ever sooner
and overridden ever less, deals won and lost, customers rating us better each week, and a
second playbook with an action that cannot be delivered.

    weeks 10 to 16 of 2026 (Mondays 2 March to 13 April), each week on Monday 09:00:
      four leads: sizes 40, 20, 50 (→ call) and 3 (→ wait)
      reviewed after REVIEW_HOURS[week] hours: the size-3 lead overridden to call in weeks
      10 to 12, approved afterwards; the size-50 lead rejected in week 10
      a day later: the first lead's deal won, the second's lost, from week 14 the fourth's won
      too (outcomes count within 2 days)
      a CSAT answer of CSAT[week]
    ticket-triage: one angry ticket in week 16 whose webhook's template fails (dead-lettered),
      and one calm ticket left waiting for review
    now: Friday 17 April 2026 09:00 (every outcome window has closed, the last week's too)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from opsloop.core.decisions import ReviewRequest
from opsloop.service import OpsLoop
from tests.conftest import Clock, OpsFactory

FOLLOW_UP = """
name: follow-up
description: Calls the leads big enough to be worth a call; the rest wait.
subject: lead
mode: recommend
trigger:
  events: [lead.created]
features:
  company_size:
    trait: company_size
    default: 0
rules:
  - when: company_size >= 10
    choose: call
otherwise: wait
options:
  call:
    actions:
      - kind: update_traits
        traits:
          status: to call
  wait:
    actions:
      - kind: update_traits
        traits:
          status: waiting
outcome:
  success: deal.won
  failure: deal.lost
  within: 2d
"""

TICKET_TRIAGE = """
name: ticket-triage
description: Sends angry tickets to the help desk at once.
subject: ticket
mode: recommend
trigger:
  events: [ticket.opened]
features:
  angry:
    trait: angry
    default: 0
rules:
  - when: angry >= 1
    choose: escalate
otherwise: queue
options:
  escalate:
    actions:
      - kind: webhook
        url: http://127.0.0.1:9/helpdesk
        body:
          ticket: "{{ entity.ticket_number.upper() }}"
  queue:
    actions:
      - kind: update_traits
        traits:
          queue: general
"""

FIRST_MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WEEKS = 7
REVIEW_HOURS = (8.0, 6.0, 5.0, 4.0, 2.0, 1.0, 0.5)
CSAT = (3, 3, 4, 3, 4, 5, 5)
NOW = datetime(2026, 4, 17, 9, 0, tzinfo=UTC)


def send(ops: OpsLoop, *events: dict[str, Any]) -> None:
    ops.ingest.body(json.dumps({"events": list(events)}, default=str).encode())


def review(ops: OpsLoop, subject: str, verdict: str, **more: Any) -> None:
    [row] = ops.decide.list_decisions(subject=subject)
    request = ReviewRequest(verdict=verdict, reviewer="maria", **more)  # type: ignore[arg-type]
    ops.review.verdict(int(row["id"]), request)
    ops.run_jobs()  # its actions are delivered now, which is when time to action stops


def build_history(make_ops: OpsFactory, url: str, clock: Clock) -> OpsLoop:
    clock.now = FIRST_MONDAY
    ops = make_ops(url, playbooks=[FOLLOW_UP, TICKET_TRIAGE])
    for week in range(WEEKS):
        monday = FIRST_MONDAY + timedelta(weeks=week)
        clock.now = monday
        leads = {f"w{week}a": 40, f"w{week}b": 20, f"w{week}c": 3, f"w{week}d": 50}
        send(
            ops,
            *(
                {"type": "lead.created", "subject": f"lead:{key}", "traits": {"company_size": n}}
                for key, n in leads.items()
            ),
        )
        ops.run_jobs()
        clock.now = monday + timedelta(hours=REVIEW_HOURS[week])
        review(ops, f"lead:w{week}a", "approve")
        review(ops, f"lead:w{week}b", "approve")
        if week < 3:
            review(ops, f"lead:w{week}c", "override", option="call", reason="they asked")
        else:
            review(ops, f"lead:w{week}c", "approve")
        if week == 0:
            review(ops, f"lead:w{week}d", "reject", reason="a student project")
        else:
            review(ops, f"lead:w{week}d", "approve")
        clock.now = monday + timedelta(days=1)
        send(
            ops,
            {"type": "deal.won", "subject": f"lead:w{week}a"},
            {"type": "deal.lost", "subject": f"lead:w{week}b"},
            *([{"type": "deal.won", "subject": f"lead:w{week}d"}] if week >= 4 else []),
            {
                "type": "csat.submitted",
                "subject": f"customer:{week}",
                "payload": {"rating": CSAT[week]},
            },
        )
        ops.run_jobs()
    clock.now = FIRST_MONDAY + timedelta(weeks=WEEKS - 1, hours=2)
    send(
        ops,
        {"type": "ticket.opened", "subject": "ticket:1", "traits": {"angry": 1}},
        {"type": "ticket.opened", "subject": "ticket:2", "traits": {"angry": 0}},
    )
    ops.run_jobs()
    review(ops, "ticket:1", "approve")
    clock.now = NOW
    ops.learn.close_outcome_windows()
    return ops
