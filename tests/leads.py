"""Decisions and actions for tests of the outbox's pages and use cases: a lead arrives, the lead
playbook decides, a person settles the decision, and its actions wait in the outbox."""

from __future__ import annotations

import json
from typing import Any

from opsloop.core.decisions import ReviewRequest
from opsloop.service import OpsLoop


def new_lead(ops: OpsLoop, number: int, **traits: Any) -> dict[str, Any]:
    """Ingest `lead.created` for lead:<number>; return the decision the lead playbook made."""
    body = {
        "type": "lead.created",
        "subject": f"lead:{number}",
        "traits": {"email": f"lead{number}@example.com", "company_size": 4, **traits},
    }
    ops.ingest.body(json.dumps(body).encode())
    [decision] = ops.decide.list_decisions(subject=f"lead:{number}")
    return decision


def settle(
    ops: OpsLoop, number: int, option: str = "nurture", **traits: Any
) -> list[dict[str, Any]]:
    """A new lead whose decision a person settles on `option`; its actions (not yet run).
    `email=None` leaves the lead without an email address, so its email is dead-lettered."""
    decision = new_lead(ops, number, **traits)
    if decision["choice"] == option:
        request = ReviewRequest("approve", "tests")
    else:
        request = ReviewRequest("override", "tests", option=option, reason="for the test")
    ops.review.verdict(decision["id"], request)
    actions: list[dict[str, Any]] = ops.decide.decision_detail(decision["id"])["actions"]
    return actions
