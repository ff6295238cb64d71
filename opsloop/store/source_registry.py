"""Source definitions as stored: one row per source, its secret kept apart from its spec."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from opsloop.store.schema import sources


def get(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(sources).where(sources.c.name == name)).first()
    return dict(row._mapping) if row else None


def list_all(conn: Connection, *, kind: str | None = None) -> list[dict[str, Any]]:
    query = select(sources).order_by(sources.c.name)
    if kind is not None:
        query = query.where(sources.c.kind == kind)
    return [dict(row._mapping) for row in conn.execute(query)]


def insert_source(
    conn: Connection,
    *,
    name: str,
    kind: str,
    spec: dict[str, Any],
    secret: str | None,
    enabled: bool,
    at: datetime,
    actor: str,
    next_sync_at: datetime | None,
) -> int:
    new_id: int = conn.execute(
        insert(sources).returning(sources.c.id),
        {
            "name": name,
            "kind": kind,
            "spec": spec,
            "secret": secret,
            "enabled": enabled,
            "created_at": at,
            "updated_at": at,
            "updated_by": actor,
            "next_sync_at": next_sync_at,
        },
    ).scalar_one()
    return new_id


def update_source(conn: Connection, name: str, **values: Any) -> None:
    conn.execute(update(sources).where(sources.c.name == name).values(**values))


def delete_source(conn: Connection, name: str) -> bool:
    return conn.execute(delete(sources).where(sources.c.name == name)).rowcount > 0


def due(conn: Connection, now: datetime) -> list[str]:
    """Enabled sources whose next sync is due."""
    query = (
        select(sources.c.name)
        .where(sources.c.enabled.is_(True))
        .where(sources.c.next_sync_at.is_not(None))
        .where(sources.c.next_sync_at <= now)
        .order_by(sources.c.next_sync_at)
    )
    return [row.name for row in conn.execute(query)]
