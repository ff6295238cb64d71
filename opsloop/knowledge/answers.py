"""Answers from passages, checked in code: a model's answer is trusted for its wording only.

- Retrieval first: when the best passage covers too little of the question (`MIN_COVERAGE`),
  the answer is the abstention, and no model is asked.
- A model is shown the retrieved passages numbered [1]..[n] and asked for short sentences,
  each ending with the [n] of the passage it comes from, or exactly `ABSTAIN`.
- `check_citations` keeps only sentences citing at least one passage that was shown; a marker
  for a passage that was not shown ([7] of 5) is removed, and a sentence left with none is
  dropped. Nothing left means abstain. The kept markers are renumbered in order of first use,
  so [1] is the first passage of the answer's citation list.
- With no model: the extractive answer, the best passages themselves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from opsloop.knowledge.retrieval import Hit

ABSTAIN = "The documents don't say."
MIN_COVERAGE = 0.4
"""The least share of the question's (rarity-weighted) words the best passage must hold for an
answer to be tried; below it, abstain. Measured on OR-ShARC (bench/knowledge_retrieval.py)."""
MIN_SIMILARITY = 0.5
"""In hybrid retrieval, a passage whose embedding is at least this close to the question's
(cosine, all-MiniLM-L6-v2) is good enough too, whatever its words: "Can I give it back?" and
a passage about returns share none. Not yet measured on OR-ShARC (the extra was not installed
where the benchmark ran); 0.5 is where MiniLM's related sentence pairs usually begin."""
EXTRACT_PASSAGES = 3
EXTRACT_WORDS = 60

_MARKER = re.compile(r"\s*\[(\d{1,3})\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?!\[)|(?<=\])\s+(?=[A-Z\"“(])|\n+")


@dataclass(frozen=True, slots=True)
class Checked:
    text: str
    """The kept sentences, their markers renumbered; empty when nothing was kept."""
    cited: list[int]
    """Indexes (from 0) into the passages that were shown, in the order of the new numbers."""
    dropped: int
    """Sentences dropped for citing no passage that was shown."""

    @property
    def abstained(self) -> bool:
        return not self.text


def good_enough(hits: Sequence[Hit], *, min_coverage: float = MIN_COVERAGE) -> list[Hit]:
    """The hits worth answering from: none when no hit covers enough of the question (nor, in
    hybrid retrieval, is close enough in meaning): then the answer abstains. Else the hits
    that cover at least half as much as the best, or are close enough in meaning."""
    best = max((hit.coverage for hit in hits), default=0.0)
    lexical = best >= min_coverage
    return [
        hit
        for hit in hits
        if (lexical and hit.coverage >= min(min_coverage, best / 2)) or _close(hit)
    ]


def _close(hit: Hit) -> bool:
    return hit.similarity is not None and hit.similarity >= MIN_SIMILARITY


def is_abstention(text: str) -> bool:
    """Did the model answer with the abstain phrase (give or take case and punctuation)?"""
    return _plain(text) == _plain(ABSTAIN) or _plain(text).startswith(_plain(ABSTAIN))


def check_citations(text: str, shown: int) -> Checked:
    """Keep the sentences of `text` that cite at least one of the `shown` passages ([1]..[n])."""
    if is_abstention(text):
        return Checked("", [], 0)
    numbers: dict[int, int] = {}
    kept: list[str] = []
    dropped = 0
    for sentence in _sentences(text):
        valid = [int(n) for n in _MARKER.findall(sentence) if 1 <= int(n) <= shown]
        if not valid:
            dropped += 1
            continue
        for n in valid:
            numbers.setdefault(n, len(numbers) + 1)

        def renumber(match: re.Match[str]) -> str:
            n = int(match.group(1))
            return f" [{numbers[n]}]" if n in numbers and 1 <= n <= shown else ""

        kept.append(_tidy(_MARKER.sub(renumber, sentence)))
    return Checked(" ".join(kept), [n - 1 for n in numbers], dropped)


def extractive(hits: Sequence[Hit]) -> Checked:
    """The answer without a model: the opening of each of the best passages, cited."""
    chosen = list(hits)[:EXTRACT_PASSAGES]
    lines = []
    for number, hit in enumerate(chosen, start=1):
        where = hit.passage.document_name
        if hit.passage.heading:
            where += f" › {hit.passage.heading}"
        lines.append(f"{where}: {clip_words(hit.passage.text, EXTRACT_WORDS)} [{number}]")
    return Checked("\n".join(lines), list(range(len(chosen))), 0)


def numbered(hits: Sequence[Hit]) -> list[dict[str, str | int]]:
    """The passages as a model is shown them: number, document, heading, text."""
    return [
        {
            "n": number,
            "document": hit.passage.document_name,
            "heading": hit.passage.heading,
            "text": hit.passage.text,
        }
        for number, hit in enumerate(hits, start=1)
    ]


def clip_words(text: str, limit: int) -> str:
    words = text.split()
    return " ".join(words) if len(words) <= limit else " ".join(words[:limit]) + " …"


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text.strip()) if part and part.strip()]


def _tidy(sentence: str) -> str:
    sentence = re.sub(r"\s+([.!?,;:])", r"\1", sentence.strip())
    return re.sub(r"\s{2,}", " ", sentence)


def _plain(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower().replace("’", "'").replace("'", "")).strip()


def cited_markers(text: str, shown: int) -> tuple[str, list[int]]:
    """For a draft a person edits (not an answer): keep every sentence, remove the markers of
    passages that were not shown; the kept text and the numbers it cites, in order of use."""
    cited: list[int] = []

    def keep(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if 1 <= n <= shown:
            if n not in cited:
                cited.append(n)
            return f" [{n}]"
        return ""

    return _MARKER.sub(keep, text).strip(), cited


def without_markers(text: str) -> str:
    """The text with its [n] markers taken out: what is sent to a customer."""
    lines = [re.sub(r"[ \t]{2,}", " ", _MARKER.sub("", line)).rstrip() for line in text.split("\n")]
    return re.sub(r" +([.!?,;:])", r"\1", "\n".join(lines)).strip()
