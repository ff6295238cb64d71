"""The append-only audit trail: who did what, when. Triggers refuse UPDATE and DELETE."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from opsloop.store.bulk import run_many
from opsloop.store.tables import audit

_INSERT = insert(audit)


def record(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    verb: str,
    object_type: str,
    object_id: str | int,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(audit),
        {
            "at": at,
            "actor": actor,
            "verb": verb,
            "object_type": object_type,
            "object_id": str(object_id),
            "detail": detail or {},
        },
    )


def record_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    run_many(conn, _INSERT, rows)


def trail(conn: Connection, object_type: str, object_id: str | int) -> list[dict[str, Any]]:
    query = (
        select(audit)
        .where(audit.c.object_type == object_type, audit.c.object_id == str(object_id))
        .order_by(audit.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def recent(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    query = select(audit).order_by(audit.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]
