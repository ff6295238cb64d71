"""The model's part of one decision, with stand-in models: the champion's probability feeds the
score and the explanation, the challenger is recorded but not used, and a model that cannot be
used gives way to the playbook's fallback — with the reason in the explanation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opsloop.core.events import Event
from opsloop.core.playbooks import ModelSpec
from opsloop.reasoning.decide import decide
from opsloop.reasoning.predictions import PlaybookModels, Prediction, ServedModel
from opsloop.service.decide.playbooks import load_playbook

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

PLAYBOOK = """\
name: leads
subject: lead
trigger:
  events: lead.created
features:
  budget:
    trait: budget
    default: 0
scorecard:
  - label: Funded
    when: budget >= 5000
    points: 10
score: points + 50 * p_buy
rules:
  - label: Likely
    when: p_buy >= 0.5
    choose: call
otherwise: wait
options:
  call: {}
  wait: {}
model:
  as: p_buy
  predicts: deal.won
  within: 30d
  features: [budget]
  fallback: 0.1
"""


class Fixed:
    def __init__(self, p: float, *, fail: bool = False) -> None:
        self.p = p
        self.fail = fail
        self.seen: list[dict[str, Any]] = []

    def predict(self, features: Mapping[str, Any]) -> Prediction:
        self.seen.append(dict(features))
        if self.fail:
            raise ValueError("cannot read budget")
        effect = {"feature": "budget", "value": features["budget"], "effect": 1.2}
        return Prediction(self.p, [effect])


def served(
    p: float, version: int, *, fail: bool = False, features: tuple[str, ...] = ("budget",)
) -> ServedModel:
    return ServedModel("leads:deal.won", version, version * 10, features, Fixed(p, fail=fail))


def run(models: PlaybookModels | None) -> dict[str, Any]:
    _, compiled = load_playbook(PLAYBOOK, "leads.yaml")
    event = Event(
        id=1,
        source="api",
        type="lead.created",
        subject="lead:1",
        occurred_at=T,
        received_at=T,
        payload={},
        traits={},
        idempotency_key=None,
    )
    draft = decide(
        compiled,
        version=1,
        mode="recommend",
        event=event,
        history=[],
        traits={"budget": 8000},
        models=models,
    )
    return {**draft.explanation, "score": draft.score, "choice": draft.choice}


def test_the_champion_feeds_the_score_and_the_challenger_only_the_explanation() -> None:
    champion, challenger = served(0.8, 3), served(0.2, 4)
    result = run(PlaybookModels(champion, challenger))
    assert result["score"] == 50
    assert result["choice"] == "call"
    model = result["model"]
    assert model == {
        "as": "p_buy",
        "predicts": "deal.won",
        "name": "leads:deal.won",
        "version": 3,
        "p": 0.8,
        "used": True,
        "top_features": [{"feature": "budget", "value": 8000, "effect": 1.2}],
        "challenger": {"version": 4, "p": 0.2, "used": False},
        "score_part": 40,
    }
    assert champion.predictor.seen == [{"budget": 8000}]  # type: ignore[attr-defined]
    assert result["why"].endswith("; model p_buy 0.8 (+40 to the score)")


def test_without_a_usable_model_the_fallback_is_used_and_the_reason_shown() -> None:
    none = run(None)
    assert none["score"] == 15
    assert none["model"]["p"] == 0.1
    assert none["model"]["fallback"] is True
    assert "model p_buy: no trained model yet, used 0.1 (+5 to the score)" in none["why"]

    failing = run(PlaybookModels(served(0.9, 2, fail=True)))
    assert failing["model"]["used"] is False
    assert failing["model"]["error"] == "cannot read budget"
    assert failing["score"] == 15

    other = run(PlaybookModels(served(0.9, 2, features=("budget", "visits"))))
    assert other["model"]["used"] is False
    assert (
        other["model"]["note"] == "the trained model reads other features than the playbook lists"
    )

    rejected = run(PlaybookModels(note="model v2 was rejected (corrupt); retraining"))
    assert rejected["model"]["note"] == "model v2 was rejected (corrupt); retraining"


def test_a_spec_reads_its_window_from_the_outcome_unless_it_has_its_own() -> None:
    spec = ModelSpec.model_validate({"predicts": "deal.won", "features": ["budget"]})
    assert spec.window(None) is None
    assert spec.output == "p_success"
