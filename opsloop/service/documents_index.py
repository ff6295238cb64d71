"""The document index the stages search (ask's answers, decide's support drafts): hybrid when
the optional `embeddings` extra is installed, with the same sentence encoder text triage uses
(opsloop/learning/text.py), else BM25 alone."""

from __future__ import annotations

from opsloop.knowledge.library import Library, library
from opsloop.learning import text
from opsloop.store.database import Database


def documents(db: Database) -> Library:
    return library(db, embed=text.embed if text.embeddings_installed() else None)
