"""Documents and their passages: the named queries of opsloop/service/ask/documents.py and of
the retrieval index (opsloop/knowledge/library.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, func, insert, select, update

from opsloop.store.schema import document_passages, documents


@dataclass(frozen=True, slots=True)
class DocumentRow:
    id: int
    collection: str
    name: str
    version: int
    content_hash: str
    media_type: str
    source: str
    size: int
    passages: int
    created_at: datetime
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class PassageRow:
    id: int
    document_id: int
    document_name: str
    collection: str
    ordinal: int
    heading: str
    text: str


def _document_query() -> Select[Any]:
    count = (
        select(func.count())
        .where(document_passages.c.document_id == documents.c.id)
        .scalar_subquery()
        .label("passages")
    )
    return select(*documents.c, count)


def _row(row: Any) -> DocumentRow:
    return DocumentRow(**row._mapping)


def find(conn: Connection, collection: str, name: str) -> DocumentRow | None:
    query = _document_query().where(documents.c.collection == collection, documents.c.name == name)
    row = conn.execute(query).first()
    return _row(row) if row else None


def get(conn: Connection, document_id: int) -> DocumentRow | None:
    row = conn.execute(_document_query().where(documents.c.id == document_id)).first()
    return _row(row) if row else None


def list_all(conn: Connection, collection: str | None = None) -> list[DocumentRow]:
    query = _document_query().order_by(documents.c.collection, documents.c.name)
    if collection is not None:
        query = query.where(documents.c.collection == collection)
    return [_row(row) for row in conn.execute(query)]


def add(
    conn: Connection,
    *,
    collection: str,
    name: str,
    content_hash: str,
    media_type: str,
    source: str,
    size: int,
    now: datetime,
    actor: str,
) -> int:
    statement = (
        insert(documents)
        .values(
            collection=collection,
            name=name,
            version=1,
            content_hash=content_hash,
            media_type=media_type,
            source=source,
            size=size,
            created_at=now,
            updated_at=now,
            updated_by=actor,
        )
        .returning(documents.c.id)
    )
    return int(conn.execute(statement).scalar_one())


def new_version(
    conn: Connection,
    document_id: int,
    *,
    content_hash: str,
    media_type: str,
    source: str,
    size: int,
    now: datetime,
    actor: str,
) -> int:
    """Bump the document's version (its passages are replaced by the caller); the new number."""
    statement = (
        update(documents)
        .where(documents.c.id == document_id)
        .values(
            version=documents.c.version + 1,
            content_hash=content_hash,
            media_type=media_type,
            source=source,
            size=size,
            updated_at=now,
            updated_by=actor,
        )
        .returning(documents.c.version)
    )
    return int(conn.execute(statement).scalar_one())


def replace_passages(
    conn: Connection, document_id: int, passages: list[tuple[int, str, str]]
) -> None:
    """Put (ordinal, heading, text) rows in place of the document's passages."""
    conn.execute(delete(document_passages).where(document_passages.c.document_id == document_id))
    if passages:
        conn.execute(
            insert(document_passages),
            [
                {"document_id": document_id, "ordinal": o, "heading": h, "text": t}
                for o, h, t in passages
            ],
        )


def remove(conn: Connection, document_id: int) -> bool:
    """Delete the document and its passages; False when there was none."""
    conn.execute(delete(document_passages).where(document_passages.c.document_id == document_id))
    return conn.execute(delete(documents).where(documents.c.id == document_id)).rowcount > 0


def passages_of(conn: Connection, document_id: int) -> list[PassageRow]:
    return _passages(conn, document_passages.c.document_id == document_id)


def all_passages(conn: Connection) -> list[PassageRow]:
    """Every passage of every document, for the retrieval index."""
    return _passages(conn, None)


def _passages(conn: Connection, where: Any) -> list[PassageRow]:
    query = (
        select(
            document_passages.c.id,
            document_passages.c.document_id,
            documents.c.name.label("document_name"),
            documents.c.collection,
            document_passages.c.ordinal,
            document_passages.c.heading,
            document_passages.c.text,
        )
        .join(documents, documents.c.id == document_passages.c.document_id)
        .order_by(document_passages.c.document_id, document_passages.c.ordinal)
    )
    if where is not None:
        query = query.where(where)
    return [PassageRow(**row._mapping) for row in conn.execute(query)]


def collections(conn: Connection) -> list[str]:
    query = select(documents.c.collection).distinct().order_by(documents.c.collection)
    return [str(name) for name in conn.execute(query).scalars()]


def stamp(conn: Connection) -> tuple[int, int, int, int]:
    """Changes whenever a document is added, changed or removed (in any process): the number
    of documents and passages, and the largest id of each."""
    docs = conn.execute(select(func.count(), func.coalesce(func.max(documents.c.id), 0))).one()
    passages = conn.execute(
        select(func.count(), func.coalesce(func.max(document_passages.c.id), 0))
    ).one()
    return (int(docs[0]), int(docs[1]), int(passages[0]), int(passages[1]))
