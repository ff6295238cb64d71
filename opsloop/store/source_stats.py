"""Daily counters per source (received, stored, duplicates, rejected, ignored, late), added to
as signals arrive, for the data-quality report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.store.schema import source_stats

COUNTERS = ("received", "stored", "duplicates", "rejected", "ignored", "late")


def add(conn: Connection, source: str, day: str, **counts: int) -> None:
    """Add to the source's counters for `day` (YYYY-MM-DD)."""
    values = {name: int(counts.get(name, 0)) for name in COUNTERS}
    if not any(values.values()):
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(source_stats).values(source=source, day=day, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[source_stats.c.source, source_stats.c.day],
        set_={name: source_stats.c[name] + statement.excluded[name] for name in COUNTERS},
    )
    conn.execute(statement)


def totals(conn: Connection, source: str, since_day: str) -> dict[str, int]:
    """The counters summed from `since_day` on."""
    query = select(*(func.coalesce(func.sum(source_stats.c[n]), 0).label(n) for n in COUNTERS))
    query = query.where(source_stats.c.source == source, source_stats.c.day >= since_day)
    row = conn.execute(query).one()
    return {name: int(row._mapping[name]) for name in COUNTERS}


def by_day(conn: Connection, source: str, since_day: str) -> list[dict[str, Any]]:
    query = (
        select(source_stats)
        .where(source_stats.c.source == source, source_stats.c.day >= since_day)
        .order_by(source_stats.c.day)
    )
    return [dict(row._mapping) for row in conn.execute(query)]
