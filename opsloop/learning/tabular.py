"""Tabular models: a calibrated yes/no probability from a subject's features, and its evidence.

`train_tabular` takes rows of features (numbers and categories, some missing) with a yes/no
target and returns a trained model and an `EvaluationReport`. The protocol is time-ordered:

* rows are sorted by their time (ties keep the given order) and the **latest** rows are the
  test set, so the report says how the model does on the future it has not seen. A random
  split would let the model learn from rows that happened after the ones it is tested on, and
  report a score the business will never get.
* the algorithm (logistic regression or gradient boosting) is chosen on a validation slice cut
  from the **end** of the training period, never from the test rows.
* probabilities are calibrated (logistic regression is by construction; boosting is wrapped in
  `CalibratedClassifierCV`), and the report's Brier score and calibration table check it.

scikit-learn and pandas are imported here, in the learning layer only; callers pass and get
back plain values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from numbers import Number
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from opsloop.core.errors import InvalidInput
from opsloop.learning import evidence

Algorithm = Literal["logistic_regression", "gradient_boosting"]
ALGORITHMS: tuple[Algorithm, ...] = ("logistic_regression", "gradient_boosting")

Rows: TypeAlias = Sequence[Mapping[str, Any]] | pd.DataFrame

MISSING = "(missing)"
"""The category a missing categorical value becomes: missing is information too."""

MIN_ROWS = 20
_EPS = 1e-6


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationBin:
    """One decile of the test rows, ranked by predicted probability."""

    predicted_min: float
    predicted_max: float
    predicted_mean: float
    observed_rate: float
    count: int


@dataclass(frozen=True)
class FeatureImportance:
    feature: str
    importance: float
    """Mean drop in test ROC AUC when this input column is shuffled (higher = relied on more)."""


@dataclass(frozen=True)
class SplitInfo:
    rows: int
    positives: int
    start: Any
    """Time of the earliest row (ISO text for datetimes; None when rows carry no time)."""
    end: Any


@dataclass(frozen=True)
class EvaluationReport:
    """How a trained model did on the latest rows it never saw. `to_dict()` is JSON-ready."""

    algorithm: Algorithm
    calibration_method: str
    roc_auc: float
    pr_auc: float
    brier: float
    base_rate: float
    lift_top_10: float
    lift_top_20: float
    calibration: list[CalibrationBin]
    top_features: list[FeatureImportance]
    train: SplitInfo
    test: SplitInfo
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)
    """Validation scores of each algorithm tried, when the algorithm was chosen automatically."""
    notes: list[str] = field(default_factory=list)
    roc_auc_interval: list[float] = field(default_factory=list)
    """The 95% bootstrap interval of `roc_auc` (`evidence.auc_interval`)."""
    skill: dict[str, Any] = field(default_factory=dict)
    """Whether the held-out ROC AUC shows skill over chance (`evidence.Skill`): a champion must."""
    warnings: list[str] = field(default_factory=list)
    """What a careful analyst would point out, in words (`evidence.tabular_notes`,
    `evidence.feature_notes`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self, *, features: int = 8) -> str:
        lines = [
            f"model: {self.algorithm} (probabilities: {self.calibration_method})",
            f"train: {_split_text(self.train)}",
            f"test:  {_split_text(self.test)}",
        ]
        if self.candidates:
            chosen = ", ".join(
                f"{name} {scores['roc_auc']:.3f}" for name, scores in self.candidates.items()
            )
            lines.append(f"validation ROC AUC (end of training period): {chosen}")
        interval = (
            f" (95% interval {self.roc_auc_interval[0]:.3f}-{self.roc_auc_interval[1]:.3f})"
            if self.roc_auc_interval
            else ""
        )
        lines += [
            f"ROC AUC {self.roc_auc:.3f}{interval}   PR AUC {self.pr_auc:.3f}   "
            f"Brier {self.brier:.4f}   base rate {self.base_rate:.3f}",
            f"lift: top 10% {self.lift_top_10:.2f}x   top 20% {self.lift_top_20:.2f}x",
            "calibration (test rows in deciles of predicted probability):",
            "  predicted  observed   rows",
        ]
        lines += [
            f"  {b.predicted_mean:9.3f}  {b.observed_rate:8.3f}  {b.count:5d}"
            for b in self.calibration
        ]
        lines.append("strongest features (drop in ROC AUC when shuffled):")
        lines += [f"  {f.feature:<28} {f.importance:+.4f}" for f in self.top_features[:features]]
        lines += [f"warning: {warning}" for warning in self.warnings]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _split_text(split: SplitInfo) -> str:
    rate = split.positives / split.rows if split.rows else 0.0
    when = f", {split.start} .. {split.end}" if split.start is not None else ""
    return f"{split.rows} rows, {split.positives} positive ({rate:.1%}){when}"


