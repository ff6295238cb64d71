"""Sentiment routing: an angry or distressed message goes to a person, with the reason shown;
a happy or plain one does not."""

from __future__ import annotations

import pytest

from opsloop.reasoning.sentiment import needs_human, sentiment


def test_an_angry_message_is_flagged_with_its_tone_as_the_reason() -> None:
    check = needs_human("This is the THIRD time my order is late. Terrible service, I hate this!!")
    assert check.flagged
    assert check.sentiment is not None
    assert check.sentiment.label == "negative"
    assert any("very negative tone" in reason for reason in check.reasons)


def test_a_happy_message_is_not_flagged() -> None:
    check = needs_human("Thanks so much, the beans arrived early and taste great!")
    assert not check.flagged
    assert check.reasons == []
    assert check.sentiment is not None
    assert check.sentiment.label == "positive"
    assert check.sentiment.compound > 0.5


def test_a_plain_question_is_neutral_and_not_flagged() -> None:
    check = needs_human("Where is my parcel?")
    assert not check.flagged
    assert sentiment("Where is my parcel?").label == "neutral"


@pytest.mark.parametrize(
    ("message", "term"),
    [
        ("Please pass this to your manager, my lawyer will be in touch.", "lawyer"),
        ("I will file a CHARGEBACK with my bank.", "chargeback"),
        ("I can’t afford another month of this fee.", "can't afford"),
        ("Emergency: the shop door lock is broken", "emergency"),
    ],
)
def test_distress_words_flag_a_message_whatever_its_tone(message: str, term: str) -> None:
    check = needs_human(message)
    assert check.flagged
    assert f"mentions {term!r}" in check.reasons


def test_terms_match_whole_words_only() -> None:
    assert not needs_human("The issue was resolved, thank you").flagged  # not "sue"


def test_the_threshold_and_terms_can_be_tuned() -> None:
    message = "This is a bit disappointing."
    assert not needs_human(message).flagged
    strict = needs_human(message, threshold=0.0)
    assert strict.flagged
    assert needs_human("refund now", terms=["refund"]).reasons == ["mentions 'refund'"]
