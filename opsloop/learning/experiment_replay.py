"""Replay a randomized test through the experiment bandit (opsloop/learning/experiments.py).

The replay method of Li, Chu, Langford & Wang (WSDM 2011): walk the logged rows in arrival
order; at each row the bandit chooses an arm by Thompson sampling; if the row's randomized arm
is the one chosen, the bandit "sent" it and learns the row's outcome, otherwise the row is
skipped. With uniformly randomized arms this is an unbiased picture of the bandit running live
(with feedback at once: a real outcome window delays it).

Regret is measured against always sending the best arm (at the arms' observed rates over the
whole log), for the bandit and for an even split over the same number of sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from opsloop.learning.experiments import Standing, Tally, choose, standing

SURE = 0.95
"""The probability of being best at which the replay says the bandit is sure of an arm."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    sends: int
    """Matched rows so far: sends the bandit made."""
    row: int
    """Rows of the log read so far."""
    standing: Standing


@dataclass(frozen=True, slots=True)
class ReplayResult:
    arms: tuple[str, ...]
    sends: dict[str, int]
    successes: dict[str, int]
    rows: int
    log_rates: dict[str, float]
    """Each arm's success rate over the whole log (the truth the regret is measured with)."""
    checkpoints: tuple[Checkpoint, ...]
    sure_at: Checkpoint | None
    """The first checkpoint from which the best arm's probability of being best stayed at or
    above SURE to the end; None if it never did."""
    winner_at: Checkpoint | None
    """The first checkpoint from which the report named the best arm the winner, to the end."""

    @property
    def total_sends(self) -> int:
        return sum(self.sends.values())

    @property
    def best_arm(self) -> str:
        return max(self.arms, key=lambda arm: self.log_rates[arm])

    @property
    def final(self) -> Standing:
        return self.checkpoints[-1].standing

    @property
    def regret(self) -> float:
        """Successes short of always sending the best arm: expected, at the log's rates."""
        best = self.log_rates[self.best_arm]
        return sum(self.sends[arm] * (best - self.log_rates[arm]) for arm in self.arms)

    @property
    def even_split_regret(self) -> float:
        """The same for an even split over the same number of sends."""
        best = self.log_rates[self.best_arm]
        mean = sum(self.log_rates.values()) / len(self.arms)
        return self.total_sends * (best - mean)


def replay(
    rows: Iterable[tuple[str, bool]],
    arms: Sequence[str],
    *,
    seed: int = 0,
    check_every: int = 500,
    report_draws: int = 4000,
) -> ReplayResult:
    """Run the bandit over (arm, success) rows in order; a standing every `check_every`
    sends and at the end."""
    rng = np.random.default_rng(seed)
    successes = dict.fromkeys(arms, 0)
    sends = dict.fromkeys(arms, 0)
    logged = dict.fromkeys(arms, 0)
    logged_successes = dict.fromkeys(arms, 0)
    checkpoints: list[Checkpoint] = []
    read = 0

    def tallies() -> dict[str, Tally]:
        return {arm: Tally(successes[arm], sends[arm] - successes[arm]) for arm in arms}

    def check() -> None:
        result = standing(tallies(), draws=report_draws, seed=len(checkpoints))
        checkpoints.append(Checkpoint(sum(sends.values()), read, result))

    for arm, success in rows:
        read += 1
        logged[arm] += 1
        logged_successes[arm] += bool(success)
        chosen, _ = choose(tallies(), rng)
        if chosen != arm:
            continue
        sends[arm] += 1
        successes[arm] += bool(success)
        if sum(sends.values()) % check_every == 0:
            check()
    if not checkpoints or checkpoints[-1].sends != sum(sends.values()):
        check()
    rates = {arm: logged_successes[arm] / logged[arm] if logged[arm] else 0.0 for arm in arms}
    best = max(arms, key=lambda arm: rates[arm])
    return ReplayResult(
        arms=tuple(arms),
        sends=sends,
        successes=successes,
        rows=read,
        log_rates=rates,
        checkpoints=tuple(checkpoints),
        sure_at=_from_then_on(checkpoints, lambda c: _probability(c, best) >= SURE),
        winner_at=_from_then_on(checkpoints, lambda c: c.standing.winner == best),
    )


def _probability(checkpoint: Checkpoint, arm: str) -> float:
    return next(v.probability_best for v in checkpoint.standing.variants if v.name == arm)


def _from_then_on(
    checkpoints: list[Checkpoint], holds: Callable[[Checkpoint], bool]
) -> Checkpoint | None:
    found: Checkpoint | None = None
    for checkpoint in checkpoints:
        found = found or checkpoint if holds(checkpoint) else None
    return found