@dataclass
class TabularModel:
    """A fitted pipeline plus what it needs to read raw rows. Kept plain (no slots, no frozen)
    so `artifacts` can store it without pickle."""

    algorithm: str
    target: str
    numeric: list[str]
    categorical: list[str]
    typical: dict[str, Any]
    """The reference row explanations compare with: median of numbers, most common category."""
    pipeline: Any

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


@dataclass(frozen=True)
class TrainedTabular:
    model: TabularModel
    report: EvaluationReport


@dataclass(frozen=True)
class Split:
    """Row positions (into the rows as given), each list in time order."""

    train: list[int]
    test: list[int]


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: Any
    typical: Any
    log_odds: float
    """How much this feature's value moved the score, in log-odds, against the typical value."""


@dataclass(frozen=True)
class Explanation:
    probability: float
    typical_probability: float
    method: Literal["exact", "approximate"]
    contributions: list[Contribution]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- splitting -------------------------------------------------------------------------------


def time_ordered_split(
    times: Sequence[Any], *, test_fraction: float = 0.2, test_since: Any = None
) -> Split:
    """Sort positions by time (a stable sort: ties keep the given order) and hold out the latest.

    With `test_since`, the test set is every row at or after that time; otherwise it is the
    latest `test_fraction` of rows. No test row is earlier than any train row.
    """
    if not 0 < test_fraction < 1:
        raise InvalidInput.single("test_fraction", "must be between 0 and 1")
    for position, value in enumerate(times):
        if _is_missing(value):
            raise InvalidInput.single("time", f"row {position} has no time")
    try:
        order = sorted(range(len(times)), key=lambda i: times[i])
        if test_since is None:
            cut = len(order) - max(1, math.ceil(len(order) * test_fraction))
        else:
            cut = next((n for n, i in enumerate(order) if times[i] >= test_since), len(order))
    except TypeError as exc:
        raise InvalidInput.single("time", f"time values cannot be compared: {exc}") from exc
    return Split(train=order[:cut], test=order[cut:])


# --- training --------------------------------------------------------------------------------


