"""Documents and answers with citations: add (a new version when the name is taken), list,
show, remove, sync a folder, search, answer.

An answer (`answer_question`) is drawn only from the passages retrieved for the question:
- when the best passage covers too little of the question, it abstains ("The documents don't
  say.") and no model is asked;
- with a language model configured, the model writes a short answer citing [n] passages, and
  `opsloop.knowledge.answers.check_citations` keeps only the sentences that cite a passage it
  was shown; with nothing left, it abstains. A model that fails gives the extractive answer;
- with no model, the extractive answer: the best passages' opening words, with their
  headings and links.
Each add and removal is audited (`document.created`, `document.updated`, `document.removed`).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from opsloop.core.errors import InvalidInput, NotFound
from opsloop.knowledge import answers
from opsloop.knowledge.chunking import chunk
from opsloop.knowledge.extraction import SUFFIXES, UnreadableDocument, extract, media_type_of
from opsloop.knowledge.retrieval import Hit
from opsloop.reasoning.llm_client import LLMError, LLMNotConfigured
from opsloop.service.ask.document_views import (
    AddStatus,
    Answer,
    DocumentAdded,
    DocumentDetail,
    DocumentSummary,
    PassageHit,
    SyncReport,
)
from opsloop.service.context import Context
from opsloop.service.decide.llm_setup import is_configured, language_model
from opsloop.service.documents_index import documents
from opsloop.store import audit
from opsloop.store import documents as document_store
from opsloop.store.documents import DocumentRow

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
MAX_NAME = 500
MAX_COLLECTION = 100
ANSWER_PASSAGES = 5
MAX_QUESTION = 2000


def add_document(
    ctx: Context,
    *,
    name: str,
    content: bytes,
    media_type: str | None = None,
    collection: str = "default",
    source: str = "upload",
    actor: str,
) -> DocumentAdded:
    """Store a document's passages: a new document, or the next version of the one with this
    name in the collection. The same bytes as the current version change nothing."""
    name = _name(name)
    collection = _collection(collection)
    if len(content) > MAX_DOCUMENT_BYTES:
        raise InvalidInput.single(
            "content", f"{name}: {len(content):,} bytes, over the limit of {MAX_DOCUMENT_BYTES:,}"
        )
    kind = media_type_of(name, media_type)
    digest = hashlib.sha256(content).hexdigest()
    with ctx.db.read() as conn:
        current = document_store.find(conn, collection, name)
    if current is not None and current.content_hash == digest:
        return _added(current, "unchanged")
    chunks = chunk(extract(name, content, kind))
    rows = [(c.ordinal, c.heading, c.text) for c in chunks]
    facts = {"content_hash": digest, "media_type": kind, "source": source[:200]}
    try:
        return _store(ctx, collection, name, len(content), facts, rows, actor)
    except IntegrityError:  # another process added the same name a moment ago: a new version
        return _store(ctx, collection, name, len(content), facts, rows, actor)


def _store(
    ctx: Context,
    collection: str,
    name: str,
    size: int,
    facts: dict[str, str],
    rows: list[tuple[int, str, str]],
    actor: str,
) -> DocumentAdded:
    now = ctx.clock()
    status: AddStatus
    with ctx.db.transaction() as tx:
        current = document_store.find(tx.conn, collection, name)
        if current is not None and current.content_hash == facts["content_hash"]:
            return _added(current, "unchanged")
        if current is None:
            document_id = document_store.add(
                tx.conn,
                collection=collection,
                name=name,
                size=size,
                now=now,
                actor=actor,
                **facts,
            )
            version, status = 1, "created"
        else:
            document_id = current.id
            version = document_store.new_version(
                tx.conn, document_id, size=size, now=now, actor=actor, **facts
            )
            status = "updated"
        document_store.replace_passages(tx.conn, document_id, rows)
        audit.record(
            tx.conn,
            now,
            actor,
            f"document.{status}",
            document_id,
            {
                "name": name,
                "collection": collection,
                "version": version,
                "content_hash": facts["content_hash"],
                "passages": len(rows),
                "source": facts["source"],
            },
        )
    log.info(
        "document %s/%s is now version %d (%d passages)",
        collection,
        name,
        version,
        len(rows),
        extra={"action": f"document.{status}", "document_id": document_id},
    )
    return {
        "id": document_id,
        "name": name,
        "collection": collection,
        "version": version,
        "status": status,
        "passages": len(rows),
    }


def list_documents(ctx: Context, *, collection: str | None = None) -> list[DocumentSummary]:
    with ctx.db.read() as conn:
        return [_summary(row) for row in document_store.list_all(conn, collection)]


def list_collections(ctx: Context) -> list[str]:
    with ctx.db.read() as conn:
        return document_store.collections(conn)


def get_document(ctx: Context, document_id: int) -> DocumentDetail:
    with ctx.db.read() as conn:
        row = document_store.get(conn, document_id)
        if row is None:
            raise NotFound(f"no document {document_id}")
        passages = document_store.passages_of(conn, document_id)
    return {
        **_summary(row),
        "content_hash": row.content_hash,
        "created_at": row.created_at,
        "passage_list": [
            {
                "ordinal": p.ordinal,
                "heading": p.heading,
                "text": p.text,
                "link": link(document_id, p.ordinal),
            }
            for p in passages
        ],
    }


def delete_document(ctx: Context, document_id: int, *, actor: str) -> None:
    """Remove the document and every passage of it; searches stop finding it at once."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        row = document_store.get(tx.conn, document_id)
        if row is None or not document_store.remove(tx.conn, document_id):
            raise NotFound(f"no document {document_id}")
        audit.record(
            tx.conn,
            now,
            actor,
            "document.removed",
            document_id,
            {"name": row.name, "collection": row.collection, "version": row.version},
        )
    log.info(
        "document %s/%s removed",
        row.collection,
        row.name,
        extra={"action": "document.removed", "document_id": document_id},
    )


