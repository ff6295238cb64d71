"""Walk-forward evaluation: the honest figure for a model that is retrained on a schedule.

A single hold-out (the latest fifth) asks "how does a model trained on the past do on the
next stretch?" once. A model that retrains every week or month meets that question every
time, on data that drifts; walk-forward asks it once per period:

    train on every row before period 1, score period 1;
    train on every row before period 2, score period 2; ...

and reports each period's score and the score of all the periods' predictions together
(pooled). The spread between periods shows how much the figure moves from one to the next.

The period follows the history's span (`choose_period`): weeks when it spans up to
`WEEKS_UP_TO`, months up to `MONTHS_UP_TO`, quarters beyond; boundaries are calendar ones in
UTC. A period is scored only when the rows before it are enough to train on (`MIN_TRAIN` with
two of each class for a yes/no model, two labels for a classifier), and at most the latest
`MAX_PERIODS` are scored: each is one more fit. Each fit uses the algorithm the main training
chose (no choice per period) and, for text, no calibration: accuracy does not depend on it.
"""

from __future__ import annotations

import itertools
import math
import warnings
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

Period = Literal["week", "month", "quarter"]
WEEKS_UP_TO = timedelta(weeks=10)
MONTHS_UP_TO = timedelta(days=3 * 366)
SHOWN_AFTER = timedelta(days=92)
"""Walk-forward is shown beside the hold-out, unasked, when the history spans more than this
(three months: with monthly periods, at least three of them)."""
MAX_PERIODS = 12
MIN_TRAIN = 20

Evaluate = Literal["auto", "holdout", "walk-forward"]
EVALUATIONS: tuple[Evaluate, ...] = ("auto", "holdout", "walk-forward")


@dataclass(frozen=True)
class PeriodScore:
    start: str
    """The period's first instant (ISO); the period runs until the next one's start."""
    end: str
    train_rows: int
    rows: int
    """Rows scored in the period."""
    score: float | None
    """ROC AUC (a yes/no model) or accuracy (a classifier); None when it cannot be computed
    (one class only in the period)."""
    positives: int | None = None
    """A yes/no model's positive rows in the period."""
    brier: float | None = None


@dataclass(frozen=True)
class WalkForward:
    period: Period
    metric: Literal["roc_auc", "accuracy"]
    periods: list[PeriodScore] = field(default_factory=list)
    pooled: float | None = None
    """The score of every period's predictions together."""
    median: float | None = None
    low: float | None = None
    high: float | None = None
    """The lowest and highest period scores."""
    rows: int = 0
    skipped: int = 0
    """Earlier periods not scored: too little history before them, or beyond `MAX_PERIODS`."""
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": summary(self)}


def spans_long_enough(times: Sequence[datetime]) -> bool:
    """Whether walk-forward is shown unasked: the rows span more than `SHOWN_AFTER`."""
    return bool(times) and max(times) - min(times) > SHOWN_AFTER


def choose_period(start: datetime, end: datetime) -> Period:
    span = end - start
    if span <= WEEKS_UP_TO:
        return "week"
    if span <= MONTHS_UP_TO:
        return "month"
    return "quarter"


def boundaries(start: datetime, end: datetime, period: Period) -> list[datetime]:
    """Period starts (UTC calendar bounds) from the one holding `start` to the first after
    `end`: consecutive pairs are the periods."""
    first = _utc(start)
    at: datetime
    if period == "week":
        at = datetime(first.year, first.month, first.day, tzinfo=UTC)
        at -= timedelta(days=at.weekday())
    else:
        months = 1 if period == "month" else 3
        at = datetime(first.year, first.month - (first.month - 1) % months, 1, tzinfo=UTC)
    found = [at]
    while at <= _utc(end):
        at = at + timedelta(weeks=1) if period == "week" else _add_months(at, months)
        found.append(at)
    return found


def _add_months(at: datetime, months: int) -> datetime:
    month = at.month - 1 + months
    return at.replace(year=at.year + month // 12, month=month % 12 + 1)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def walk_forward(
    times: Sequence[datetime],
    labels: Sequence[Any],
    *,
    fit_predict: Callable[[list[int], list[int]], Sequence[Any]],
    metric: Literal["roc_auc", "accuracy"],
    period: Period | None = None,
    enough: Callable[[list[Any]], bool] | None = None,
) -> WalkForward:
    """Score `fit_predict(train_positions, test_positions)` period by period. It returns one
    prediction per test position: a probability of yes (`roc_auc`) or a label (`accuracy`).
    `enough(training labels)` says whether the rows before a period can be trained on."""
    if not times:
        return WalkForward(period=period or "month", metric=metric, note="no rows")
    stamps = [_utc(t) for t in times]
    start, end = min(stamps), max(stamps)
    chosen = period or choose_period(start, end)
    ready = enough or _enough(metric)
    edges = boundaries(start, end, chosen)
    order = sorted(range(len(stamps)), key=stamps.__getitem__)
    ordered = [stamps[i] for i in order]
    windows = []
    for begin, finish in itertools.pairwise(edges):
        cut, stop = bisect_left(ordered, begin), bisect_left(ordered, finish)
        train, test = order[:cut], order[cut:stop]
        if test and len(train) >= MIN_TRAIN and ready([labels[i] for i in train]):
            windows.append((begin, finish, train, test))
    skipped = max(0, len(windows) - MAX_PERIODS)
    windows = windows[skipped:]
    if not windows:
        return WalkForward(
            period=chosen,
            metric=metric,
            note=(
                f"no {chosen} has enough history before it to train on: walk-forward needs "
                f"{MIN_TRAIN} earlier rows of every class"
            ),
        )
    periods: list[PeriodScore] = []
    truth_all: list[Any] = []
    predicted_all: list[Any] = []
    # The latest period first: its fit is the largest, and the smaller ones after it reuse the
    # memory it freed instead of growing the process.
    for begin, finish, train, test in reversed(windows):
        predicted = list(fit_predict(train, test))
        truth = [labels[i] for i in test]
        truth_all += truth
        predicted_all += predicted
        periods.insert(0, _score(metric, begin, finish, len(train), truth, predicted))
    scores = [p.score for p in periods if p.score is not None]
    pooled = _metric(metric, truth_all, predicted_all)
    return WalkForward(
        period=chosen,
        metric=metric,
        periods=periods,
        pooled=pooled,
        median=round(float(np.median(scores)), 4) if scores else None,
        low=min(scores) if scores else None,
        high=max(scores) if scores else None,
        rows=len(truth_all),
        skipped=skipped,
    )


