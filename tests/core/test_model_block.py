"""The `model:` block of a playbook: what it may say, and what an author sees when it is wrong
(file, line, field, and the nearest valid name for a typo). A trailing `# n` marks the lines
asserted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from opsloop.core.errors import PlaybookInvalid, PlaybookProblem
from opsloop.service.decide.playbooks import load_playbook

HEAD = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  budget:
    trait: budget
  visits_7d:
    count: page.viewed
    within: 7d
otherwise: cold
options:
  hot: {}
  cold: {}
"""


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(text, "acme.yaml")
    found: list[PlaybookProblem] = caught.value.problems
    return [(p.line, p.field, p.message) for p in found]


def test_a_model_block_with_defaults() -> None:
    text = (
        HEAD
        + """\
score: points + 40 * p_success
outcome:
  success: deal.won
  within: 45d
model:
  predicts: deal.won
  features: [budget, visits_7d]
"""
    )
    playbook, _ = load_playbook(text, "acme.yaml")
    model = playbook.model
    assert model is not None
    assert model.output == "p_success"
    assert model.window(playbook.outcome) == timedelta(days=45)
    assert model.min_rows == 200
    assert model.fallback == 0
    assert model.retrain is None
    assert model.review_option is None


def test_the_models_name_is_known_to_scorecard_score_rules_and_guardrails() -> None:
    text = (
        HEAD
        + """\
scorecard:
  - when: p_convert > 0.5
    points: 10
score: points + 40 * p_convert
rules:
  - when: p_convert > 0.9
    choose: hot
guardrails:
  - when: p_convert < 0.01
    reason: Unlikely leads get a person's look.
model:
  as: p_convert
  predicts: review:hot
  features: budget
  retrain: 1d
  fallback: 0.2
"""
    )
    playbook, _ = load_playbook(text, "acme.yaml")
    assert playbook.model is not None
    assert playbook.model.review_option == "hot"
    assert playbook.model.features == ("budget",)


def test_mistakes_in_the_block_name_their_line_and_suggest_a_fix() -> None:
    text = (
        HEAD
        + """\
model:
  as: score                  # 16
  predicts: review:hott      # 17
  within: 3d                 # 18
  features: [visits_7, budget, budget]   # 19
"""
    )
    assert problems(text) == [
        (16, "model.as", "'score' is reserved; choose another name, e.g. p_success"),
        (17, "model.predicts", "no option named 'hott'; did you mean 'hot'? (options: hot, cold)"),
        (18, "model.within", "`within` applies to event predictions, not review:<option>"),
        (
            19,
            "model.features[0]",
            "no feature named 'visits_7'; did you mean 'visits_7d'? (features: budget, visits_7d)",
        ),
        (19, "model.features[2]", "'budget' is listed twice"),
    ]


def test_an_event_prediction_needs_a_window_and_unknown_keys_get_a_suggestion() -> None:
    text = (
        HEAD
        + """\
model:                       # 15
  predicts: deal.won
  features: [budget]
  min_row: 50                # 18
"""
    )
    assert problems(text) == [(18, "model.min_row", "unknown field; did you mean 'min_rows'?")]
    fixed = text.replace("  min_row: 50", "  min_rows: 50")
    assert problems(fixed) == [
        (
            15,
            "model.within",
            "say how long after the trigger deal.won may come (within: 45d), or give the "
            "playbook an `outcome`",
        )
    ]


def test_a_feature_formula_cannot_read_the_model_and_a_typo_of_its_name_is_caught() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  budget:
    trait: budget
  double:
    formula: p_convert * 2       # 9
score: points + 40 * p_convrt    # 10
otherwise: cold
options:
  cold: {}
model:
  as: p_convert
  predicts: deal.won
  within: 30d
  features: [budget]
"""
    assert problems(text) == [
        (
            9,
            "features.double.formula",
            "unknown name 'p_convert'; the model reads the features, so a feature formula "
            "cannot use its output",
        ),
        (10, "score", "unknown name 'p_convrt'; did you mean 'p_convert'?"),
    ]
