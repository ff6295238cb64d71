"""Writing many rows at once: the hot path of ingest (events, entities, decisions, audit).

On PostgreSQL these are ordinary SQLAlchemy executemany calls. On SQLite SQLAlchemy's per-row
parameter handling costs about as much as the write itself, so `run_many` compiles the
statement once (with SQLAlchemy, keeping its column types' conversions) and hands the driver
plain tuples. Both paths run the same compiled SQL; the store contract tests run on both.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Dialect, Executable, Table, bindparam, func, insert, select


def run_many(conn: Connection, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """Execute `statement` once per row of parameters, in one driver call."""
    if not rows:
        return
    if len(rows) == 1:
        conn.execute(statement, rows)
        return
    sql, names, processors = _prepare(statement, conn.dialect, tuple(rows[0]))
    converted = [
        (index, process) for index, process in enumerate(processors) if process is not None
    ]
    if conn.dialect.name != "sqlite":  # psycopg takes named parameters: a dict per row
        named = []
        for row in rows:
            by_name = {name: row[name] for name in names}
            for index, process in converted:
                by_name[names[index]] = process(by_name[names[index]])
            named.append(by_name)
        conn.exec_driver_sql(sql, named)
        return
    pick = operator.itemgetter(*names)
    params = []
    for row in rows:
        values = list(pick(row)) if len(names) > 1 else [row[names[0]]]
        for index, process in converted:
            values[index] = process(values[index])
        params.append(tuple(values))
    conn.exec_driver_sql(sql, params)


def insert_returning_ids(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` into `table` (whose primary key is `id`); return the new ids in row order.

    The ids are chosen first and written explicitly, so the rows go in with a plain
    executemany (a multi-row INSERT … RETURNING is several times slower on both backends).
    PostgreSQL: taken from the table's sequence, which is safe under concurrency. SQLite:
    counting up from the current maximum, which is sound because a writer holds SQLite's write
    lock for its whole transaction (BEGIN IMMEDIATE), so nobody else can insert in between.
    """
    if not rows:
        return []
    key = table.c.id
    if len(rows) == 1 and conn.dialect.name != "sqlite":
        return [int(conn.execute(insert(table).returning(key), rows[0]).scalar_one())]
    if conn.dialect.name == "sqlite":
        start = int(conn.execute(_max_id(table)).scalar_one()) + 1
        ids = list(range(start, start + len(rows)))
    else:
        ids = list(conn.execute(_next_ids(table), {"n": len(rows)}).scalars())
    run_many(
        conn,
        _insert_of(table),
        [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)],
    )
    return ids


@functools.cache
def _insert_of(table: Table) -> Executable:
    return insert(table)


@functools.cache
def _next_ids(table: Table) -> Executable:
    sequence = func.pg_get_serial_sequence(table.name, "id")
    return select(func.nextval(sequence)).select_from(func.generate_series(1, bindparam("n")))


@functools.cache
def _max_id(table: Table) -> Executable:
    return select(func.coalesce(func.max(table.c.id), 0))


@functools.lru_cache(maxsize=256)
def _prepare(
    statement: Executable, dialect: Dialect, keys: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...]]:
    """The SQL text, its positional parameter names and each one's type conversion."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    names = tuple(compiled.positiontup or compiled.bind_names.values())
    processors = compiled._bind_processors
    return str(compiled), names, tuple(processors.get(name) for name in names)
