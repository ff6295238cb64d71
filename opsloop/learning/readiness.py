"""Readiness for `auto`: how often reviewers agreed with a playbook, judged conservatively.

A raw agreement rate of 100% over 12 reviews proves little, so the gate is the Wilson score
interval's 95% lower bound, not the rate: it only clears a 95% target after enough reviews,
and falls quickly when reviewers start disagreeing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

from opsloop.core.playbooks import Autonomy

CONFIDENCE = 0.95


def wilson_lower_bound(agreed: int, reviewed: int, confidence: float = CONFIDENCE) -> float:
    """Lower end of the Wilson score interval for `agreed` out of `reviewed` (0 when none).

    The closed form (Wilson, 1927), so that serving does not load scipy (0.8 s and 80 MiB);
    tests/learning/test_readiness.py checks it against scipy's `binomtest(...).proportion_ci`."""
    if reviewed == 0:
        return 0.0
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = agreed / reviewed
    centre = p + z * z / (2 * reviewed)
    spread = z * math.sqrt(p * (1 - p) / reviewed + z * z / (4 * reviewed * reviewed))
    return max(0.0, (centre - spread) / (1 + z * z / reviewed))


AGREEING_VERDICTS = frozenset({"approve"})


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reviewed: int
    agreed: int
    overridden: int
    rejected: int
    agreement: float | None
    lower_bound: float
    target: float
    min_reviews: int
    window: int
    why: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assess(verdicts: Sequence[str], autonomy: Autonomy) -> Readiness:
    """Judge the most recent reviews' verdicts (`approve`, `override`, `reject`; newest first,
    at most `autonomy.window` of them) against the playbook's target.

    An approval agrees with the playbook; an override or a rejection is a person saying it was
    wrong. Unreviewed decisions say nothing either way and are not counted."""
    recent = list(verdicts)[: autonomy.window]
    reviewed = len(recent)
    agreed = sum(1 for verdict in recent if verdict in AGREEING_VERDICTS)
    overridden = recent.count("override")
    rejected = recent.count("reject")
    lower = wilson_lower_bound(agreed, reviewed)
    enough = reviewed >= autonomy.min_reviews
    clears = lower >= autonomy.target
    if not enough:
        why = (
            f"needs {autonomy.min_reviews} reviewed decisions, has {reviewed}: "
            f"{autonomy.min_reviews - reviewed} more to go"
        )
    elif not clears:
        why = (
            f"reviewers agreed {agreed} of {reviewed} times; the 95% lower bound "
            f"{lower:.1%} is under the target {autonomy.target:.0%}"
        )
    else:
        why = (
            f"reviewers agreed {agreed} of {reviewed} times; the 95% lower bound "
            f"{lower:.1%} clears the target {autonomy.target:.0%}"
        )
    return Readiness(
        ready=enough and clears,
        reviewed=reviewed,
        agreed=agreed,
        overridden=overridden,
        rejected=rejected,
        agreement=round(agreed / reviewed, 4) if reviewed else None,
        lower_bound=round(lower, 4),
        target=autonomy.target,
        min_reviews=autonomy.min_reviews,
        window=autonomy.window,
        why=why,
    )
