"""Message experiments: Thompson sampling among an action's variants, and what can be said
about them so far. Pure maths on counts, no I/O.

Each variant's success rate has a Beta(1 + successes, 1 + failures) posterior (a uniform prior,
Beta-Bernoulli). To choose, draw one rate from each posterior and send the variant with the
highest draw: a variant is sent about as often as it is likely to be the best, so a clear loser
stops being sent while a close race keeps exploring.

The report asks how sure we are: the probability each variant is best and the expected loss
of stopping now (keeping the leader) are Monte Carlo means over draws from the posteriors.
An experiment has a winner once that expected loss is below `LOSS_THRESHOLD` of the leader's
rate: keeping the leader now would cost, on average, less than 1% of what it earns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

LOSS_THRESHOLD = 0.01
"""Relative expected loss under which the leader is called the winner: E[best − leader] is
below 1% of the leader's posterior mean rate."""

REPORT_DRAWS = 20_000
"""Draws per variant for the report's probabilities; the Monte Carlo error of a probability is
at most 0.5/sqrt(20,000) ≈ 0.004."""

CREDIBLE = 0.95


@dataclass(frozen=True, slots=True)
class Tally:
    """One variant's resolved outcomes: sends whose outcome window closed, and how."""

    successes: int
    failures: int

    @property
    def resolved(self) -> int:
        return self.successes + self.failures


@dataclass(frozen=True, slots=True)
class VariantStanding:
    name: str
    successes: int
    resolved: int
    rate: float | None
    """Observed rate: successes / resolved; None before any outcome."""
    mean: float
    """Posterior mean, (1 + successes) / (2 + resolved)."""
    low: float
    high: float
    """The central 95% credible interval of the rate (Beta quantiles)."""
    probability_best: float


@dataclass(frozen=True, slots=True)
class Standing:
    variants: tuple[VariantStanding, ...]
    leader: str
    """The variant most likely to be best."""
    expected_loss: float
    """E[max rate − leader's rate]: what keeping the leader now costs on average, in rate."""
    threshold: float
    """The expected loss under which the leader is the winner (LOSS_THRESHOLD × its mean)."""
    winner: str | None
    """The leader once the expected loss is below the threshold; None: no winner yet."""


def seed_for(*parts: object) -> int:
    """A stable 64-bit seed from the decision's identity, so a choice can be reproduced."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def choose(
    tallies: Mapping[str, Tally], seed: int | np.random.Generator
) -> tuple[str, dict[str, float]]:
    """Thompson sampling: one draw from each variant's posterior; the highest is sent.
    Returns the chosen name and the draws (for the explanation). Ties go to the first name."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    names = list(tallies)
    if not names:
        raise ValueError("an experiment has at least one variant")
    a = np.array([1 + tallies[name].successes for name in names], dtype=float)
    b = np.array([1 + tallies[name].failures for name in names], dtype=float)
    draws = rng.beta(a, b)
    best = int(np.argmax(draws))
    return names[best], {name: float(draw) for name, draw in zip(names, draws, strict=True)}


def posterior_draws(tallies: Sequence[Tally], draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, variants) rates drawn from the posteriors."""
    a = np.array([1 + tally.successes for tally in tallies], dtype=float)
    b = np.array([1 + tally.failures for tally in tallies], dtype=float)
    return rng.beta(a, b, size=(draws, len(tallies)))


def standing(
    tallies: Mapping[str, Tally],
    *,
    draws: int = REPORT_DRAWS,
    seed: int = 0,
    threshold: float = LOSS_THRESHOLD,
) -> Standing:
    """How the variants stand: rates with credible intervals, the probability each is best, the
    expected loss of stopping now, and the winner if that loss is small enough."""
    from scipy.stats import beta  # the report only: deciding needs numpy alone

    names = list(tallies)
    if not names:
        raise ValueError("an experiment has at least one variant")
    counts = [tallies[name] for name in names]
    samples = posterior_draws(counts, draws, np.random.default_rng(seed))
    best_of_draw = samples.argmax(axis=1)
    probability_best = np.bincount(best_of_draw, minlength=len(names)) / draws
    leader = int(np.argmax(probability_best))
    loss = float(np.mean(samples.max(axis=1) - samples[:, leader]))
    tail = (1 - CREDIBLE) / 2
    variants = []
    for index, (name, tally) in enumerate(zip(names, counts, strict=True)):
        a, b = 1 + tally.successes, 1 + tally.failures
        variants.append(
            VariantStanding(
                name=name,
                successes=tally.successes,
                resolved=tally.resolved,
                rate=tally.successes / tally.resolved if tally.resolved else None,
                mean=a / (a + b),
                low=float(beta.ppf(tail, a, b)),
                high=float(beta.ppf(1 - tail, a, b)),
                probability_best=float(probability_best[index]),
            )
        )
    limit = threshold * variants[leader].mean
    return Standing(
        variants=tuple(variants),
        leader=names[leader],
        expected_loss=loss,
        threshold=limit,
        winner=names[leader] if len(names) > 1 and loss < limit else None,
    )


def in_words(result: Standing) -> str:
    """One paragraph a person can act on."""
    leader = next(v for v in result.variants if v.name == result.leader)
    sure = f"{leader.probability_best:.0%}"
    if result.winner is not None:
        return (
            f"{result.winner!r} is the winner: it is best with probability {sure}, and "
            f"keeping it now would cost on average {result.expected_loss:.2%} in success rate "
            f"(under the {result.threshold:.2%} threshold). Ending the experiment is a "
            "person's decision."
        )
    if not any(v.resolved for v in result.variants):
        return "No winner yet: no outcome has come in for any variant."
    return (
        f"No winner yet: {result.leader!r} leads, best with probability {sure}, but keeping it "
        f"now could cost on average {result.expected_loss:.2%} in success rate (more than the "
        f"{result.threshold:.2%} threshold). Let the experiment run."
    )
