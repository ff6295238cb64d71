"""How sure a held-out score is, and the words around it: random labels never show skill
(however many rows, whatever the seed), a handful of perfect rows is not proof, and the
report says what a careful analyst would — no skill, a base rate that moved, a small test set,
unseen labels, a likely leak, a feature that is empty or constant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from opsloop.learning import evidence
from opsloop.learning.tabular import train_tabular
from opsloop.learning.text import evaluate_text, train_text

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("rows", [8, 12, 30, 100, 400, 3000])
def test_random_labels_never_show_skill(rows: int) -> None:
    rng = np.random.default_rng(rows)
    for _ in range(40):
        labels = rng.random(rows) < rng.uniform(0.2, 0.6)
        labels[:2], labels[2:4] = True, False  # both classes, always
        skill = evidence.auc_skill(labels, rng.random(rows), seed=int(rng.integers(1000)))
        assert not skill.shown, skill.why


@pytest.mark.parametrize("rows", [10, 60, 600])
def test_random_answers_never_show_skill_over_the_most_common_label(rows: int) -> None:
    rng = np.random.default_rng(rows)
    names = ["billing", "delivery", "product", "refund"]
    for _ in range(40):
        truth = [str(v) for v in rng.choice(names, rows, p=[0.4, 0.3, 0.2, 0.1])]
        guesses = [str(v) for v in rng.choice(names, rows)]
        skill = evidence.accuracy_skill(guesses, truth)
        assert not skill.shown, skill.why
        # Always answering the most common label is no skill either.
        assert not evidence.accuracy_skill(["billing"] * rows, truth).shown


def test_a_handful_of_perfect_rows_is_not_proof() -> None:
    skill = evidence.auc_skill([1, 1, 1, 0, 0, 0, 0, 0], [0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.1, 0.05])
    assert skill.score == 1.0
    assert (skill.low, skill.high) == (1.0, 1.0), "a bootstrap of 8 rows cannot see past them"
    assert not skill.shown
    assert "could still be luck" in skill.why
    assert "a model with no skill would score this high 1.8% of the time" in skill.why


def test_real_skill_is_shown_with_its_interval() -> None:
    rng = np.random.default_rng(5)
    labels = rng.random(400) < 0.3
    scores = labels * 1.2 + rng.normal(size=400)
    skill = evidence.auc_skill(labels, scores)
    assert skill.shown
    assert skill.low < skill.score < skill.high
    assert skill.low > 0.55
    assert "clears the no-skill score (0.50, chance)" in skill.why
    narrower = evidence.auc_skill(
        np.tile(labels, 4), np.tile(scores, 4) + rng.normal(0, 1e-6, 1600)
    )
    assert narrower.high - narrower.low < skill.high - skill.low


def leads(count: int, *, shift: bool = False, seed: int = 3) -> list[dict[str, Any]]:
    """Leads whose conversion follows visits; with `shift`, the latest fifth converts far more
    often (a world that changed between training and test)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        late = i >= count * 0.8
        visits = float(rng.poisson(3))
        base = -1.0 if (shift and late) else -4.0 if shift else -2.0
        p = 1 / (1 + np.exp(-(base + 0.5 * visits)))
        rows.append(
            {
                "at": START + timedelta(hours=i),
                "visits": visits,
                "region": None,
                "plan": "free" if rng.random() < 0.97 else "pro",
                "converted": bool(rng.random() < p),
            }
        )
    return rows


def test_the_report_names_a_base_rate_that_moved_with_both_rates() -> None:
    report = train_tabular(
        leads(600, shift=True), target="converted", time_key="at", algorithm="logistic_regression"
    ).report
    before = report.train.positives / report.train.rows
    after = report.test.positives / report.test.rows
    [moved] = [w for w in report.warnings if w.startswith("the base rate moved")]
    assert f"{before:.1%} of training rows were positive against {after:.1%} of test rows" in moved


def test_features_missing_or_constant_on_almost_every_row_are_named() -> None:
    report = train_tabular(
        leads(300), target="converted", time_key="at", algorithm="logistic_regression"
    ).report
    missing = [w for w in report.warnings if "'region'" in w]
    assert missing == [
        "feature 'region' is missing or empty on 100% of training rows (240 of 240): check that "
        "its definition reads a field the events have (a column name with dots is a flat key, "
        "not a nested path)"
    ]
    [constant] = [w for w in report.warnings if "'plan'" in w]
    assert constant.startswith("feature 'plan' has the same value ('free') on 9")
    assert not [w for w in report.warnings if "'visits'" in w]


def test_a_small_test_set_gets_its_interval_and_a_caveat() -> None:
    result = train_tabular(
        leads(60), target="converted", time_key="at", algorithm="logistic_regression"
    )
    report = result.report
    low, high = report.roc_auc_interval
    assert low <= report.roc_auc <= high
    [small] = [w for w in report.warnings if w.startswith("small test set")]
    assert f"small test set: 12 rows ({report.test.positives} positive" in small
    assert f"anywhere from {low:.3f} to {high:.3f} (95% bootstrap interval)" in small
    assert "(95% interval" in report.to_text()


def test_one_feature_carrying_all_the_importance_is_called_a_likely_leak() -> None:
    rows = leads(500)
    for row in rows:
        row["amount_paid"] = 100.0 if row["converted"] else 0.0  # known only after buying
    report = train_tabular(
        rows, target="converted", time_key="at", algorithm="logistic_regression"
    ).report
    [leak] = [w for w in report.warnings if "likely leak" in w]
    assert leak.startswith("one feature carries nearly all the importance, for a near-perfect")
    assert "'amount_paid'" in leak
    honest = train_tabular(
        leads(500), target="converted", time_key="at", algorithm="logistic_regression"
    ).report
    assert not [w for w in honest.warnings if "likely leak" in w]


def test_a_text_report_names_labels_training_never_saw_and_a_skill_at_chance() -> None:
    texts = [f"card {i} has not arrived" for i in range(20)] + [f"refund {i}" for i in range(20)]
    labels = ["card_arrival"] * 20 + ["refund"] * 20
    model = train_text(texts, labels)
    held = ["i forgot my password", "reset my password", "my card is late", "password again"]
    report = evaluate_text(
        model,
        held,
        ["password", "password", "card_arrival", "password"],
        train_counts={"card_arrival": 20, "refund": 20},
    )
    assert report.accuracy == 0.25
    assert not report.skill["shown"]
    words = "\n".join(report.warnings)
    assert (
        "1 label of the test messages never appear in training (password; 3 of 4 test "
        "messages): the model cannot answer them" in words
    )
    assert "no skill shown: accuracy 0.250" in words
    assert "is not above the 0.750 of answering 'password' every time" in words
    assert "the label mix moved: 'password' is 75.0% of the test messages against 0.0%" in words
    assert "small test set: 4 messages" in words
