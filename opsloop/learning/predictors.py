"""Adapters between the tabular library and the rest of OpsLoop: training rows in, a stored
artifact out, and a loaded artifact as the `Predictor` decisions call.

scikit-learn, pandas and skops are imported inside the functions, so importing this module
(every process does, through the service) stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from opsloop.learning.split_checks import SplitKind
from opsloop.reasoning.predictions import Prediction, Predictor, TextPredictor

if TYPE_CHECKING:
    from opsloop.learning.artifacts import ModelArtifact
    from opsloop.learning.datasets import Row
    from opsloop.learning.tabular import TabularModel, TrainedTabular
    from opsloop.learning.text import TextModel

Algorithm = Literal["auto", "logistic_regression", "gradient_boosting"]

TARGET = "@label"
TIME = "@at"
"""Column names no feature can take (feature names are `a-z0-9_`)."""
TEST_FRACTION = 0.2
TOP_FEATURES = 3


class TabularPredictor:
    def __init__(self, model: TabularModel) -> None:
        self.model = model

    def predict(self, features: Mapping[str, Any]) -> Prediction:
        from opsloop.learning.tabular import explain_prediction

        return _prediction(explain_prediction(self.model, features, top=TOP_FEATURES))

    def predict_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        """`predict` for many rows with one call of the model (a batch's decisions)."""
        from opsloop.learning.tabular import explain_predictions

        return [
            _prediction(explained)
            for explained in explain_predictions(self.model, rows, top=TOP_FEATURES)
        ]


def _prediction(explained: Any) -> Prediction:
    return Prediction(
        p=explained.probability,
        top_features=[
            {
                "feature": c.feature,
                "value": c.value,
                "typical": c.typical,
                "effect": round(c.log_odds, 3),
            }
            for c in explained.contributions
        ],
    )


def table(rows: Sequence[Row], features: Sequence[str]) -> list[dict[str, Any]]:
    """The rows as the library reads them: features, the label and the time."""
    return [
        {**{name: row.features.get(name) for name in features}, TARGET: row.label, TIME: row.at}
        for row in rows
    ]


def train(
    rows: Sequence[Row],
    features: Sequence[str],
    *,
    algorithm: Algorithm = "auto",
    split: SplitKind = "time",
) -> TrainedTabular:
    """Train on the earlier rows, evaluate on the latest `TEST_FRACTION` (time order); with
    `split="stratified"`, on a random `TEST_FRACTION` of each label's rows."""
    from opsloop.learning.tabular import train_tabular

    return train_tabular(
        table(rows, features),
        target=TARGET,
        time_key=TIME,
        features=list(features),
        algorithm=algorithm,
        test_fraction=TEST_FRACTION,
        split_by=split,
    )


def test_positions(rows: Sequence[Row], split: SplitKind = "time") -> list[int]:  # noqa: PT028
    """Positions of the held-out rows, exactly as `train` split them."""
    if split == "stratified":
        from opsloop.learning.split_checks import stratified_split

        return stratified_split([row.label for row in rows], test_share=TEST_FRACTION).test
    from opsloop.learning.tabular import time_ordered_split

    return time_ordered_split([row.at for row in rows], test_fraction=TEST_FRACTION).test


def walk_forward(model: TabularModel, rows: Sequence[Row]) -> dict[str, Any]:
    """The model's recipe retrained before each period and scored on it
    (`opsloop.learning.walk_forward`), as a JSON-ready dict with a `summary` in words."""
    from opsloop.learning import walk_forward as walking

    return walking.tabular(
        [dict(row.features) for row in rows],
        [row.at for row in rows],
        [row.label for row in rows],
        numeric=model.numeric,
        categorical=model.categorical,
        algorithm=model.algorithm,
    ).to_dict()


def probabilities(model: TabularModel, rows: Sequence[Row]) -> list[float]:
    from opsloop.learning.tabular import predict_proba

    return predict_proba(model, [dict(row.features) for row in rows])


def probabilities_of(model: TabularModel, rows: Sequence[Mapping[str, Any]]) -> list[float]:
    """`probabilities` for plain feature mappings (a backtest's rows)."""
    from opsloop.learning.tabular import predict_proba

    return predict_proba(model, [dict(row) for row in rows])


def scores(labels: Sequence[int], predicted: Sequence[float]) -> dict[str, float]:
    """ROC AUC and Brier score of predictions (the champion/challenger comparison)."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    return {
        "roc_auc": round(float(roc_auc_score(list(labels), list(predicted))), 6),
        "brier": round(float(brier_score_loss(list(labels), list(predicted))), 6),
    }


def dump_model(model: TabularModel) -> ModelArtifact:
    """The bytes (with checksum and library versions) `model_versions` keeps."""
    from opsloop.learning import artifacts

    return artifacts.dump_model(model)


def load_model(artifact: bytes, stored: Mapping[str, Any]) -> TabularModel:
    """The model in a stored artifact, checked against the row's checksum; raise
    `ModelArtifactError` (never load anyway) when the bytes are corrupt, from another format or
    library version, or not a tabular model."""
    from opsloop.learning import artifacts
    from opsloop.learning.tabular import TabularModel

    model = artifacts.load_model(artifact, sha256=stored.get("artifact_sha256"))
    if not isinstance(model, TabularModel):
        raise artifacts.ModelArtifactError(
            "untrusted", f"a {type(model).__name__} where a tabular model was expected"
        )
    return model


class TextClassifier:
    """A trained text model as triage calls it: message → (category, probability)."""

    def __init__(self, model: TextModel) -> None:
        self.model = model

    def classify(self, text: str) -> tuple[str, float]:
        from opsloop.learning.text import predict_top_k

        [[best, *_]] = predict_top_k(self.model, [text], k=1)
        return best.label, round(best.probability, 4)


def load_text_model(artifact: bytes, stored: Mapping[str, Any]) -> TextModel:
    """`load_model` for a text model: the same checks, and it must be one."""
    from opsloop.learning import artifacts
    from opsloop.learning.text import TextModel

    model = artifacts.load_model(artifact, sha256=stored.get("artifact_sha256"))
    if not isinstance(model, TextModel):
        raise artifacts.ModelArtifactError(
            "untrusted", f"a {type(model).__name__} where a text model was expected"
        )
    return model


def load_predictor(artifact: bytes, stored: Mapping[str, Any]) -> Predictor | TextPredictor:
    """`load_model`, ready for decisions: a text classifier for a version of kind `text`."""
    if stored.get("kind") == "text":
        return TextClassifier(load_text_model(artifact, stored))
    return TabularPredictor(load_model(artifact, stored))