FOLDER_COLLECTION = "folder"
"""The collection the documents folder (`documents_dir`) is kept in."""


def sync_documents_folder(ctx: Context) -> SyncReport | None:
    """`sync_folder` of the documents folder, when it exists (the periodic job)."""
    folder = ctx.settings.resolved_documents_dir
    if not folder.is_dir():
        return None
    return sync_folder(ctx, folder, collection=FOLDER_COLLECTION, actor="documents folder")


def sync_folder(
    ctx: Context, folder: Path, *, collection: str = "default", actor: str
) -> SyncReport:
    """Make the collection hold what the folder holds: add new and changed files (Markdown,
    HTML, PDF, text, in sub-folders too, named by their path in the folder), and remove every
    document of the collection that has no file there (so a synced folder has a collection of
    its own). A file that cannot be read is reported and left out (a document of that name
    already there stays); the others go on."""
    collection = _collection(collection)
    if not folder.is_dir():
        raise InvalidInput.single("folder", f"{folder} is not a folder")
    report: SyncReport = {
        "collection": collection,
        "added": [],
        "updated": [],
        "unchanged": [],
        "removed": [],
        "failed": [],
    }
    seen: set[str] = set()
    for path in files_in(folder):
        name = path.relative_to(folder).as_posix()
        seen.add(name)  # unreadable, it is kept as it was rather than removed
        try:
            added = add_document(
                ctx,
                name=name,
                content=path.read_bytes(),
                collection=collection,
                source=f"folder:{folder}"[:200],
                actor=actor,
            )
        except InvalidInput as exc:
            report["failed"].append(str(exc))
            continue
        key = {"created": "added", "updated": "updated", "unchanged": "unchanged"}
        report[key[added["status"]]].append(name)  # type: ignore[literal-required]
    for document in list_documents(ctx, collection=collection):
        if document["name"] not in seen:
            delete_document(ctx, document["id"], actor=actor)
            report["removed"].append(document["name"])
    return report