def train_tabular(
    rows: Rows,
    *,
    target: str,
    time_key: str | None = None,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    algorithm: Algorithm | Literal["auto"] = "auto",
    test_fraction: float = 0.2,
    test_since: Any = None,
    validation_fraction: float = 0.2,
    refit_on_all: bool = False,
    random_state: int = 0,
    split_by: Literal["time", "stratified"] = "time",
) -> TrainedTabular:
    """Train a calibrated yes/no classifier on the earlier rows and evaluate it on the latest.

    `rows` are dicts (or a DataFrame) holding the features, the `target` (bool, 0/1 or
    "yes"/"no"-like text) and, if given, `time_key` (datetimes, dates, numbers or ISO text; the
    given order is the time order when it is None). `features` defaults to every other
    column; `categorical` defaults to the columns holding anything but numbers and booleans
    (pass it to treat numeric codes such as a region id as categories).

    With `algorithm="auto"`, both algorithms are fitted on the training rows minus their latest
    `validation_fraction`, and the one with the better ROC AUC on that slice is refitted on all
    training rows. The returned model is the one the report describes; with
    `refit_on_all=True` it is refitted on every row afterwards (same recipe, the latest data),
    and the report then describes the recipe's held-out performance.

    `split_by="stratified"` is for rows whose order is not time (a file sorted by label):
    `test_fraction` of each label's rows are held out at random (`split_checks`), and the
    validation slice is a random part of the training rows.
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
    frame = frame.reset_index(drop=True)
    if len(frame) < MIN_ROWS:
        raise InvalidInput.single("rows", f"need at least {MIN_ROWS} rows, got {len(frame)}")
    for column in (target, time_key):
        if column is not None and column not in frame.columns:
            raise InvalidInput.single(column, "is not a column of the rows")
    y = _labels(frame[target])
    names = list(features or [c for c in frame.columns if c not in (target, time_key)])
    if not names:
        raise InvalidInput.single("features", "no feature columns")
    numeric, categories = _kinds(frame, names, categorical)
    x = _frame(frame, numeric, categories)

    times: list[Any] = list(frame[time_key]) if time_key else list(range(len(frame)))
    split = time_ordered_split(times, test_fraction=test_fraction, test_since=test_since)
    chooser = split.train  # the validation slice is the end of this order
    if split_by == "stratified":
        from opsloop.learning.split_checks import stratified_split

        drawn = stratified_split(y.tolist(), test_share=test_fraction, seed=random_state)
        chooser = drawn.train
        by_time = times.__getitem__
        split = Split(train=sorted(drawn.train, key=by_time), test=sorted(drawn.test, key=by_time))
    shown_times: list[Any] = times if time_key else [None] * len(times)
    for part, positions in (("training", split.train), ("test", split.test)):
        if min(np.bincount(y[positions], minlength=2)) < 2:
            raise InvalidInput.single(
                target, f"the {part} rows need at least 2 yes and 2 no labels"
            )
    train_x, train_y = x.iloc[split.train], y[split.train]
    test_x, test_y = x.iloc[split.test], y[split.test]

    notes: list[str] = []
    candidates: dict[str, dict[str, float]] = {}
    chosen: Algorithm
    if algorithm == "auto":
        chosen, candidates, note = _choose(
            x.iloc[chooser], y[chooser], numeric, categories, validation_fraction, random_state
        )
        notes += [note] if note else []
    elif algorithm in ALGORITHMS:
        chosen = algorithm
    else:
        raise InvalidInput.single("algorithm", f"must be auto or one of {', '.join(ALGORITHMS)}")

    pipeline = _pipeline(chosen, numeric, categories, train_y, random_state)
    _fit(pipeline, train_x, train_y)
    model = TabularModel(
        algorithm=chosen,
        target=target,
        numeric=numeric,
        categorical=categories,
        typical=_typical(train_x, numeric, categories),
        pipeline=pipeline,
    )
    probabilities = _positive_probability(pipeline, test_x)
    importances = _importances(pipeline, test_x, test_y, random_state)
    skill = evidence.auc_skill(test_y, probabilities, seed=random_state)
    warnings = evidence.feature_notes(
        {name: frame[name].iloc[split.train].tolist() for name in names}
    )
    warnings += evidence.tabular_notes(
        skill=skill,
        train_positives=int(train_y.sum()),
        train_rows=len(train_y),
        test_positives=int(test_y.sum()),
        test_rows=len(test_y),
        importances=[(f.feature, f.importance) for f in importances],
    )
    report = EvaluationReport(
        algorithm=chosen,
        calibration_method=_calibration_method(chosen),
        roc_auc=float(roc_auc_score(test_y, probabilities)),
        pr_auc=float(average_precision_score(test_y, probabilities)),
        brier=float(brier_score_loss(test_y, probabilities)),
        base_rate=float(test_y.mean()),
        lift_top_10=lift(test_y, probabilities, 0.10),
        lift_top_20=lift(test_y, probabilities, 0.20),
        calibration=calibration_table(test_y, probabilities),
        top_features=importances,
        train=_split_info(shown_times, split.train, y),
        test=_split_info(shown_times, split.test, y),
        candidates=candidates,
        notes=notes,
        roc_auc_interval=skill.interval,
        skill=skill.to_dict(),
        warnings=warnings,
    )
    if split_by == "stratified":
        notes.append(
            "held-out rows: a stratified random fifth (every label's share kept), not the latest "
            "rows: the rows' order is not time"
        )
    if refit_on_all:
        order = [*split.train, *split.test]
        _fit(pipeline, x.iloc[order], y[order])
        model.typical = _typical(x, numeric, categories)
        notes.append("the model was refitted on all rows after evaluation")
    return TrainedTabular(model=model, report=report)


def predict_proba(model: TabularModel, rows: Rows) -> list[float]:
    """Probability of the positive class for each row. Missing keys and unseen categories are
    allowed: they count as missing values or as no known category."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
    if len(frame) == 0:
        return []
    x = _frame(frame.reset_index(drop=True), model.numeric, model.categorical)
    return [float(p) for p in _positive_probability(model.pipeline, x)]


