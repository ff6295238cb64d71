"""How much room each table takes: rows, and bytes of the table and of its indexes.

SQLite: from the `dbstat` virtual table when the SQLite library has it (pages actually used
by each table and index), else bytes are unknown. PostgreSQL: `pg_relation_size` (the table,
with its TOAST data) and `pg_indexes_size`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import OperationalError

from opsloop.store.schema import metadata


@dataclass(frozen=True, slots=True)
class TableSize:
    name: str
    rows: int
    table_bytes: int | None
    index_bytes: int | None

    @property
    def total_bytes(self) -> int | None:
        if self.table_bytes is None or self.index_bytes is None:
            return None
        return self.table_bytes + self.index_bytes


def table_sizes(conn: Connection) -> list[TableSize]:
    """Every table of the schema, largest first (by rows when bytes are unknown)."""
    names = sorted(metadata.tables)
    rows = {
        name: int(
            conn.execute(select(func.count()).select_from(metadata.tables[name])).scalar_one()
        )
        for name in names
    }
    if conn.dialect.name == "sqlite":
        measured = _sqlite_bytes(conn)
    else:
        measured = _postgres_bytes(conn, names)
    sizes = [
        TableSize(
            name,
            rows[name],
            measured[name][0] if measured is not None else None,
            measured[name][1] if measured is not None else None,
        )
        for name in names
    ]
    return sorted(sizes, key=lambda s: (-(s.total_bytes or 0), -s.rows, s.name))


def _sqlite_bytes(conn: Connection) -> dict[str, tuple[int, int]] | None:
    owners: dict[str, str] = {
        str(name): str(table)
        for name, table in conn.execute(text("SELECT name, tbl_name FROM sqlite_schema"))
    }
    try:
        pages = conn.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")).all()
    except OperationalError:  # this SQLite was built without dbstat
        return None
    found: dict[str, list[int]] = {name: [0, 0] for name in metadata.tables}
    for name, size in pages:
        table = owners.get(name, name)
        if table in found:
            found[table][0 if name == table else 1] += int(size)
    return {name: (sizes[0], sizes[1]) for name, sizes in found.items()}


def _postgres_bytes(conn: Connection, names: list[str]) -> dict[str, tuple[int, int]]:
    query = text(
        "SELECT pg_relation_size(to_regclass(:name)) + "
        "COALESCE(pg_total_relation_size(reltoastrelid), 0), pg_indexes_size(to_regclass(:name)) "
        "FROM pg_class WHERE oid = to_regclass(:name)"
    )
    found = {}
    for name in names:
        row = conn.execute(query, {"name": name}).first()
        found[name] = (int(row[0]), int(row[1])) if row else (0, 0)
    return found
