"""What each source has sent: events counted by source and type, and when the last arrived."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from opsloop.store.schema import events


def event_counts(conn: Connection) -> list[dict[str, Any]]:
    """One row per (source, type): `source, type, events, last_received_at`."""
    query = (
        select(
            events.c.source,
            events.c.type,
            func.count().label("events"),
            func.max(events.c.received_at).label("last_received_at"),
        )
        .group_by(events.c.source, events.c.type)
        .order_by(events.c.source, events.c.type)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