def explain_prediction(model: TabularModel, row: Mapping[str, Any], *, top: int = 3) -> Explanation:
    """The few input features that moved this row's score most, against the typical row.

    Each feature in turn is set to its typical value (training median, or most common
    category) and the change in log-odds is its contribution. For logistic regression this is
    exact: the model is additive in its inputs, so the contributions sum to the difference
    between this row's log-odds and the typical row's. For gradient boosting it is a cheap
    one-at-a-time approximation that ignores interactions between features (no SHAP), good
    enough to tell a reviewer what mattered, not to audit the model.
    """
    return explain_predictions(model, [row], top=top)[0]


def explain_predictions(
    model: TabularModel, rows: Sequence[Mapping[str, Any]], *, top: int = 3
) -> list[Explanation]:
    """`explain_prediction` for many rows with one call of the model: a batch's decisions
    cost one scikit-learn call instead of one each (most of the cost is per call)."""
    features = model.features
    records: list[dict[str, Any]] = []
    for row in rows:
        original = dict(row)
        records.append(original)
        records += [{**original, name: model.typical[name]} for name in features]
    records.append(dict(model.typical))
    x = _frame(pd.DataFrame.from_records(records), model.numeric, model.categorical)
    probabilities = _positive_probability(model.pipeline, x)
    logits = _logit(probabilities)
    typical = float(probabilities[-1])
    method: Literal["exact", "approximate"] = (
        "exact" if model.algorithm == "logistic_regression" else "approximate"
    )
    explained = []
    width = 1 + len(features)
    for position, row in enumerate(rows):
        at = position * width
        contributions = [
            Contribution(
                feature=name,
                value=_plain(row.get(name)),
                typical=_plain(model.typical[name]),
                log_odds=float(logits[at] - logits[at + 1 + index]),
            )
            for index, name in enumerate(features)
        ]
        contributions.sort(key=lambda c: abs(c.log_odds), reverse=True)
        explained.append(
            Explanation(
                probability=float(probabilities[at]),
                typical_probability=typical,
                method=method,
                contributions=[c for c in contributions[:top] if c.log_odds != 0.0],
            )
        )
    return explained


def build_pipeline(
    algorithm: Algorithm,
    *,
    numeric: list[str],
    categorical: list[str],
    labels: Any,
    random_state: int = 0,
) -> Pipeline:
    """The unfitted scikit-learn pipeline `train_tabular` fits for `algorithm`, for callers
    that run their own protocol on it (the benchmarks' cross-validated reference figures).
    It reads `model_input`'s frame; `labels` (0/1) sizes the calibration folds."""
    return _pipeline(algorithm, numeric, categorical, np.asarray(labels, dtype=int), random_state)


