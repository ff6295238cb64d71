"""Data contracts and their versions: one row per version of an event type's contract; at most
one active per type."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from opsloop.store.schema import contracts


def active_contract(conn: Connection, event_type: str) -> dict[str, Any] | None:
    query = select(contracts).where(contracts.c.event_type == event_type, contracts.c.active)
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def active_contracts(conn: Connection) -> list[dict[str, Any]]:
    query = select(contracts).where(contracts.c.active).order_by(contracts.c.event_type)
    return [dict(row._mapping) for row in conn.execute(query)]


def list_versions(conn: Connection, event_type: str) -> list[dict[str, Any]]:
    """Every version of a type's contract, newest first."""
    query = (
        select(contracts)
        .where(contracts.c.event_type == event_type)
        .order_by(contracts.c.version.desc())
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def add_version(
    conn: Connection,
    *,
    event_type: str,
    spec: dict[str, Any],
    yaml: str,
    applied_at: datetime,
    applied_by: str,
) -> int:
    """Store a new active version, the previous one inactive; return its version number. Two
    applies of the same type at once: the second fails on the unique (event_type, version)."""
    latest = conn.execute(
        select(func.max(contracts.c.version)).where(contracts.c.event_type == event_type)
    ).scalar_one()
    number = (latest or 0) + 1
    conn.execute(
        update(contracts)
        .where(contracts.c.event_type == event_type, contracts.c.active)
        .values(active=False)
    )
    conn.execute(
        insert(contracts),
        {
            "event_type": event_type,
            "version": number,
            "spec": spec,
            "yaml": yaml,
            "applied_at": applied_at,
            "applied_by": applied_by,
            "active": True,
        },
    )
    return number


def deactivate(conn: Connection, event_type: str) -> int | None:
    """Make a type's active version inactive (the row stays, for history); return its version
    number, or None when the type had no active version (including a concurrent remove)."""
    current = active_contract(conn, event_type)
    if current is None:
        return None
    done = conn.execute(
        update(contracts)
        .where(contracts.c.id == current["id"], contracts.c.active)
        .values(active=False)
    )
    return int(current["version"]) if done.rowcount == 1 else None


def contracts_stamp(conn: Connection) -> tuple[Any, ...]:
    """Changes whenever a version is added or one stops being active (a newer version, or a
    remove: the count drops): cheap cache check."""
    row = conn.execute(
        select(func.max(contracts.c.id), func.count()).where(contracts.c.active)
    ).one()
    return tuple(row)
