"""Retrieval (BM25 with stemming, collections, coverage) and the citation checks in code."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from opsloop.knowledge import answers
from opsloop.knowledge.chunking import chunk
from opsloop.knowledge.extraction import extract
from opsloop.knowledge.retrieval import Hit, IndexedPassage, PassageIndex
from opsloop.learning import text as embeddings
from tests.knowledge.files import HOURS_HTML, POLICY_MD


def index() -> PassageIndex:
    passages: list[IndexedPassage] = []
    for document_id, (name, text, kind, collection) in enumerate(
        [
            ("policy.md", POLICY_MD, "text/markdown", "support"),
            ("hours.html", HOURS_HTML, "text/html", "shop"),
        ],
        start=1,
    ):
        for c in chunk(extract(name, text.encode(), kind)):  # type: ignore[arg-type]
            passages.append(
                IndexedPassage(
                    len(passages) + 1, document_id, name, collection, c.ordinal, c.heading, c.text
                )
            )
    return PassageIndex(passages)


def test_stemming_finds_a_passage_worded_differently() -> None:
    [best, *_] = index().search("Refunds for damaged items?")
    assert best.passage.heading.endswith("Damaged goods")
    assert best.coverage == 1.0


def test_the_heading_is_searched_with_the_text() -> None:
    [best, *_] = index().search("bank holidays")
    assert best.passage.document_name == "hours.html"
    assert "11 am" in best.passage.text


def test_a_collection_filter_keeps_to_that_collection() -> None:
    found = index().search("shop open days", collection="support")
    assert found
    assert {hit.passage.collection for hit in found} == {"support"}


def test_a_question_about_nothing_in_the_documents_finds_nothing() -> None:
    assert index().search("What is the capital of Mongolia?") == []
    assert PassageIndex([]).search("anything") == []


def test_passages_covering_too_little_are_not_answered_from() -> None:
    hits = index().search("Do you sell gift vouchers for a tour of Leeds?")
    assert hits, "Leeds is in the shipping passage"
    assert answers.good_enough(hits) == []


def test_only_sentences_citing_a_shown_passage_are_kept() -> None:
    checked = answers.check_citations(
        "Damaged items are refunded in full [2]. We also give vouchers [7]. "
        "Thanks for asking! Returns take 30 days [1][9].",
        shown=2,
    )
    assert checked.text == "Damaged items are refunded in full [1]. Returns take 30 days [2]."
    assert checked.cited == [1, 0], "renumbered in order of first use"
    assert checked.dropped == 2


def test_nothing_cited_or_the_abstain_phrase_means_abstain() -> None:
    assert answers.check_citations("We are open every day.", shown=3).abstained
    assert answers.check_citations("The documents don't say.", shown=3).abstained
    assert answers.check_citations("the documents don’t say", shown=3).abstained


def test_the_extractive_answer_quotes_the_best_passages_with_their_headings() -> None:
    hits = index().search("damaged refund")
    checked = answers.extractive(hits)
    first = checked.text.splitlines()[0]
    assert first.startswith("policy.md › Returns › Damaged goods: If an item arrives damaged")
    assert first.endswith("[1]")
    assert checked.cited == list(range(len(checked.text.splitlines())))


def test_a_draft_keeps_its_sentences_but_loses_markers_of_passages_not_shown() -> None:
    text, cited = answers.cited_markers("Hi Sam,\nWe refund damaged kettles [2]. See [5].", 2)
    assert text == "Hi Sam,\nWe refund damaged kettles [2]. See."
    assert cited == [2]
    assert answers.without_markers(text) == "Hi Sam,\nWe refund damaged kettles. See."


def test_hits_carry_scores_best_first() -> None:
    hits: list[Hit] = index().search("shipping delivery days UK")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].passage.heading == "Shipping"


def test_reciprocal_rank_fusion_rewards_what_both_rankings_put_high() -> None:
    from opsloop.knowledge.retrieval import _fuse

    fused = _fuse([[3, 1, 2], [1, 4]])
    assert sorted(fused, key=lambda i: -fused[i]) == [1, 3, 4, 2]


def test_embedding_gives_unit_vectors_or_says_how_to_install_the_extra() -> None:
    """Either way a user learns something: with the extra, unit-length vectors; without it,
    the command that installs it."""
    if embeddings.embeddings_installed():
        vectors = embeddings.embed(["a question", "another"])
        assert vectors.shape[0] == 2
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        return
    with pytest.raises(embeddings.EmbeddingsUnavailable, match=r"opsloop\[embeddings\]"):
        embeddings.embed(["a question"])


CONCEPTS = (("return", "back", "refund"), ("ship", "deliver", "arriv"), ("open", "hour", "close"))


def concept_vectors(texts: Sequence[str]) -> np.ndarray:
    """A stand-in for the sentence-embedding model at its boundary: one dimension per concept
    (words sharing a stem with it), plus one for none; unit length."""
    rows = []
    for text in texts:
        words = text.lower().replace("?", " ").replace(".", " ").split()
        row = [sum(any(w.startswith(s) for s in concept) for w in words) for concept in CONCEPTS]
        row.append(0 if any(row) else 1)
        vector = np.array(row, dtype=np.float32)
        rows.append(vector / np.linalg.norm(vector))
    return np.vstack(rows)


def test_hybrid_retrieval_finds_a_passage_sharing_no_word_with_the_question() -> None:
    passages = index().passages
    assert PassageIndex(passages).search("Can I give it back?") == []
    hybrid = PassageIndex(passages, embed=concept_vectors)
    hits = hybrid.search("Can I give it back?", limit=3)
    assert {h.passage.heading for h in hits[:2]} == {"Returns", "Returns › Damaged goods"}
    assert all(h.coverage == 0.0 for h in hits[:2])
    assert all((h.similarity or 0) > answers.MIN_SIMILARITY for h in hits[:2])
    assert answers.good_enough(hits) == hits[:2], "close in meaning is good enough"
    assert [h.passage.heading for h in hybrid.search("shipping days", limit=1)] == ["Shipping"]