def model_input(rows: Rows, *, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Rows as the pipeline reads them: numbers as float (NaN when missing), categories as
    text (`MISSING` when missing)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
    return _frame(frame.reset_index(drop=True), numeric, categorical)


# --- metrics ---------------------------------------------------------------------------------


def lift(y: Any, probabilities: Any, fraction: float) -> float:
    """Positive rate among the top `fraction` of rows by probability, over the overall rate."""
    y = np.asarray(y, dtype=float)
    base = y.mean()
    if base == 0:
        return 0.0
    count = max(1, math.ceil(len(y) * fraction))
    top = np.argsort(-np.asarray(probabilities), kind="stable")[:count]
    return float(y[top].mean() / base)


def calibration_table(y: Any, probabilities: Any, *, bins: int = 10) -> list[CalibrationBin]:
    """Rows ranked by predicted probability, cut into `bins` groups of (nearly) equal size."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(probabilities, dtype=float)
    order = np.argsort(p, kind="stable")
    table = []
    for chunk in np.array_split(order, min(bins, len(order))):
        table.append(
            CalibrationBin(
                predicted_min=float(p[chunk].min()),
                predicted_max=float(p[chunk].max()),
                predicted_mean=float(p[chunk].mean()),
                observed_rate=float(y[chunk].mean()),
                count=len(chunk),
            )
        )
    return table


# --- internals -------------------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def _labels(column: pd.Series) -> np.ndarray:
    labels = []
    for position, value in enumerate(column.tolist()):
        if isinstance(value, bool | np.bool_) or (_is_number(value) and value in (0, 1)):
            labels.append(int(bool(value)))
        elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            labels.append(int(value.strip().lower() in _TRUE))
        else:
            raise InvalidInput.single(
                str(column.name), f"row {position}: {value!r} is not a yes/no label"
            )
    return np.asarray(labels, dtype=int)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, Number) and not isinstance(value, complex)


def _kinds(
    frame: pd.DataFrame, names: list[str], categorical: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise InvalidInput.single("features", f"not in the rows: {', '.join(missing)}")
    if categorical is not None:
        unknown = set(categorical) - set(names)
        if unknown:
            raise InvalidInput.single("categorical", f"not features: {', '.join(sorted(unknown))}")
        chosen = set(categorical)
        return [n for n in names if n not in chosen], [n for n in names if n in chosen]
    numeric, categories = [], []
    for name in names:
        column = frame[name]
        if (
            pd.api.types.is_bool_dtype(column)
            or pd.api.types.is_numeric_dtype(column)
            or all(_is_number(v) for v in column.tolist() if not _is_missing(v))
        ):
            numeric.append(name)
        else:
            categories.append(name)
    return numeric, categories


def _to_float(value: Any) -> float:
    if _is_missing(value):
        return math.nan
    if _is_number(value):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return math.nan  # text in a number column reads as missing: predictions must not fail


def _to_category(value: Any) -> str:
    return MISSING if _is_missing(value) else str(value)


def _frame(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input: numbers as float (NaN when missing), categories as text."""
    columns: dict[str, Any] = {}
    for name in numeric:
        if name not in frame.columns:
            columns[name] = np.full(len(frame), np.nan)
        elif pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name]):
            columns[name] = frame[name].to_numpy(dtype=float, na_value=np.nan)
        else:
            columns[name] = np.array([_to_float(v) for v in frame[name].tolist()], dtype=float)
    for name in categorical:
        values = frame[name].tolist() if name in frame.columns else [None] * len(frame)
        columns[name] = np.array([_to_category(v) for v in values], dtype=object)
    return pd.DataFrame(columns, index=range(len(frame)))


def _preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    numbers = Pipeline(
        [
            # The indicator keeps "this was missing" as a signal; keep_empty_features keeps
            # a column that happens to be all-missing instead of dropping it with a warning.
            (
                "impute",
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            ),
            ("scale", StandardScaler()),
        ]
    )
    categories = OneHotEncoder(
        handle_unknown="ignore", min_frequency=5, sparse_output=False, dtype=np.float64
    )
    return ColumnTransformer(
        [("numeric", numbers, numeric), ("categorical", categories, categorical)],
        sparse_threshold=0.0,
    )


def _calibration_method(algorithm: str) -> str:
    if algorithm == "logistic_regression":
        return "logistic (calibrated by construction)"
    return "sigmoid (Platt), cross-validated"


