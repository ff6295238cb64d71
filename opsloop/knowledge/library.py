"""The retrieval index of a database's documents, built in this process from the stored
passages and kept until the documents change.

Every search first reads a stamp (counts and largest ids of documents and passages, one cheap
query): an add, a new version or a removal in any process (the CLI, a second server, a folder
sync) changes it, and the next search rebuilds the index. Building is BM25 over the passages
(10,000 in a few seconds, docs/performance.md#knowledge-retrieval); given an `embed` function
(the service passes the text models' sentence encoder when the `embeddings` extra is
installed), the passages are embedded too (hybrid retrieval).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref

from opsloop.knowledge.retrieval import Embedder, Hit, IndexedPassage, PassageIndex
from opsloop.store import documents as document_store
from opsloop.store.database import Database

log = logging.getLogger(__name__)


class Library:
    """One database's documents as a search index."""

    def __init__(self, db: Database, *, embed: Embedder | None = None) -> None:
        self.db = db
        self.embed = embed
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._index = PassageIndex([])

    def index(self) -> PassageIndex:
        """The index as the documents stand now."""
        with self.db.read() as conn:
            stamp = document_store.stamp(conn)
        if stamp == self._stamp:
            return self._index
        with self._lock:
            if stamp == self._stamp:
                return self._index
            started = time.perf_counter()
            with self.db.read() as conn:
                stamp = document_store.stamp(conn)
                rows = document_store.all_passages(conn)
            passages = [
                IndexedPassage(
                    passage_id=row.id,
                    document_id=row.document_id,
                    document_name=row.document_name,
                    collection=row.collection,
                    ordinal=row.ordinal,
                    heading=row.heading,
                    text=row.text,
                )
                for row in rows
            ]
            self._index = PassageIndex(passages, embed=self.embed)
            self._stamp = stamp
            log.info(
                "indexed %d passages in %.0f ms%s",
                len(passages),
                (time.perf_counter() - started) * 1000,
                " (hybrid)" if self.embed is not None else "",
                extra={"action": "documents.indexed"},
            )
            return self._index

    def search(self, query: str, *, collection: str | None = None, limit: int = 5) -> list[Hit]:
        return self.index().search(query, collection=collection, limit=limit)

    def is_empty(self) -> bool:
        return len(self.index()) == 0


_LIBRARIES: weakref.WeakKeyDictionary[Database, Library] = weakref.WeakKeyDictionary()
_LIBRARIES_LOCK = threading.Lock()


def library(db: Database, *, embed: Embedder | None = None) -> Library:
    """The one `Library` of this database in this process (`embed` is taken when it is
    made)."""
    with _LIBRARIES_LOCK:
        found = _LIBRARIES.get(db)
        if found is None:
            found = _LIBRARIES[db] = Library(db, embed=embed)
        return found
