"""The document index the stages search (ask's answers, decide's support drafts): hybrid when
the optional `embeddings` extra is installed, with the same sentence encoder text triage uses
(opsloop/learning/text.py), else BM25 alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opsloop.knowledge.library import Library, library
from opsloop.learning.embedding_extra import embeddings_installed
from opsloop.store.database import Database


def documents(db: Database) -> Library:
    return library(db, embed=_embed if embeddings_installed() else None)


def _embed(texts: Sequence[str]) -> Any:
    # learning.text loads SciPy and scikit-learn (about 150 MiB): only once something is
    # embedded, not in every server that runs the documents job.
    from opsloop.learning import text

    return text.embed(texts)
