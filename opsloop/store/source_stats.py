"""Daily counters per source (received, stored, duplicates, rejected, ignored, late), added to
as signals arrive, for the data-quality report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from opsloop.store.database import current_tx
from opsloop.store.schema import source_stats

COUNTERS = ("received", "stored", "duplicates", "rejected", "ignored", "late")


# Every ingest transaction runs this upsert, so it goes straight to the driver's connection:
# building and compiling SQLAlchemy's ON CONFLICT construct cost more than the query (issue 12).
_UPSERT = (
    "INSERT INTO source_stats (source, day, {columns}) VALUES ({marks}) "
    "ON CONFLICT (source, day) DO UPDATE SET {sums}"
)
_ADD = {
    dialect: _UPSERT.format(
        columns=", ".join(COUNTERS),
        marks=", ".join([mark] * (2 + len(COUNTERS))),
        sums=", ".join(f"{name} = source_stats.{name} + excluded.{name}" for name in COUNTERS),
    )
    for dialect, mark in (("sqlite", "?"), ("postgresql", "%s"))
}


def add(conn: Connection, source: str, day: str, **counts: int) -> None:
    """Add to the source's counters for `day` (YYYY-MM-DD)."""
    values = [int(counts.get(name, 0)) for name in COUNTERS]
    if not any(values):
        return
    tx = current_tx(conn)
    if tx is not None:  # PostgreSQL: sent with the transaction's last statements
        tx.defer(_ADD[conn.dialect.name], (source, day, *values), shared=True)
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute(_ADD[conn.dialect.name], (source, day, *values))


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
