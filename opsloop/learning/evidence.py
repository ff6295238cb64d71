"""How far a held-out score can be trusted, and the notes in words every training report carries.

A score on held-out rows is one draw: 12 rows can give "ROC AUC 0.971" by luck. So every report
shows a **95% bootstrap interval** beside its headline score (the test rows resampled with
replacement `RESAMPLES` times, positives and negatives separately for ROC AUC, so each
resample keeps the test set's class counts), and judges **skill** against the score of a model
that knows nothing:

* a yes/no model against chance: ROC AUC 0.5;
* a text classifier against always answering the most common label of the test messages
  (the majority-class share).

A model shows skill — and only then may become champion (`opsloop.service.learn.training`) —
when both hold:

1. the lower end of its interval clears the no-skill score by `SKILL_MARGIN`;
2. luck is ruled out: a model with no skill would score this high on these rows less than
   `LUCK` of the time (a one-sided Mann-Whitney test for ROC AUC, which is exactly the chance
   that shuffled labels rank this well; a binomial test against the majority share for
   accuracy). A bootstrap interval is too narrow on a few rows (resampling 3 positives cannot
   show what 3 other positives would have done); this test is exact there, so a handful of
   held-out rows can never make a champion.

Data whose labels are random scores near the no-skill line however it is trained, so it fails
both; tests/learning/test_evidence.py checks it over many seeds and sizes.

The notes (`tabular_notes`, `text_notes`, `feature_notes`) say in words what a careful analyst
would say about the numbers: no skill shown, a base rate that moved between training and test,
a test set too small to lean on, test labels training never saw, one feature carrying nearly
all the importance (a likely leak), a feature that is missing or constant on almost every row.
Their thresholds are the constants below, documented in docs/learning.md#reading-the-report.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 1000
SEED = 0
SKILL_MARGIN = 0.05
"""How far above the no-skill score the interval's lower end must be."""
LUCK = 0.001
"""The largest chance, for a model with no skill, of scoring as high as this one: 1 in 1,000."""
SMALL_TEST = 50
"""Fewer test rows than this get a caveat."""
SMALL_CLASS = 10
"""A yes/no test set with fewer positives (or negatives) than this gets a caveat too."""
SHIFT_RATIO = 1.5
"""A base rate that moved by this factor (either way) between training and test is noted..."""
SHIFT_SIGNIFICANCE = 0.01
"""... when a two-proportion test says chance alone would move it that far less than 1% of
the time."""
LABEL_SHIFT = 0.15
"""A label whose share moved by 15 points or more between training and test is noted."""
DOMINANT_SHARE = 0.9
"""One feature carrying this share of the importance is a likely leak..."""
DOMINANT_MINIMUM = 0.05
"""... when shuffling it drops the ROC AUC by at least this much (it matters at all) ..."""
DOMINANT_SCORE = 0.95
"""... and the model ranks almost perfectly with it: a feature that legitimately carries most
of the signal (a shop's page value) rarely gives a near-perfect ROC AUC; one recorded because
of the outcome does."""
COVERAGE = 0.95
"""A feature missing, empty or constant on this share of training rows or more is noted."""

Metric = Literal["roc_auc", "accuracy"]


# --- intervals -------------------------------------------------------------------------------


def roc_auc(labels: Any, scores: Any) -> float:
    """ROC AUC by ranks (ties count a half): the chance a random positive outranks a random
    negative. NaN when one class is absent."""
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    return _auc(s[y == 1], np.sort(s[y == 0]))


def _auc(positive: np.ndarray, negative_sorted: np.ndarray) -> float:
    if len(positive) == 0 or len(negative_sorted) == 0:
        return math.nan
    below = np.searchsorted(negative_sorted, positive, side="left")
    tied = np.searchsorted(negative_sorted, positive, side="right") - below
    return float((below + 0.5 * tied).sum() / (len(positive) * len(negative_sorted)))