def _enough(metric: str) -> Callable[[list[Any]], bool]:
    if metric == "roc_auc":
        return lambda y: min(sum(1 for v in y if v), sum(1 for v in y if not v)) >= 2
    return lambda y: len(set(y)) >= 2


def _score(
    metric: str,
    begin: datetime,
    finish: datetime,
    train_rows: int,
    truth: list[Any],
    predicted: list[Any],
) -> PeriodScore:
    score = _metric(metric, truth, predicted)
    if metric == "roc_auc":
        y = np.asarray(truth, dtype=float)
        p = np.asarray(predicted, dtype=float)
        return PeriodScore(
            start=begin.isoformat(),
            end=finish.isoformat(),
            train_rows=train_rows,
            rows=len(truth),
            score=score,
            positives=int(y.sum()),
            brier=round(float(np.mean((p - y) ** 2)), 4),
        )
    return PeriodScore(begin.isoformat(), finish.isoformat(), train_rows, len(truth), score)


def _metric(metric: str, truth: list[Any], predicted: list[Any]) -> float | None:
    if not truth:
        return None
    if metric == "accuracy":
        return round(
            sum(1 for t, p in zip(truth, predicted, strict=True) if t == p) / len(truth), 4
        )
    from opsloop.learning.evidence import roc_auc

    value = roc_auc([int(bool(t)) for t in truth], predicted)
    return None if math.isnan(value) else round(value, 4)


def summary(result: WalkForward) -> str:
    """One line in words, e.g. `trained on everything before each month and scored it: ROC AUC
    0.842 over 9 months (4,725 rows); by month 0.712 to 0.903, median 0.851`."""
    name = "ROC AUC" if result.metric == "roc_auc" else "accuracy"
    if not result.periods:
        return f"walk-forward by {result.period}: {result.note or 'nothing scored'}"
    count = len(result.periods)
    pooled = "—" if result.pooled is None else f"{result.pooled:.3f}"
    text = (
        f"trained on everything before each {result.period} and scored it: {name} {pooled} "
        f"over {count} {result.period}{'s' if count > 1 else ''} ({result.rows:,} rows)"
    )
    if result.low is not None and result.high is not None and result.median is not None:
        text += (
            f"; by {result.period} {result.low:.3f} to {result.high:.3f}, median "
            f"{result.median:.3f}"
        )
    if result.skipped:
        text += f"; {result.skipped} earlier {result.period}s not scored (at most {MAX_PERIODS})"
    return text


# --- the two kinds of model ------------------------------------------------------------------


def tabular(
    rows: Sequence[dict[str, Any]],
    times: Sequence[datetime],
    labels: Sequence[int],
    *,
    numeric: list[str],
    categorical: list[str],
    algorithm: str,
    period: Period | None = None,
) -> WalkForward:
    """Walk-forward of a yes/no model: the trained model's recipe (algorithm, numeric and
    categorical features) refitted before each period."""
    from opsloop.learning.tabular import build_pipeline, model_input

    x = model_input(list(rows), numeric=numeric, categorical=categorical)
    y = np.asarray(labels, dtype=int)

    def fit_predict(train: list[int], test: list[int]) -> list[float]:
        pipeline = build_pipeline(
            algorithm,  # type: ignore[arg-type]
            numeric=numeric,
            categorical=categorical,
            labels=y[train],
        )
        pipeline.fit(x.iloc[train], y[train])
        return [float(p) for p in pipeline.predict_proba(x.iloc[test])[:, 1]]

    return walk_forward(times, list(y), fit_predict=fit_predict, metric="roc_auc", period=period)


def text(
    times: Sequence[datetime],
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    method: str,
    period: Period | None = None,
) -> WalkForward:
    """Walk-forward of a text classifier: refitted (uncalibrated) before each period."""
    from opsloop.learning.text import predict_top_k, train_text

    def fit_predict(train: list[int], test: list[int]) -> list[str]:
        with warnings.catch_warnings():
            # The first periods may have fewer messages than twice the labels: scikit-learn
            # wonders aloud whether that is a regression; it is a small history.
            warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
            model = train_text(
                [texts[i] for i in train],
                [labels[i] for i in train],
                method=method,  # type: ignore[arg-type]
                calibrate=False,
            )
        return [top[0].label for top in predict_top_k(model, [texts[i] for i in test], k=1)]

    return walk_forward(
        times, list(labels), fit_predict=fit_predict, metric="accuracy", period=period
    )
