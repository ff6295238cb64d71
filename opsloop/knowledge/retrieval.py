"""Finding the passages that answer a question.

The default is BM25 (bm25s) over the passage's heading path and text, with English stop words
dropped and words stemmed (PyStemmer's Snowball English), so "refunds" finds "refund". When
the optional `embeddings` extra is installed, passages are also embedded (all-MiniLM-L6-v2,
the encoder of opsloop/learning/text.py, handed in by the service) and the two rankings are
fused by reciprocal rank: a passage that either finds near the top comes out near the top.

Each hit carries its BM25 score and its `coverage`: the share of the question's words (weighted
by how rare they are in the documents, a word the documents never use counting as much as their
rarest one)
that the passage contains. Coverage is comparable across questions and collections, where a
raw BM25 score is not; an answer abstains when the best hit's coverage is below a threshold
(opsloop/knowledge/answers.py).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIN_SEMANTIC = 0.35
"""Cosine similarity below which an embedding match is no match (MiniLM: unrelated sentences
score 0–0.3)."""
RRF_K = 60
"""Reciprocal-rank fusion's constant (Cormack et al. 2009): 1 / (60 + rank)."""
FUSION_DEPTH = 50
"""How many of each ranking the fusion looks at."""


@dataclass(frozen=True, slots=True)
class IndexedPassage:
    passage_id: int
    document_id: int
    document_name: str
    collection: str
    ordinal: int
    heading: str
    text: str


@dataclass(frozen=True, slots=True)
class Hit:
    passage: IndexedPassage
    score: float
    """BM25, or the fused reciprocal-rank score in hybrid retrieval; higher is better."""
    coverage: float
    """0 to 1: the share of the question's weighted words found in the passage."""
    similarity: float | None = None
    """Cosine similarity of the question's and the passage's embeddings (hybrid retrieval);
    None without embeddings."""


Embedder = Callable[[Sequence[str]], np.ndarray]
"""Texts to unit-length vectors, one row each (opsloop/learning/text.py:embed)."""


@functools.cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(
    texts: Sequence[str], *, stem: bool = True, stopwords: str | list[str] = "en"
) -> list[list[str]]:
    """Lower-cased words of two or more characters, English stop words out, stemmed."""
    import bm25s

    found = bm25s.tokenize(
        list(texts),
        stopwords=stopwords,
        stemmer=_stemmer() if stem else None,
        return_ids=False,
        show_progress=False,
    )
    return [list(words) for words in found]


@functools.cache
def _question_stopwords() -> list[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return list(STOPWORDS_EN_PLUS)


def indexed_text(passage: IndexedPassage) -> str:
    """What BM25 reads of a passage: its heading path and its text (a question often names the
    heading's words: "What is the refund policy?")."""
    return f"{passage.heading}\n{passage.text}" if passage.heading else passage.text


@dataclass
class PassageIndex:
    """An in-memory index of passages, built once and asked many times. Thread-safe to read."""

    passages: list[IndexedPassage]
    embed: Embedder | None = None
    """When given, the passages are embedded too and the rankings fused (hybrid retrieval)."""
    _bm25: Any = field(init=False, repr=False, default=None)
    _words: list[frozenset[str]] = field(init=False, repr=False, default_factory=list)
    _idf: dict[str, float] = field(init=False, repr=False, default_factory=dict)
    _max_idf: float = field(init=False, repr=False, default=1.0)
    _vectors: Any = field(init=False, repr=False, default=None)
    _collections: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import bm25s

        # bm25s logs every index it builds at DEBUG on its own handler: not for our users.
        logging.getLogger("bm25s").setLevel(logging.WARNING)

        tokens = tokenize([indexed_text(p) for p in self.passages])
        self._words = [frozenset(words) for words in tokens]
        counts: dict[str, int] = {}
        for words in self._words:
            for word in words:
                counts[word] = counts.get(word, 0) + 1
        total = len(self.passages)
        self._idf = {word: _idf(n, total) for word, n in counts.items()}
        # A word the documents never use weighs as much as their rarest one.
        self._max_idf = max(self._idf.values(), default=1.0)
        self._collections = np.array([p.collection for p in self.passages], dtype=object)
        if self.passages:
            self._bm25 = bm25s.BM25()
            self._bm25.index(tokens, show_progress=False)
        if self.embed is not None and self.passages:
            self._vectors = self.embed([indexed_text(p) for p in self.passages])

    def __len__(self) -> int:
        return len(self.passages)

    def search(self, query: str, *, collection: str | None = None, limit: int = 5) -> list[Hit]:
        """The best `limit` passages for `query`, best first; only those with a score above
        zero (none when no word of the question is in the documents and no embedding)."""
        if not self.passages or limit <= 0:
            return []
        [words] = tokenize([query])
        # Coverage leaves out the words of any question (how, can, I, my, ...) too: a longer
        # list than BM25's, which ranks better with them in.
        [content] = tokenize([query], stopwords=_question_stopwords())
        mask = (
            (self._collections == collection).astype(np.float32)
            if collection is not None
            else np.ones(len(self.passages), dtype=np.float32)
        )
        unique = list(dict.fromkeys(words))
        lexical = self._bm25.get_scores(unique) * mask if unique else np.zeros(len(mask))
        ranked = _top(lexical, FUSION_DEPTH if self._vectors is not None else limit)
        similarity: np.ndarray | None = None
        if self._vectors is None or self.embed is None:
            scores = {int(i): float(lexical[i]) for i in ranked}
        else:
            similarity = self._vectors @ self.embed([query])[0]
            masked = np.where(mask > 0, similarity, -np.inf)
            semantic = _top(masked, FUSION_DEPTH, keep=lambda s: s > -np.inf)
            scores = _fuse([ranked, semantic])
        ranking = sorted(scores, key=lambda i: (-scores[i], i))
        if similarity is not None:
            # A passage sharing no word with the question counts only when close in meaning:
            # otherwise every question would find some.
            ranking = [i for i in ranking if lexical[i] > 0 or similarity[i] >= MIN_SEMANTIC]
        best = ranking[:limit]
        return [
            Hit(
                self.passages[i],
                round(scores[i], 6),
                self._coverage(content, i),
                None if similarity is None else round(float(similarity[i]), 4),
            )
            for i in best
        ]

    def _coverage(self, words: list[str], index: int) -> float:
        words = list(dict.fromkeys(words))
        if not words:
            return 0.0
        weights = [self._idf.get(word, self._max_idf) for word in words]
        found = sum(w for word, w in zip(words, weights, strict=True) if word in self._words[index])
        return round(found / sum(weights), 4)


def _idf(containing: int, total: int) -> float:
    return math.log(1 + (total - containing + 0.5) / (containing + 0.5))


def _top(scores: np.ndarray, count: int, keep: Any = None) -> list[int]:
    """Indexes of the `count` highest scores above zero (or passing `keep`), best first."""
    if count <= 0 or len(scores) == 0:
        return []
    count = min(count, len(scores))
    candidates = np.argpartition(-scores, count - 1)[:count]
    order = sorted(candidates.tolist(), key=lambda i: (-float(scores[i]), i))
    test = keep or (lambda s: s > 0)
    return [int(i) for i in order if test(float(scores[i]))]


def _fuse(rankings: list[list[int]]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, index in enumerate(ranking, start=1):
            fused[index] = fused.get(index, 0.0) + 1.0 / (RRF_K + rank)
    return fused
