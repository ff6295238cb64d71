"""The simulated reviewer: a person who knows each lead better than any event says.

It calls a lead hot when the lead's hidden propensity to buy is at least `HOT_PROPENSITY`, and
reviews a decision the way the review inbox asks: approve when the playbook chose the same,
otherwise override with the right option and say why (the reason becomes training data).
"""

from __future__ import annotations

from opsloop.core.decisions import ReviewRequest

HOT_PROPENSITY = 0.4
"""The simulated reviewer calls a lead hot when its hidden propensity is at least this."""
REVIEWER = "simulated-reviewer"


def right_option(propensity: float) -> str:
    return "hot" if propensity >= HOT_PROPENSITY else "nurture"


def verdict(choice: str | None, propensity: float) -> ReviewRequest:
    right = right_option(propensity)
    if choice == right:
        return ReviewRequest(verdict="approve", reviewer=REVIEWER)
    ready = "ready" if right == "hot" else "not ready"
    return ReviewRequest(
        verdict="override",
        reviewer=REVIEWER,
        option=right,
        reason=f"simulated reviewer: ground truth says this lead is {ready} to buy",
    )