def _pipeline(
    algorithm: Algorithm, numeric: list[str], categorical: list[str], y: np.ndarray, seed: int
) -> Pipeline:
    # Calibration folds are stratified: each needs a few rows of the rarer class.
    folds = int(max(2, min(3, np.bincount(y, minlength=2).min())))
    model: Any
    if algorithm == "logistic_regression":
        model = LogisticRegression(C=1.0, max_iter=5000)
    else:
        # Early stopping (on a held-out tenth of the rows it is given) sizes the ensemble to
        # the data: a few dozen trees for a few hundred rows, more for thousands.
        boosting = HistGradientBoostingClassifier(
            max_iter=300,
            learning_rate=0.1,
            max_leaf_nodes=15,
            l2_regularization=1.0,
            early_stopping=True,
            n_iter_no_change=15,
            random_state=seed,
        )
        # Sigmoid (Platt) rather than isotonic, even with many rows: on the shoppers data
        # isotonic's steps gave tied scores and 0.001 probabilities that the next months
        # did not bear out; sigmoid ranked as well or better and was as well calibrated.
        model = CalibratedClassifierCV(boosting, method="sigmoid", cv=folds)
    return Pipeline([("prepare", _preprocessor(numeric, categorical)), ("model", model)])


def _fit(pipeline: Pipeline, x: pd.DataFrame, y: np.ndarray) -> None:
    pipeline.fit(x, y)


def _positive_probability(pipeline: Pipeline, x: pd.DataFrame) -> np.ndarray:
    return np.asarray(pipeline.predict_proba(x)[:, 1], dtype=float)


def _choose(
    x: pd.DataFrame,
    y: np.ndarray,
    numeric: list[str],
    categorical: list[str],
    validation_fraction: float,
    seed: int,
) -> tuple[Algorithm, dict[str, dict[str, float]], str | None]:
    """Fit each algorithm on the earlier training rows, score it on the latest ones."""
    cut = len(y) - max(1, math.ceil(len(y) * validation_fraction))
    fit_x, fit_y, check_x, check_y = x.iloc[:cut], y[:cut], x.iloc[cut:], y[cut:]
    if min(np.bincount(fit_y, minlength=2)) < 2 or len(set(check_y.tolist())) < 2:
        return (
            "logistic_regression",
            {},
            "validation slice held one class only: chose logistic regression without comparing",
        )
    scores: dict[str, dict[str, float]] = {}
    for name in ALGORITHMS:
        pipeline = _pipeline(name, numeric, categorical, fit_y, seed)
        _fit(pipeline, fit_x, fit_y)
        p = _positive_probability(pipeline, check_x)
        scores[name] = {
            "roc_auc": float(roc_auc_score(check_y, p)),
            "brier": float(brier_score_loss(check_y, p)),
        }
    # Ties go to logistic regression: simpler, exact explanations.
    best = max(ALGORITHMS, key=lambda n: (scores[n]["roc_auc"], n == "logistic_regression"))
    return best, scores, None


def _importances(
    pipeline: Pipeline, x: pd.DataFrame, y: np.ndarray, seed: int
) -> list[FeatureImportance]:
    # Shuffling raw input columns (before the pipeline) names features as the caller did,
    # not as one-hot columns.
    result = permutation_importance(
        pipeline, x, y, scoring="roc_auc", n_repeats=5, random_state=seed, n_jobs=1
    )
    ranked = sorted(
        zip(x.columns, result.importances_mean, strict=True), key=lambda p: p[1], reverse=True
    )
    return [FeatureImportance(str(name), round(float(value), 6)) for name, value in ranked]


def _typical(x: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    typical: dict[str, Any] = {}
    for name in numeric:
        known = x[name].dropna()  # an all-empty column has no median (pandas 2 warns)
        typical[name] = float(known.median()) if len(known) else None
    for name in categorical:
        typical[name] = str(x[name].mode().iloc[0])
    return typical


def _split_info(times: list[Any], positions: list[int], y: np.ndarray) -> SplitInfo:
    return SplitInfo(
        rows=len(positions),
        positives=int(y[positions].sum()),
        start=_plain(times[positions[0]]),
        end=_plain(times[positions[-1]]),
    )


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a value: ISO text for times, Python numbers, None for missing."""
    if _is_missing(value):
        return None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=float)
