"""Knowledge retrieval on OR-ShARC: recall@1/5/10, abstention, citations, indexing time.

    .venv/bin/python bench/knowledge_retrieval.py [--data DIR] [--json OUT] [--skip-answers]

The corpus is OR-ShARC's 651 rule snippets from UK and US government pages, each added as a
Markdown document (its `#` line is a heading); the questions are its dev split (1,105
instances, 273 distinct question-snippet pairs), each with its gold snippet. A question counts
as found at k when the gold snippet is among the first k distinct documents retrieved; recall
is given over instances and over distinct (question, gold) pairs. Methods:

* `plain BM25`: bm25s with its defaults, English stop words, no stemming, the question alone
  (the reference of the data's README: recall@5 about 0.77);
* `default`: OpsLoop's retrieval (opsloop/knowledge/retrieval.py): the documents chunked
  along headings, BM25 over heading and text, stemmed;
* `hybrid`: BM25 fused with all-MiniLM-L6-v2 embeddings by reciprocal rank, when the optional
  `embeddings` extra is installed (otherwise it says so and skips).

Then answers, through the service on SQLite with a loopback OpenAI-compatible stub
(tests/fake_llm.py) that always answers with three sentences citing [1], [2] and [9]:
every citation kept must point at a retrieved passage (precision 1.0 by construction: the
check is in code), and questions the documents cannot answer (a small business's everyday
questions, listed below) must abstain without a model call. Last, the time to extract, chunk
and index 10,000 passages (the snippets repeated).

Prints figures; asserts nothing about time. Exit code 2 when the data folder is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT = ROOT.parent / "shared" / "data"
KS = (1, 5, 10)
INDEX_PASSAGES = 10_000

UNANSWERABLE = [
    "What time does the cafe open on Sundays?",
    "Can I pay with Apple Pay in the shop?",
    "Do you deliver flowers to Paris?",
    "What is the wifi password?",
    "How do I reset my router to factory settings?",
    "Is the pasta gluten free?",
    "Can I bring my dog into the restaurant?",
    "Who won the football match yesterday?",
    "How much is a large pepperoni pizza?",
    "Which colours does the wool jumper come in?",
    "Is there parking near the bakery?",
    "Can I book a table for six on Friday night?",
    "Do you repair bicycle punctures while I wait?",
    "What is the capital of Mongolia?",
    "How long should I boil an egg?",
    "Do you have vegan birthday cakes?",
    "Can I change the engraving on my watch order?",
    "What size should I order if I am between sizes in your jeans?",
    "Is the yoga class suitable for beginners?",
    "Do you ship coffee beans to Norway?",
    "What is the warranty on the espresso machine?",
    "Can I return a candle that I have already lit?",
    "How do I clean a cast iron pan?",
    "Are your eggs free range?",
    "When is the next pottery workshop?",
]
STUB_ANSWER = (
    "The rule in the first passage applies to you [1]. The second passage adds a condition [2]. "
    "A ninth passage says something else entirely [9]."
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT, help="the folder with or_sharc/")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--skip-answers", action="store_true", help="retrieval only")
    args = parser.parse_args()
    folder = args.data / "or_sharc"
    snippets_file = folder / "id2snippet.json"
    dev_file = folder / "open_retrieval_sharc_dev.json"
    if not (snippets_file.is_file() and dev_file.is_file()):
        print(
            f"data not found: {snippets_file} and {dev_file}\n"
            "This benchmark reads OR-ShARC from ../shared/data/or_sharc/ beside the project; "
            "pass --data DIR for another place. Never copy it into the repository.",
            file=sys.stderr,
        )
        return 2
    snippets: dict[str, str] = json.loads(snippets_file.read_text())
    dev = [json.loads(line) for line in dev_file.read_text().splitlines() if line.strip()]
    print(
        f"OR-ShARC: {len(snippets)} snippets, {len(dev)} dev questions, "
        f"{len({(q['question'], q['gold_snippet_id']) for q in dev})} distinct pairs\n"
    )

    figures: dict[str, Any] = {"recall": {}}
    figures["recall"]["plain BM25"] = report("plain BM25", dev, plain_bm25(snippets))

    from opsloop.learning import text

    default, index = opsloop_retrieval(snippets, hybrid=False)
    figures["recall"]["default"] = report("default (stemmed BM25)", dev, default)
    if text.embeddings_installed():
        hybrid, _ = opsloop_retrieval(snippets, hybrid=True)
        figures["recall"]["hybrid"] = report("hybrid (BM25 + MiniLM, RRF)", dev, hybrid)
    else:
        print(
            "hybrid: skipped, the `embeddings` extra is not installed "
            "(pip install 'opsloop[embeddings]' with a CPU torch)\n"
        )

    figures["abstention"] = abstention(index, dev)
    if not args.skip_answers:
        figures["answers"] = answers_with_stub(snippets, dev)
    figures["indexing"] = indexing_time(snippets)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


# --- retrieval --------------------------------------------------------------------------------

Retriever = Callable[[str, int], list[str]]
"""A question and k -> the ids of the first k distinct snippets."""


def plain_bm25(snippets: dict[str, str]) -> Retriever:
    import bm25s

    ids = list(snippets)
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize([snippets[i] for i in ids], stopwords="en", show_progress=False),
        show_progress=False,
    )

    def search(question: str, k: int) -> list[str]:
        tokens = bm25s.tokenize([question], stopwords="en", show_progress=False)
        found, _ = retriever.retrieve(tokens, k=k, show_progress=False)
        return [ids[int(n)] for n in found[0]]

    return search


def opsloop_retrieval(snippets: dict[str, str], *, hybrid: bool) -> tuple[Retriever, Any]:
    from opsloop.knowledge.retrieval import PassageIndex
    from opsloop.learning import text

    index = PassageIndex(passages_of(snippets), embed=text.embed if hybrid else None)

    def search(question: str, k: int) -> list[str]:
        documents: list[str] = []
        for hit in index.search(question, limit=k * 4):
            name = hit.passage.document_name
            if name not in documents:
                documents.append(name)
        return documents[:k]

    return search, index


def passages_of(snippets: dict[str, str], copies: int = 1) -> list[Any]:
    from opsloop.knowledge.chunking import chunk
    from opsloop.knowledge.extraction import extract
    from opsloop.knowledge.retrieval import IndexedPassage

    passages = []
    for copy in range(copies):
        for snippet_id, text in snippets.items():
            for piece in chunk(extract(snippet_id, text.encode(), "text/markdown")):
                passages.append(
                    IndexedPassage(
                        passage_id=len(passages) + 1,
                        document_id=int(snippet_id) + copy * len(snippets),
                        document_name=snippet_id,
                        collection="default",
                        ordinal=piece.ordinal,
                        heading=piece.heading,
                        text=piece.text,
                    )
                )
    return passages


def report(name: str, dev: list[dict[str, Any]], search: Retriever) -> dict[str, Any]:
    started = time.perf_counter()
    found = {q["question"]: search(q["question"], max(KS)) for q in dev}
    elapsed = time.perf_counter() - started
    pairs = {(q["question"], q["gold_snippet_id"]) for q in dev}
    result: dict[str, Any] = {}
    line = [f"{name:32}"]
    for k in KS:
        instances = sum(q["gold_snippet_id"] in found[q["question"]][:k] for q in dev) / len(dev)
        distinct = sum(gold in found[question][:k] for question, gold in pairs) / len(pairs)
        result[f"recall@{k}"] = {"instances": round(instances, 3), "pairs": round(distinct, 3)}
        line.append(f"R@{k} {instances:.3f} / {distinct:.3f}")
    result["ms_per_question"] = round(elapsed * 1000 / len(found), 2)
    print("   ".join(line) + f"   ({result['ms_per_question']} ms a question)")
    return result


# --- abstention, answers ----------------------------------------------------------------------


def abstention(index: Any, dev: list[dict[str, Any]]) -> dict[str, Any]:
    """How many answerable questions clear the coverage bar, and how many of the everyday ones
    do not, at the bar in force and around it."""
    from opsloop.knowledge import answers

    questions = sorted({q["question"] for q in dev})
    best_dev = [max((h.coverage for h in index.search(q, limit=5)), default=0.0) for q in questions]
    best_out = [
        max((h.coverage for h in index.search(q, limit=5)), default=0.0) for q in UNANSWERABLE
    ]
    print(f"\nabstention by coverage (the bar in force: {answers.MIN_COVERAGE})")
    sweep = {}
    for bar in (0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
        answered = sum(c >= bar for c in best_dev) / len(best_dev)
        abstained = sum(c < bar for c in best_out) / len(best_out)
        sweep[str(bar)] = {
            "dev_answered": round(answered, 3),
            "unanswerable_abstained": round(abstained, 3),
        }
        mark = "  <- in force" if bar == answers.MIN_COVERAGE else ""
        print(
            f"  bar {bar:.2f}: {answered:.1%} of {len(best_dev)} distinct dev questions answered, "
            f"{abstained:.1%} of {len(best_out)} everyday questions abstained{mark}"
        )
    return {"bar": answers.MIN_COVERAGE, "sweep": sweep}


def answers_with_stub(snippets: dict[str, str], dev: list[dict[str, Any]]) -> dict[str, Any]:
    from opsloop.service import OpsLoop
    from opsloop.settings import Settings
    from tests.fake_llm import Answer, FakeOpenAI

    fake = FakeOpenAI(default=Answer(content=STUB_ANSWER))
    fake.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(
                data_dir=Path(folder),
                llm={"url": fake.url, "model": "stub", "max_retries": 0, "cache": False},
            )
            ops = OpsLoop(settings)
            ops.prepare()
            try:
                started = time.perf_counter()
                for snippet_id, text in snippets.items():
                    ops.ask.add_document(
                        name=f"{snippet_id}.md", content=text.encode(), actor="bench"
                    )
                added = time.perf_counter() - started
                questions = sorted({q["question"] for q in dev})
                checked = cited = valid = abstained_dev = kept_nine = 0
                for question in questions:
                    answer = ops.ask.answer_question(question)
                    retrieved = {(p["document_id"], p["ordinal"]) for p in answer["passages"]}
                    checked += 1
                    abstained_dev += answer["abstained"]
                    kept_nine += "ninth passage" in answer["text"]
                    for citation in answer["citations"]:
                        cited += 1
                        valid += (citation["document_id"], citation["ordinal"]) in retrieved
                calls_before = len(fake.requests)
                abstained_out = sum(
                    ops.ask.answer_question(question)["abstained"] for question in UNANSWERABLE
                )
                calls_out = len(fake.requests) - calls_before
            finally:
                ops.close()
    finally:
        fake.stop()
    precision = valid / cited if cited else 1.0
    print(f"\nanswers with the loopback stub ({len(snippets)} documents added in {added:.1f} s):")
    print(
        f"  {checked} distinct dev questions: {checked - abstained_dev} answered, "
        f"{cited} citations kept, {valid} of them to a retrieved passage "
        f"(precision {precision:.3f}); the stub's sentence citing [9] kept {kept_nine} times"
    )
    print(
        f"  {len(UNANSWERABLE)} everyday questions: {abstained_out} abstained, "
        f"{calls_out} model calls for them"
    )
    return {
        "dev_questions": checked,
        "dev_answered": checked - abstained_dev,
        "citations": cited,
        "citation_precision": round(precision, 3),
        "uncited_sentences_kept": kept_nine,
        "unanswerable": len(UNANSWERABLE),
        "unanswerable_abstained": abstained_out,
        "model_calls_for_unanswerable": calls_out,
        "seconds_to_add_documents": round(added, 2),
    }


def indexing_time(snippets: dict[str, str]) -> dict[str, Any]:
    from opsloop.knowledge.retrieval import PassageIndex

    copies = -(-INDEX_PASSAGES // len(snippets))
    started = time.perf_counter()
    passages = passages_of(snippets, copies)[:INDEX_PASSAGES]
    chunked = time.perf_counter() - started
    started = time.perf_counter()
    index = PassageIndex(passages)
    built = time.perf_counter() - started
    started = time.perf_counter()
    index.search("Can I claim VAT back on goods I bought before registering?")
    searched = time.perf_counter() - started
    print(
        f"\nindexing {len(passages):,} passages: extract and chunk {chunked:.2f} s, "
        f"BM25 index {built:.2f} s; one search {searched * 1000:.1f} ms"
    )
    return {
        "passages": len(passages),
        "chunk_seconds": round(chunked, 2),
        "index_seconds": round(built, 2),
        "search_ms": round(searched * 1000, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
