"""Sentiment of a message, and whether an angry or distressed one should go to a person.

VADER (Hutto & Gilbert, 2014) is a lexicon with rules for negation, intensifiers, capitals and
exclamation marks, tuned on short social-media text, which support messages resemble. It runs
offline (the lexicon ships in the package), needs no training and takes microseconds. It reads
English only, and it misses sarcasm; that is why `needs_human` also looks for words that
matter whatever the tone (a lawyer, a chargeback, an emergency).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Label = Literal["negative", "neutral", "positive"]

# VADER's authors' own cut-offs for the compound score.
POSITIVE_FROM = 0.05
NEGATIVE_BELOW = -0.05

ANGRY_BELOW = -0.5
"""A compound score below this reads as clearly upset: a person should answer."""

DISTRESS_TERMS: tuple[str, ...] = (
    # threats of escalation: a person, not a template, should answer these
    "lawyer",
    "solicitor",
    "attorney",
    "sue",
    "lawsuit",
    "legal action",
    "small claims",
    "ombudsman",
    "trading standards",
    "chargeback",
    "fraud",
    "scam",
    "stolen",
    "report you",
    "formal complaint",
    "cancel my account",
    "close my account",
    # anger that VADER can underrate
    "furious",
    "outraged",
    "unacceptable",
    "disgusted",
    "fed up",
    "never again",
    # distress
    "desperate",
    "emergency",
    "urgent",
    "can't afford",
    "cannot afford",
    "in tears",
    "crying",
    "harassed",
    "threatened",
    "unsafe",
    "suicide",
    "kill myself",
    "self harm",
)


@dataclass(frozen=True)
class Sentiment:
    compound: float
    """VADER's normalised score, from -1 (most negative) to +1 (most positive)."""
    label: Label
    positive: float
    neutral: float
    negative: float


@dataclass(frozen=True)
class HumanCheck:
    flagged: bool
    reasons: list[str] = field(default_factory=list)
    sentiment: Sentiment | None = None


@functools.cache
def _analyzer() -> Any:
    # Reads the lexicon file (~7,500 entries) once per process, when a message is first read.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> Sentiment:
    scores = _analyzer().polarity_scores(text or "")
    compound = float(scores["compound"])
    label: Label = (
        "positive"
        if compound >= POSITIVE_FROM
        else "negative"
        if compound <= NEGATIVE_BELOW
        else "neutral"
    )
    return Sentiment(
        compound=compound,
        label=label,
        positive=float(scores["pos"]),
        neutral=float(scores["neu"]),
        negative=float(scores["neg"]),
    )


def needs_human(
    text: str,
    *,
    threshold: float = ANGRY_BELOW,
    terms: Iterable[str] = DISTRESS_TERMS,
) -> HumanCheck:
    """Flag a message a person should handle: a very negative tone (compound score below
    `threshold`) or any of `terms` (whole words or phrases, any case). `reasons` says which,
    so the review inbox can show why the message was held."""
    result = sentiment(text)
    reasons = []
    if result.compound < threshold:
        reasons.append(f"very negative tone (sentiment {result.compound:+.2f} < {threshold:+.2f})")
    found = [term for term in terms if _pattern(term).search(text or "")]
    reasons += [f"mentions {term!r}" for term in found]
    return HumanCheck(flagged=bool(reasons), reasons=reasons, sentiment=result)


@functools.lru_cache(maxsize=512)
def _pattern(term: str) -> re.Pattern[str]:
    # Whole words, any case, and any run of spaces or hyphens between a phrase's words, with
    # the typographic apostrophe read as the plain one.
    words = [re.escape(word).replace("'", "['’]") for word in term.split()]
    return re.compile(r"\b" + r"[\s-]+".join(words) + r"\b", re.IGNORECASE)
