"""What the ask stage shows of documents and of answers drawn from them (the documents pages,
`/api/documents`, `opsloop docs`, and the operations chat)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict

AddStatus = Literal["created", "updated", "unchanged"]


class DocumentAdded(TypedDict):
    id: int
    name: str
    collection: str
    version: int
    status: AddStatus
    """created: a new name; updated: a new version; unchanged: the same bytes as the current
    version (nothing stored)."""
    passages: int


class DocumentSummary(TypedDict):
    id: int
    name: str
    collection: str
    version: int
    media_type: str
    source: str
    size: int
    """Bytes, as added."""
    passages: int
    updated_at: datetime
    updated_by: str


class Passage(TypedDict):
    ordinal: int
    heading: str
    text: str
    link: str
    """`/documents/{id}#p{ordinal}`"""


class DocumentDetail(DocumentSummary):
    content_hash: str
    created_at: datetime
    passage_list: list[Passage]


class PassageHit(TypedDict):
    document_id: int
    document_name: str
    collection: str
    ordinal: int
    heading: str
    text: str
    score: float
    """BM25 (or the fused rank score in hybrid retrieval); higher is better."""
    coverage: float
    """The share of the question's words (weighted by rarity) in the passage, 0 to 1."""
    link: str


class Answer(TypedDict):
    question: str
    text: str
    """Sentences each ending with [n], n counting from 1 in `citations`; empty on abstention."""
    abstained: bool
    citations: list[PassageHit]
    """The passages the answer cites, in the order of its [n] markers; all were retrieved."""
    written_by: Literal["extract", "llm"]
    """`llm` when a language model was asked (its answer checked, or its abstention); `extract`
    for the best passages without one, and for an abstention retrieval decided alone."""
    passages: list[PassageHit]
    """Every passage retrieved for the question, best first."""
    reason: str
    """Why it abstained, or which model wrote it; for people, not for code."""


class SyncReport(TypedDict):
    """`sync_folder`: what changed in the collection."""

    collection: str
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    failed: list[str]
    """`name: reason` of each file that could not be read."""
