"""Writing many rows at once: the hot path of ingest (events, entities, decisions, audit).

`run_many` compiles the statement once with SQLAlchemy, keeping its column types'
conversions, and hands the rows to the driver itself: SQLAlchemy's per-row parameter handling
costs about as much as the write. On SQLite that is one executemany of plain tuples. On
PostgreSQL a plain INSERT of more than a few rows goes in with `COPY … FROM STDIN`, three to
four times cheaper per row than psycopg's pipelined executemany at 1,000 rows
(docs/performance.md#postgresql); any other statement is an executemany. The store contract
tests run every path on both databases.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Connection,
    Dialect,
    Executable,
    Insert,
    Table,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import JSON

from opsloop.store.database import current_tx
from opsloop.store.types import json_dumps


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
    if conn.dialect.name != "sqlite" and len(rows) > _COPY_FROM and _copyable(statement):
        _copy(conn, statement, sql, names, _copy_conversions(statement, conn.dialect, names), rows)
        return
    if conn.dialect.name != "sqlite":  # psycopg takes named parameters: a dict per row
        conn.exec_driver_sql(sql, _named(names, converted, rows))
        return
    pick = operator.itemgetter(*names)
    params = []
    for row in rows:
        values = list(pick(row)) if len(names) > 1 else [row[names[0]]]
        for index, process in converted:
            values[index] = process(values[index])
        params.append(tuple(values))
    conn.exec_driver_sql(sql, params)


# COPY costs two round trips (the statement, then the rows) where psycopg's executemany sends
# everything in one pipeline: a group of a few concurrent single events is quicker without it.
_COPY_FROM = 16


def _named(
    names: tuple[str, ...],
    converted: list[tuple[int, Callable[[Any], Any]]],
    rows: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each row as psycopg takes it: its parameters by name, the column types' conversions
    applied."""
    named = []
    for row in rows:
        by_name = {name: row[name] for name in names}
        for index, process in converted:
            by_name[names[index]] = process(by_name[names[index]])
        named.append(by_name)
    return named


def _copyable(statement: Executable) -> bool:
    """A plain `insert(table)`: no ON CONFLICT, no RETURNING, no values of its own."""
    return (
        isinstance(statement, Insert)
        and statement._post_values_clause is None
        and not statement._returning
        and not statement._values
        and not statement._multi_values
    )


@functools.lru_cache(maxsize=64)
def _copy_conversions(
    statement: Executable, dialect: Dialect, names: tuple[str, ...]
) -> list[tuple[int, Callable[[Any], Any]]]:
    """The column types' conversions for COPY: JSON goes as its text (psycopg's wrapper objects
    cost more to dump), everything else as for the INSERT."""
    table = statement.table  # type: ignore[attr-defined]
    processors = _prepare(statement, dialect, names)[2]
    found: list[tuple[int, Callable[[Any], Any]]] = []
    for index, (name, process) in enumerate(zip(names, processors, strict=True)):
        if isinstance(table.c[name].type.dialect_impl(dialect), JSON):
            found.append((index, _json_text))
        elif process is not None:
            found.append((index, process))
    return found


def _json_text(value: Any) -> str:
    return json_dumps(value)  # None too: JSON's null, as SQLAlchemy's JSON type stores it


def _copy(
    conn: Connection,
    statement: Executable,
    sql: str,
    names: tuple[str, ...],
    converted: list[tuple[int, Callable[[Any], Any]]],
    rows: list[dict[str, Any]],
) -> None:
    """PostgreSQL: the rows of a plain INSERT through `COPY … FROM STDIN`, in the caller's
    transaction. psycopg dumps each value as it would for the INSERT (the column types'
    conversions run first), and a broken constraint is raised as SQLAlchemy's IntegrityError,
    as the INSERT would raise it."""
    import psycopg  # PostgreSQL only

    table = statement.table  # type: ignore[attr-defined]
    columns = ", ".join(f'"{name}"' for name in names)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
            for row in rows:
                values = [row[name] for name in names]
                for index, process in converted:
                    values[index] = process(values[index])
                copy.write_row(values)
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(sql, None, exc) from exc
    finally:
        cursor.close()


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
    reserved = _take_reserved(conn, table.name, len(rows))
    if reserved is not None:
        ids = reserved
    elif len(rows) == 1 and conn.dialect.name != "sqlite":
        return [int(conn.execute(insert(table).returning(key), rows[0]).scalar_one())]
    elif conn.dialect.name == "sqlite":
        start = int(conn.execute(_max_id(table)).scalar_one()) + 1
        ids = list(range(start, start + len(rows)))
    else:
        ids = _next_ids(conn, table.name, len(rows))
    run_many(
        conn,
        _insert_of(table),
        [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)],
    )
    return ids


_DEFERRED_MAX = 64  # more rows than this go through COPY now: faster per row than executemany


def insert_deferred(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """`insert_returning_ids`, except that on PostgreSQL, in a transaction, the rows are sent
    with the transaction's next pipelined round trip, at the latest its commit
    (`Tx.defer_many`): a round trip fewer. Only for rows that nothing reads or refers to (a
    foreign key) before that round trip, or in it ahead of them. SQLite, outside a transaction,
    or more than `_DEFERRED_MAX` rows: inserted now."""
    tx = current_tx(conn)
    if not rows or tx is None or conn.dialect.name == "sqlite" or len(rows) > _DEFERRED_MAX:
        return insert_returning_ids(conn, table, rows)
    ids = _take_reserved(conn, table.name, len(rows)) or _next_ids(conn, table.name, len(rows))
    full = [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)]
    sql, names, processors = _prepare(_insert_of(table), conn.dialect, tuple(full[0]))
    converted = [(index, process) for index, process in enumerate(processors) if process]
    tx.defer_many(sql, _named(names, converted, full))
    return ids


@functools.cache
def _insert_of(table: Table) -> Executable:
    return insert(table)


_RESERVED = "reserved_ids"  # key in Tx.scratch: table name -> ids taken, not yet used


def reserve_ids(conn: Connection, ids: dict[str, list[int]]) -> None:
    """Keep ids taken from the tables' sequences (PostgreSQL) for this transaction's next
    inserts into those tables, so a caller that can count its rows ahead takes them in a query
    it makes anyway instead of a round trip per table. Ids left unused leave gaps, as a rolled
    back transaction does."""
    tx = current_tx(conn)
    if tx is None:
        return
    kept: dict[str, list[int]] = tx.scratch.setdefault(_RESERVED, {})
    for table, taken in ids.items():
        kept.setdefault(table, []).extend(taken)


def _take_reserved(conn: Connection, table: str, count: int) -> list[int] | None:
    """`count` ids reserved for `table` in this transaction, or None when fewer are left."""
    tx = current_tx(conn)
    kept: dict[str, list[int]] | None = tx.scratch.get(_RESERVED) if tx is not None else None
    if not kept or len(kept.get(table, ())) < count:
        return None
    ids = kept[table][:count]
    del kept[table][:count]
    return ids


# Straight on the driver: SQLAlchemy's statement and result handling cost about half the
# round trip here, and this runs in every group that takes no ids ahead.
_NEXT_IDS = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"


def _next_ids(conn: Connection, table: str, count: int) -> list[int]:
    """`count` new ids from the table's sequence (PostgreSQL), safe under concurrency."""
    driver = conn.connection.driver_connection
    assert driver is not None
    return [int(row[0]) for row in driver.execute(_NEXT_IDS, (table, count)).fetchall()]


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
