"""The model's part of a decision: its probability, the features that moved it, and what it
added to the score.

A playbook with a `model:` block reads the model's probability by name (`p_convert`). The
champion model gives it; a challenger, if there is one, is computed alongside in shadow and
recorded but never used. While no champion can be used (none trained yet, or its file was
rejected) expressions see the block's `fallback`, and the explanation says so. The models are
handed in already loaded (`opsloop.service.served_models`); nothing here touches storage or
knows which library made them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from opsloop.core.expressions import ExpressionError, normalize
from opsloop.core.playbooks import ModelSpec
from opsloop.reasoning.compiler import CompiledPlaybook

log = logging.getLogger(__name__)

TOP_FEATURES = 3


@dataclass(frozen=True, slots=True)
class Prediction:
    p: float
    top_features: list[dict[str, Any]]
    """The features that moved this prediction most: `{"feature", "value", "effect"}`."""


@runtime_checkable
class Predictor(Protocol):
    def predict(self, features: Mapping[str, Any]) -> Prediction:
        """The probability for one row of feature values, with its strongest features."""


@runtime_checkable
class TextPredictor(Protocol):
    def classify(self, text: str) -> tuple[str, float]:
        """The likeliest category of a message and its probability."""


@dataclass(frozen=True, slots=True)
class ServedModel:
    name: str
    version: int
    version_id: int
    features: tuple[str, ...]
    predictor: Predictor | TextPredictor
    """A `Predictor` for a `model:` block, a `TextPredictor` for `text.classify`."""


@dataclass(frozen=True, slots=True)
class PlaybookModels:
    champion: ServedModel | None = None
    challenger: ServedModel | None = None
    note: str | None = None
    """Why no champion is used, in a few words (shown in the explanation)."""


def predict(
    spec: ModelSpec, models: PlaybookModels | None, features: Mapping[str, Any]
) -> tuple[float, dict[str, Any]]:
    """The value expressions see under `spec.output`, and the explanation's `model` entry."""
    models = models or PlaybookModels(note="no trained model yet")
    entry: dict[str, Any] = {"as": spec.output, "predicts": spec.predicts}
    champion = models.champion
    p: float = spec.fallback
    if champion is not None and champion.features != spec.features:
        entry["note"] = "the trained model reads other features than the playbook lists"
        champion = None
    if champion is None:
        entry.update(
            name=None,
            version=None,
            p=normalize(spec.fallback),
            used=False,
            fallback=True,
            note=entry.get("note") or models.note or "no trained model yet",
        )
    else:
        entry.update(name=champion.name, version=champion.version)
        try:
            prediction = _tabular(champion).predict(_row(features, champion.features))
        except Exception as exc:  # a model that cannot score this row must not fail the decision
            log.warning("model %s v%d failed: %s", champion.name, champion.version, exc)
            entry.update(
                p=normalize(spec.fallback), used=False, fallback=True, error=f"{exc}"[:300]
            )
        else:
            p = round(float(prediction.p), 4)
            entry.update(p=p, used=True, top_features=prediction.top_features[:TOP_FEATURES])
    challenger = models.challenger
    if challenger is not None and challenger.features == spec.features:
        try:
            shadow = _tabular(challenger).predict(_row(features, challenger.features))
            entry["challenger"] = {
                "version": challenger.version,
                "p": round(float(shadow.p), 4),
                "used": False,
            }
        except Exception as exc:
            entry["challenger"] = {"version": challenger.version, "error": f"{exc}"[:300]}
    return p, entry


def score_part(
    playbook: CompiledPlaybook, spec: ModelSpec, context: dict[str, Any], score: float
) -> float | None:
    """How much the model's term adds to the score: the score minus the same formula with the
    probability at 0. None when the score formula does not read the model."""
    if spec.output not in playbook.score.roots:
        return None
    try:
        without = playbook.score.evaluate({**context, spec.output: 0})
    except ExpressionError:
        return None
    if not isinstance(without, int | float) or isinstance(without, bool):
        return None
    part: float = normalize(round(score - without, 4))
    return part


def describe(entry: dict[str, Any]) -> str:
    """The model's part of the one-line `why`: `model p_convert 0.62 (+24.8 to the score)`."""
    name = entry["as"]
    part = entry.get("score_part")
    added = f" ({part:+g} to the score)" if isinstance(part, int | float) and part else ""
    if entry.get("used"):
        return f"model {name} {entry['p']:g}{added}"
    why = entry.get("error") or entry.get("note") or "no model"
    return f"model {name}: {why}, used {entry['p']:g}{added}"


@runtime_checkable
class BatchPredictor(Protocol):
    def predict_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        """`Predictor.predict` for many rows at once, in order."""


def primed(
    spec: ModelSpec, models: PlaybookModels | None, rows: Sequence[Mapping[str, Any]]
) -> PlaybookModels | None:
    """`models` with the predictions for these feature rows made in one call per model: a
    batch's decisions then read them instead of calling the model once each (the call, not
    the row, is what costs). A row not primed, or a batch call that failed, is predicted on
    its own as before, so each decision still records its own failure."""
    if models is None or len(rows) < 2:
        return models
    return replace(
        models,
        champion=_prime(spec, models.champion, rows),
        challenger=_prime(spec, models.challenger, rows),
    )


def _prime(
    spec: ModelSpec, model: ServedModel | None, rows: Sequence[Mapping[str, Any]]
) -> ServedModel | None:
    if model is None or model.features != spec.features:
        return model
    predictor = model.predictor
    if not isinstance(predictor, BatchPredictor) or not isinstance(predictor, Predictor):
        return model
    wanted = [_row(features, model.features) for features in rows]
    try:
        predictions = predictor.predict_many(wanted)
    except Exception:  # each decision then tries alone and records why it failed
        return model
    known = {_key(row): made for row, made in zip(wanted, predictions, strict=True)}
    return replace(model, predictor=_Primed(predictor, known))


class _Primed:
    """A predictor answering the rows it was primed with, and asking its model for others."""

    def __init__(self, inner: Predictor, known: dict[str, Prediction]) -> None:
        self._inner = inner
        self._known = known

    def predict(self, features: Mapping[str, Any]) -> Prediction:
        made = self._known.get(_key(features))
        return made if made is not None else self._inner.predict(features)


def _key(row: Mapping[str, Any]) -> str:
    # repr tells 1, 1.0 and True apart, as the model's input does.
    return repr(tuple(row.items()))


def _row(features: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: features.get(name) for name in names}


def _tabular(model: ServedModel) -> Predictor:
    predictor = model.predictor
    assert isinstance(predictor, Predictor), f"{model.name} is not a tabular model"
    return predictor