def files_in(folder: Path) -> list[Path]:
    """The documents under a folder, in sub-folders too, hidden ones left out, sorted."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() in SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def search_passages(
    ctx: Context, query: str, *, collection: str | None = None, limit: int = 5
) -> list[PassageHit]:
    """The passages that best match `query`, best first."""
    query = _question(query)
    limit = max(1, min(int(limit), 50))
    return [
        hit_view(hit) for hit in documents(ctx.db).search(query, collection=collection, limit=limit)
    ]


def answer_question(ctx: Context, question: str, *, collection: str | None = None) -> Answer:
    """An answer whose every sentence cites a retrieved passage, or an abstention."""
    question = _question(question)
    hits = documents(ctx.db).search(question, collection=collection, limit=ANSWER_PASSAGES)
    retrieved = [hit_view(hit) for hit in hits]
    usable = answers.good_enough(hits)
    if not usable:
        reason = (
            "no documents to answer from"
            if documents(ctx.db).is_empty()
            else "no passage covers enough of the question"
        )
        return _abstain(question, retrieved, reason, "extract")  # no model was asked
    if is_configured(ctx):
        try:
            with language_model(ctx, needed_by="answers from documents") as llm:
                text, call = llm.answer_from_passages(
                    question, answers.numbered(usable), abstain=answers.ABSTAIN
                )
        except (LLMError, LLMNotConfigured) as exc:
            log.info("answer falls back to passages: %s", exc)
            checked = answers.extractive(usable)
            reason = f"the language model failed ({exc}); these are the best passages"
            return _answer(question, retrieved, usable, checked, "extract", reason)
        checked = answers.check_citations(text, len(usable))
        if checked.abstained:
            why = (
                "the model found no answer in the passages"
                if answers.is_abstention(text)
                else "no sentence of the model's answer cited a passage it was shown"
            )
            return _abstain(question, retrieved, why, "llm")
        dropped = f"; {checked.dropped} uncited sentence(s) dropped" if checked.dropped else ""
        return _answer(
            question, retrieved, usable, checked, "llm", f"written by {call.model}{dropped}"
        )
    checked = answers.extractive(usable)
    return _answer(question, retrieved, usable, checked, "extract", "the best passages, no model")


def link(document_id: int, ordinal: int) -> str:
    return f"/documents/{document_id}#p{ordinal}"


def hit_view(hit: Hit) -> PassageHit:
    passage = hit.passage
    return {
        "document_id": passage.document_id,
        "document_name": passage.document_name,
        "collection": passage.collection,
        "ordinal": passage.ordinal,
        "heading": passage.heading,
        "text": passage.text,
        "score": hit.score,
        "coverage": hit.coverage,
        "link": link(passage.document_id, passage.ordinal),
    }


# --- helpers ---------------------------------------------------------------------------------


def _answer(
    question: str,
    retrieved: list[PassageHit],
    usable: list[Hit],
    checked: answers.Checked,
    written_by: str,
    reason: str,
) -> Answer:
    return {
        "question": question,
        "text": checked.text,
        "abstained": False,
        "citations": [hit_view(usable[i]) for i in checked.cited],
        "written_by": "llm" if written_by == "llm" else "extract",
        "passages": retrieved,
        "reason": reason,
    }


def _abstain(question: str, retrieved: list[PassageHit], reason: str, written_by: str) -> Answer:
    return {
        "question": question,
        "text": answers.ABSTAIN,
        "abstained": True,
        "citations": [],
        "written_by": "llm" if written_by == "llm" else "extract",
        "passages": retrieved,
        "reason": reason,
    }


def _added(row: DocumentRow, status: AddStatus) -> DocumentAdded:
    return {
        "id": row.id,
        "name": row.name,
        "collection": row.collection,
        "version": row.version,
        "status": status,
        "passages": row.passages,
    }


def _summary(row: DocumentRow) -> DocumentSummary:
    return {
        "id": row.id,
        "name": row.name,
        "collection": row.collection,
        "version": row.version,
        "media_type": row.media_type,
        "source": row.source,
        "size": row.size,
        "passages": row.passages,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }


def _name(name: str) -> str:
    name = name.strip().replace("\\", "/")
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise InvalidInput.single(
            "name", f"a document name is 1 to {MAX_NAME} printable characters"
        )
    return name


def _collection(collection: str) -> str:
    collection = (collection or "default").strip()
    if len(collection) > MAX_COLLECTION or not all(c.isalnum() or c in "-_." for c in collection):
        raise InvalidInput.single(
            "collection",
            f"{collection!r}: a collection is up to {MAX_COLLECTION} letters, digits, - _ or .",
        )
    return collection


def _question(text: str) -> str:
    text = " ".join(str(text).split())
    if not text:
        raise InvalidInput.single("q", "ask something: the question is empty")
    if len(text) > MAX_QUESTION:
        raise InvalidInput.single("q", f"a question is at most {MAX_QUESTION} characters")
    return text


__all__ = [
    "UnreadableDocument",
    "add_document",
    "answer_question",
    "delete_document",
    "files_in",
    "get_document",
    "list_collections",
    "list_documents",
    "search_passages",
    "sync_folder",
]
