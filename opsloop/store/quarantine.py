"""Quarantine: bad input kept with the reason it was refused, for inspection and replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, func, insert, select, update

from opsloop.core.audit_entries import AuditEntry
from opsloop.core.quarantine import KEEP_BYTES, QuarantineRow
from opsloop.store.audit import COLUMNS as AUDIT_COLUMNS
from opsloop.store.audit import audit_entry
from opsloop.store.schema import audit, quarantine


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


def _item(row: Any) -> QuarantineRow:
    # A row of `select(quarantine)`: the table's columns are QuarantineRow's keys.
    return cast(QuarantineRow, dict(row._mapping))


def list_held(
    conn: Connection,
    *,
    source: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[QuarantineRow]:
    query = select(quarantine).order_by(quarantine.c.id.desc()).limit(limit)
    if source:
        query = query.where(quarantine.c.source == source)
    if status:
        query = query.where(quarantine.c.status == status)
    if before_id:
        query = query.where(quarantine.c.id < before_id)
    return [_item(row) for row in conn.execute(query)]


def get(conn: Connection, item_id: int) -> QuarantineRow | None:
    row = conn.execute(select(quarantine).where(quarantine.c.id == item_id)).first()
    return _item(row) if row else None


def count_held(conn: Connection) -> int:
    query = select(func.count()).select_from(quarantine).where(quarantine.c.status == "held")
    return conn.execute(query).scalar_one()


def count_by_status(conn: Connection) -> dict[str, int]:
    query = select(quarantine.c.status, func.count()).group_by(quarantine.c.status)
    return {str(status): int(count) for status, count in conn.execute(query)}


def mark_replayed(conn: Connection, item_id: int) -> bool:
    """Held → replayed; False when it was not held (replayed meanwhile). Items are never
    deleted: the body and the reason stay for the record."""
    result = conn.execute(
        update(quarantine)
        .where(quarantine.c.id == item_id, quarantine.c.status == "held")
        .values(status="replayed")
    )
    return result.rowcount == 1


def trails(conn: Connection, item_ids: list[int]) -> dict[int, list[AuditEntry]]:
    """The audit entries of these items (why each was quarantined, its replays), oldest first."""
    found: dict[int, list[AuditEntry]] = {item_id: [] for item_id in item_ids}
    if not item_ids:
        return found
    query = (
        select(*AUDIT_COLUMNS)
        .where(
            audit.c.object_type == "quarantine", audit.c.object_id.in_([str(i) for i in item_ids])
        )
        .order_by(audit.c.id)
    )
    for row in conn.execute(query):
        found[int(row.object_id)].append(audit_entry(row))
    return found