def auc_interval(
    labels: Any, scores: Any, *, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """The 95% bootstrap interval of ROC AUC: positives and negatives resampled separately.

    A resample is a count per row (how often it was drawn), so each resample's AUC is a sum
    over the rows ranked once, not a new sort: thousands of test rows take a fraction of a
    second."""
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    positive, negative = s[y == 1], np.sort(s[y == 0])
    n1, n0 = len(positive), len(negative)
    if n1 == 0 or n0 == 0:
        return math.nan, math.nan
    lo = np.searchsorted(negative, positive, side="left")
    hi = np.searchsorted(negative, positive, side="right")
    rng = np.random.default_rng(seed)
    values = []
    chunk = max(1, 2_000_000 // max(n0, n1))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        w0 = _counts(rng, n0, size)
        w1 = _counts(rng, n1, size)
        below = np.zeros((size, n0 + 1))
        np.cumsum(w0, axis=1, out=below[:, 1:])
        ranked = below[:, lo] + 0.5 * (below[:, hi] - below[:, lo])
        values.append((w1 * ranked).sum(axis=1) / (n1 * n0))
    return _ends(np.concatenate(values))


def _counts(rng: np.random.Generator, rows: int, resamples: int) -> np.ndarray:
    """How often each of `rows` is drawn in each of `resamples` draws of `rows` with
    replacement."""
    drawn = rng.integers(0, rows, (resamples, rows)) + rows * np.arange(resamples)[:, None]
    return np.bincount(drawn.ravel(), minlength=rows * resamples).reshape(resamples, rows)


def accuracy_interval(
    correct: int, rows: int, *, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """The 95% bootstrap interval of accuracy (`correct` of `rows`). The mean of a resample of
    right/wrong answers is a binomial draw, so it is drawn as one."""
    if rows == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    return _ends(rng.binomial(rows, correct / rows, size=resamples) / rows)


def _ends(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def auc_luck(labels: Any, scores: Any) -> float:
    """The chance that a model with no skill ranks these rows as well: the one-sided
    Mann-Whitney p-value of the positives' scores over the negatives'."""
    from scipy.stats import mannwhitneyu

    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    if y.min() == y.max():
        return 1.0
    return float(mannwhitneyu(s[y == 1], s[y == 0], alternative="greater").pvalue)


def accuracy_luck(correct: int, rows: int, baseline: float) -> float:
    """The chance of `correct` or more right answers of `rows` when each is right with the
    no-skill probability `baseline` (binomial)."""
    from scipy.stats import binom

    if rows == 0:
        return 1.0
    return float(binom.sf(correct - 1, rows, min(max(baseline, 0.0), 1.0)))


# --- skill -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skill:
    """Whether a held-out score shows skill over a model that knows nothing, and why."""

    metric: Metric
    score: float
    low: float
    high: float
    """The 95% bootstrap interval of `score`."""
    baseline: float
    """What a model with no skill scores: 0.5 ROC AUC, or the majority-class share."""
    baseline_is: str
    """The no-skill model in words: `chance`, or `always 'billing'`."""
    margin: float
    luck: float
    """The chance a model with no skill scores this high on these rows."""
    rows: int
    shown: bool
    why: str

    @property
    def interval(self) -> list[float]:
        """`[low, high]`, or empty when the score cannot be computed."""
        return [] if math.isnan(self.low) else [self.low, self.high]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: a figure that cannot be computed is None, not NaN."""
        return {
            key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in asdict(self).items()
        }


def auc_skill(labels: Any, scores: Any, *, seed: int = SEED) -> Skill:
    """Skill of yes/no probabilities on held-out rows: ROC AUC against chance."""
    y = np.asarray(labels, dtype=int)
    score = roc_auc(y, scores)
    low, high = auc_interval(y, scores, seed=seed)
    return _judge("roc_auc", score, low, high, 0.5, "chance", auc_luck(y, scores), len(y))


def accuracy_skill(predicted: Sequence[str], truth: Sequence[str], *, seed: int = SEED) -> Skill:
    """Skill of a classifier on held-out messages: accuracy against always answering the most
    common label among them."""
    rows = len(truth)
    correct = sum(1 for p, t in zip(predicted, truth, strict=True) if p == t)
    [(label, count)] = Counter(truth).most_common(1) if truth else [("", 0)]
    baseline = count / rows if rows else 0.0
    low, high = accuracy_interval(correct, rows, seed=seed)
    return _judge(
        "accuracy",
        correct / rows if rows else math.nan,
        low,
        high,
        baseline,
        f"always {label!r}",
        accuracy_luck(correct, rows, baseline),
        rows,
    )


def _judge(
    metric: Metric,
    score: float,
    low: float,
    high: float,
    baseline: float,
    baseline_is: str,
    luck: float,
    rows: int,
) -> Skill:
    score, low, high = _round(score), _round(low), _round(high)
    name = "ROC AUC" if metric == "roc_auc" else "accuracy"
    things = "held-out rows" if metric == "roc_auc" else "held-out messages"
    no_skill = f"{baseline:.2f}, {baseline_is}" if metric == "accuracy" else "0.50, chance"
    clears = not math.isnan(low) and low > baseline + SKILL_MARGIN
    lucky = luck >= LUCK
    figure = f"{name} {score:.3f} (95% interval {low:.3f}-{high:.3f}) on {rows:,} {things}"
    if math.isnan(low):
        why = f"{name} cannot be computed on {rows:,} {things}: they hold one class only"
    elif not clears:
        why = (
            f"{figure}: the interval's lower end does not clear the no-skill score "
            f"({no_skill}) by the margin {SKILL_MARGIN:.2f}"
        )
    elif lucky:
        why = (
            f"{figure} could still be luck: a model with no skill would score this high "
            f"{_odds(luck)}, and a champion needs under 1 in {round(1 / LUCK):,}; more held-out "
            "rows will tell"
        )
    else:
        why = (
            f"{figure} clears the no-skill score ({no_skill}) by more than the margin "
            f"{SKILL_MARGIN:.2f}, and a model with no skill would score this high "
            f"{_odds(luck)}"
        )
    return Skill(
        metric=metric,
        score=score,
        low=low,
        high=high,
        baseline=round(baseline, 4),
        baseline_is=baseline_is,
        margin=SKILL_MARGIN,
        luck=float(f"{luck:.3g}"),
        rows=rows,
        shown=clears and not lucky,
        why=why,
    )


def _odds(p: float) -> str:
    if p < 1e-6:
        return "less than once in a million tries"
    if p < 0.01:
        return f"about once in {round(1 / p):,} tries"
    return f"{p:.1%} of the time"


def _round(value: float) -> float:
    return value if math.isnan(value) else round(value, 4)


# --- notes -----------------------------------------------------------------------------------


def tabular_notes(
    *,
    skill: Skill,
    train_positives: int,
    train_rows: int,
    test_positives: int,
    test_rows: int,
    importances: Sequence[tuple[str, float]],
) -> list[str]:
    """What a careful analyst would say about a yes/no model's held-out figures."""
    notes = []
    if not math.isnan(skill.low) and skill.low <= 0.5:
        notes.append(
            f"no skill shown: ROC AUC {skill.score:.3f}, and its 95% interval "
            f"({skill.low:.3f}-{skill.high:.3f}) "
            + ("lies below chance (0.5)" if skill.high < 0.5 else "covers chance (0.5)")
            + ": on these test rows the model ranks no better than guessing"
        )
    shift = base_rate_shift(train_positives, train_rows, test_positives, test_rows)
    if shift:
        notes.append(shift)
    negatives = test_rows - test_positives
    if test_rows < SMALL_TEST or min(test_positives, negatives) < SMALL_CLASS:
        notes.append(
            f"small test set: {test_rows} rows ({test_positives} positive, {negatives} "
            f"negative), so ROC AUC {skill.score:.3f} could as well be anywhere from "
            f"{skill.low:.3f} to {skill.high:.3f} (95% bootstrap interval); treat it as a "
            f"rough guide until there are at least {SMALL_TEST} test rows with {SMALL_CLASS} "
            "of each class"
        )
    leak = dominant_feature(importances) if skill.score >= DOMINANT_SCORE else None
    if leak:
        notes.append(leak)
    return notes


def base_rate_shift(
    train_positives: int, train_rows: int, test_positives: int, test_rows: int
) -> str | None:
    """A note when the share of positives moved between training and test by `SHIFT_RATIO`
    or more, and more than chance would move it (two-proportion z-test)."""
    if not train_rows or not test_rows:
        return None
    before, after = train_positives / train_rows, test_positives / test_rows
    if min(before, after) > 0 and max(before, after) / min(before, after) < SHIFT_RATIO:
        return None
    pooled = (train_positives + test_positives) / (train_rows + test_rows)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / train_rows + 1 / test_rows))
    if spread == 0 or _two_sided(abs(after - before) / spread) >= SHIFT_SIGNIFICANCE:
        return None
    return (
        f"the base rate moved: {before:.1%} of training rows were positive against "
        f"{after:.1%} of test rows; the world the model learned from has changed, so read "
        "the calibration table with care (probabilities follow the training rate) and "
        "compare PR AUC with the test base rate"
    )


def _two_sided(z: float) -> float:
    return math.erfc(z / math.sqrt(2))


def dominant_feature(importances: Sequence[tuple[str, float]]) -> str | None:
    """A note when one feature carries nearly all the importance: a likely leak."""
    positive = [(name, value) for name, value in importances if value > 0]
    if len(importances) < 2 or not positive:
        return None
    name, top = max(positive, key=lambda pair: pair[1])
    total = sum(value for _, value in positive)
    if top < DOMINANT_MINIMUM or top / total < DOMINANT_SHARE:
        return None
    return (
        f"one feature carries nearly all the importance, for a near-perfect ranking: {name!r} "
        f"({top / total:.0%}; shuffling it drops ROC AUC by {top:.3f}). A likely leak: check "
        "that its value is known before the outcome and not recorded because of it; if it is "
        "not, the model will do much worse on new rows than here"
    )


def text_notes(
    *,
    skill: Skill,
    train_counts: Mapping[str, int] | None,
    known_labels: Sequence[str],
    truth: Sequence[str],
) -> list[str]:
    """What a careful analyst would say about a text classifier's held-out figures."""
    notes = []
    rows = len(truth)
    if not math.isnan(skill.high) and skill.score <= skill.baseline:
        notes.append(
            f"no skill shown: accuracy {skill.score:.3f} (95% interval {skill.low:.3f}-"
            f"{skill.high:.3f}) is not above the {skill.baseline:.3f} of answering "
            f"{skill.baseline_is.removeprefix('always ')} every time (the most common label "
            "of the test messages)"
        )
    known = set(known_labels)
    unseen = Counter(label for label in truth if label not in known)
    if unseen:
        names = ", ".join(label for label, _ in unseen.most_common(5))
        more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
        notes.append(
            f"{len(unseen)} label{'s' if len(unseen) > 1 else ''} of the test messages never "
            f"appear in training ({names}{more}; {sum(unseen.values())} of {rows} test "
            "messages): the model cannot answer them, so they count as wrong"
        )
    if train_counts:
        shift = label_shift(train_counts, truth)
        if shift:
            notes.append(shift)
    if rows < SMALL_TEST:
        notes.append(
            f"small test set: {rows} messages, so accuracy {skill.score:.3f} could as well be "
            f"anywhere from {skill.low:.3f} to {skill.high:.3f} (95% bootstrap interval); "
            f"treat it as a rough guide until there are at least {SMALL_TEST} test messages"
        )
    return notes


def label_shift(train_counts: Mapping[str, int], truth: Sequence[str]) -> str | None:
    """A note on the label whose share moved most between training and test, when it moved
    by `LABEL_SHIFT` or more."""
    total = sum(train_counts.values())
    if not total or not truth:
        return None
    test = Counter(truth)
    labels = set(train_counts) | set(test)
    moved = {
        label: test.get(label, 0) / len(truth) - train_counts.get(label, 0) / total
        for label in labels
    }
    label = max(sorted(moved), key=lambda name: abs(moved[name]))
    if abs(moved[label]) < LABEL_SHIFT:
        return None
    before = train_counts.get(label, 0) / total
    after = test.get(label, 0) / len(truth)
    return (
        f"the label mix moved: {label!r} is {after:.1%} of the test messages against "
        f"{before:.1%} of the training ones"
    )


def feature_notes(columns: Mapping[str, Sequence[Any]]) -> list[str]:
    """A note per feature that is missing or empty, or has one value, on `COVERAGE` of the
    training rows or more: it gives the model almost nothing to learn from, and is most often
    a definition that reads a field the events do not have."""
    notes = []
    for name, values in columns.items():
        rows = len(values)
        if rows == 0:
            continue
        missing = sum(1 for value in values if _empty(value))
        if missing / rows >= COVERAGE:
            notes.append(
                f"feature {name!r} is missing or empty on {missing / rows:.0%} of training rows "
                f"({missing:,} of {rows:,}): check that its definition reads a field the events "
                "have (a column name with dots is a flat key, not a nested path)"
            )
            continue
        counts = Counter(_key(value) for value in values)
        value, count = counts.most_common(1)[0]
        if count / rows >= COVERAGE:
            notes.append(
                f"feature {name!r} has the same value ({value}) on {count / rows:.0%} of "
                f"training rows ({count:,} of {rows:,}): it can tell the model little"
            )
    return notes


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    try:
        return bool(value != value)  # NaN-like (pandas NA, numpy nan)
    except (TypeError, ValueError):
        return False


def _key(value: Any) -> str:
    if _empty(value):
        return "missing"
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | float | np.number):
        number = float(value)
        return f"{int(number)}" if number.is_integer() else f"{number:g}"
    return repr(str(value))
