"""Quarantine: bad input kept with the reason it was refused, for inspection and replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from opsloop.store.tables import quarantine

# What we keep of a body that was refused for its size: enough to recognize the sender.
KEEP_BYTES = 64 * 1024


def hold(
    conn: Connection,
    *,
    source: str,
    received_at: datetime,
    reason: str,
    errors: list[dict[str, Any]],
    body: bytes,
    body_size: int | None = None,
    content_type: str | None = None,
    file: str | None = None,
    line: int | None = None,
) -> int:
    new_id: int = conn.execute(
        insert(quarantine).returning(quarantine.c.id),
        {
            "source": source,
            "received_at": received_at,
            "reason": reason,
            "errors": errors,
            "body": body[:KEEP_BYTES],
            "body_size": len(body) if body_size is None else body_size,
            "content_type": content_type,
            "file": file,
            "line": line,
            "status": "held",
        },
    ).scalar_one()
    return new_id


def list_held(
    conn: Connection, *, source: str | None = None, limit: int = 50, before_id: int | None = None
) -> list[dict[str, Any]]:
    query = select(quarantine).order_by(quarantine.c.id.desc()).limit(limit)
    if source:
        query = query.where(quarantine.c.source == source)
    if before_id:
        query = query.where(quarantine.c.id < before_id)
    return [dict(row._mapping) for row in conn.execute(query)]


def get(conn: Connection, item_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(quarantine).where(quarantine.c.id == item_id)).first()
    return dict(row._mapping) if row else None


def count_held(conn: Connection) -> int:
    query = select(func.count()).select_from(quarantine).where(quarantine.c.status == "held")
    return conn.execute(query).scalar_one()
