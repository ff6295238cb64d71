"""The readiness math: the Wilson lower bound against known values, and the verdicts it gives."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from opsloop.core.playbooks import Autonomy
from opsloop.learning.readiness import assess, wilson_lower_bound


def scipy_wilson(k: int, n: int) -> float:
    """scipy's implementation: an independent check on ours."""
    return float(binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson").low)


@pytest.mark.parametrize(
    ("agreed", "reviewed", "known"),
    [
        (10, 10, 0.7225),  # 1 / (1 + z²/n): a perfect record over 10 proves little
        (200, 200, 0.9812),
        (195, 200, 0.9428),  # 97.5% agreement does not clear 95% after only 200 reviews
        (490, 500, 0.9636),
        (5, 10, 0.2366),
    ],
)
def test_the_wilson_lower_bound_matches_known_values(
    agreed: int, reviewed: int, known: float
) -> None:
    assert wilson_lower_bound(agreed, reviewed) == pytest.approx(known, abs=1e-4)
    assert wilson_lower_bound(agreed, reviewed) == pytest.approx(scipy_wilson(agreed, reviewed))


def test_no_reviews_is_no_evidence() -> None:
    assert wilson_lower_bound(0, 0) == 0.0


def test_too_few_reviews_is_not_ready_however_good_they_are() -> None:
    judged = assess(["approve"] * 150, Autonomy())
    assert not judged.ready
    assert judged.agreement == 1.0
    assert "needs 200 reviewed decisions, has 150: 50 more to go" in judged.why


def test_a_raw_rate_above_target_is_not_enough_when_the_lower_bound_is_below_it() -> None:
    judged = assess(["approve"] * 195 + ["override"] * 5, Autonomy())
    assert judged.agreement == 0.975
    assert not judged.ready
    assert judged.lower_bound == pytest.approx(0.9428, abs=1e-4)
    assert "under the target 95%" in judged.why


def test_enough_agreeing_reviews_make_it_ready() -> None:
    judged = assess(["approve"] * 199 + ["reject"], Autonomy())
    assert judged.ready
    assert (judged.reviewed, judged.agreed, judged.rejected) == (200, 199, 1)
    assert "clears the target 95%" in judged.why


def test_only_the_window_of_most_recent_reviews_counts() -> None:
    # Newest first: 100 recent approvals, then 400 older overrides outside a 100-wide window.
    recent_good = ["approve"] * 100 + ["override"] * 400
    judged = assess(recent_good, Autonomy(min_reviews=100, window=100))
    assert (judged.reviewed, judged.agreed) == (100, 100)
    assert judged.ready
