"""The append-only audit trail: who did what, when. Triggers refuse UPDATE and DELETE, and a
hash chain (opsloop/store/ledger.py) shows any change made with the triggers off."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, select

from opsloop.core.audit_entries import AuditEntry
from opsloop.store import ledger
from opsloop.store.schema import audit

COLUMNS = (
    audit.c.id,
    audit.c.at,
    audit.c.actor,
    audit.c.verb,
    audit.c.object_type,
    audit.c.object_id,
    audit.c.detail,
)
"""What readers show of an audit row (the chain's hashes are for `opsloop audit verify`)."""


def audit_entry(row: Any) -> AuditEntry:
    """A row of `select(*COLUMNS)` as readers see it."""
    # COLUMNS are AuditEntry's keys.
    return cast(AuditEntry, dict(row._mapping))


def record(
    conn: Connection,
    at: datetime,
    actor: str,
    verb: str,
    object_id: str | int,
    detail: dict[str, Any] | None = None,
    *,
    object_type: str | None = None,
) -> None:
    """Add one entry: `actor` did `verb` to `object_id` at `at`. The object's type is the verb's
    first word (`action.delivered` is about an action) unless `object_type` says otherwise. In a
    `Database.transaction()` the row is appended as the transaction's last write, with a digest
    of the decision or action it is about as the transaction leaves it."""
    ledger.append(
        conn,
        [
            {
                "at": at,
                "actor": actor,
                "verb": verb,
                "object_type": object_type or verb.split(".", 1)[0],
                "object_id": str(object_id),
                "detail": detail or {},
            }
        ],
    )


def record_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add entries given as dicts of `record`'s arguments; a row may bring the `digest` of the
    row it describes when the caller has just written it (the hot path: no read-back)."""
    ledger.append(conn, rows)


def trail(conn: Connection, object_type: str, object_id: str | int) -> list[AuditEntry]:
    query = (
        select(*COLUMNS)
        .where(audit.c.object_type == object_type, audit.c.object_id == str(object_id))
        .order_by(audit.c.id)
    )
    return [audit_entry(row) for row in conn.execute(query)]


def of_type(conn: Connection, object_type: str) -> list[AuditEntry]:
    """Every entry about objects of one type (`history`: the imports), oldest first."""
    query = select(*COLUMNS).where(audit.c.object_type == object_type).order_by(audit.c.id)
    return [audit_entry(row) for row in conn.execute(query)]


def recent(conn: Connection, limit: int = 100) -> list[AuditEntry]:
    query = select(*COLUMNS).order_by(audit.c.id.desc()).limit(limit)
    return [audit_entry(row) for row in conn.execute(query)]
