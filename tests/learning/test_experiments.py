"""The experiment bandit's maths (opsloop/learning/experiments.py) and the replay of a
randomized test through it, on a small synthetic randomized set with a known best arm."""

from __future__ import annotations

import numpy as np
import pytest

from opsloop.learning.experiment_replay import replay
from opsloop.learning.experiments import Tally, choose, in_words, seed_for, standing


def test_a_choice_is_reproducible_from_its_seed() -> None:
    arms = {"a": Tally(3, 10), "b": Tally(4, 9), "c": Tally(0, 0)}
    seed = seed_for("welcome", 41, "send", 0)
    assert seed == seed_for("welcome", 41, "send", 0) != seed_for("welcome", 42, "send", 0)
    assert choose(arms, seed) == choose(arms, seed)
    name, draws = choose(arms, seed)
    assert name == max(draws, key=lambda key: draws[key])


def test_thompson_sends_each_arm_about_as_often_as_it_is_likely_best() -> None:
    rng = np.random.default_rng(1)
    even = {"a": Tally(0, 0), "b": Tally(0, 0)}
    picks = [choose(even, rng)[0] for _ in range(2000)]
    assert 0.45 < picks.count("a") / 2000 < 0.55
    clear = {"a": Tally(5, 95), "b": Tally(20, 80)}
    picks = [choose(clear, rng)[0] for _ in range(1000)]
    assert picks.count("b") > 990


def test_standing_no_winner_yet_then_a_winner() -> None:
    empty = standing({"a": Tally(0, 0), "b": Tally(0, 0)})
    assert empty.winner is None
    assert in_words(empty) == "No winner yet: no outcome has come in for any variant."
    early = standing({"a": Tally(3, 17), "b": Tally(5, 15)})
    assert early.winner is None
    assert early.leader == "b"
    assert 0.6 < early.variants[1].probability_best < 0.9
    assert early.expected_loss > early.threshold
    assert in_words(early).startswith("No winner yet: 'b' leads, best with probability")
    late = standing({"a": Tally(300, 1700), "b": Tally(500, 1500)})
    assert late.winner == "b"
    assert late.expected_loss < late.threshold
    a, b = late.variants
    assert a.rate == pytest.approx(0.15)
    assert b.rate == pytest.approx(0.25)
    assert a.low < 0.15 < a.high < b.low < 0.25 < b.high
    assert a.probability_best + b.probability_best == pytest.approx(1.0)
    assert in_words(late).startswith("'b' is the winner: it is best with probability 100%")


def test_the_credible_interval_is_the_beta_posterior() -> None:
    [v] = standing({"only": Tally(0, 0)}).variants
    assert (v.low, v.high) == pytest.approx((0.025, 0.975))
    assert v.rate is None
    assert v.mean == 0.5


def test_replay_finds_the_known_best_arm_and_beats_an_even_split() -> None:
    rates = {"men": 0.05, "women": 0.03, "none": 0.01}
    rng = np.random.default_rng(7)
    arms = rng.choice(list(rates), size=18_000)
    rows = [(str(arm), bool(rng.random() < rates[str(arm)])) for arm in arms]
    result = replay(rows, list(rates), seed=3, check_every=250)
    assert result.rows == 18_000
    assert result.best_arm == "men"
    assert result.final.leader == "men"
    assert next(v for v in result.final.variants if v.name == "men").probability_best > 0.95
    assert result.sure_at is not None
    assert result.sure_at.sends < result.total_sends
    assert result.sends["men"] > result.sends["none"] * 2
    assert result.regret < result.even_split_regret / 2
