"""A SQL query against any database SQLAlchemy reaches, read in batches, with an incremental
column so each sync reads only the rows that are new or changed.

The query must compare the cursor column against `:cursor` and ORDER BY it:

    SELECT * FROM orders WHERE updated_at >= :cursor ORDER BY updated_at

The checkpoint is `{"cursor": <value>, "type": "datetime"}`. Between batches it holds the
largest value whose rows have *all* been read (a value the next batch may still hold rows
of is not safe to skip), so a run killed halfway loses nothing with `>` either; with `>=` the
rows at the edge are read again and stored once. A row's key is the `key` column, with the
cursor value added when the cursor is another column: a changed row is a new record, the
same version read again is a repeat.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Result, Row, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from opsloop.core.errors import InvalidInput, Unavailable
from opsloop.core.sources import SqlConfig
from opsloop.perception.big_integers import LARGEST, SMALLEST
from opsloop.perception.records import Batch, Record, Rejected


def fetch(
    config: SqlConfig,
    secret: str | None,
    checkpoint: dict[str, Any] | None,
    *,
    backfill: bool = False,
) -> Iterator[Batch]:
    try:
        url = make_url(config.url)
    except ArgumentError as exc:
        raise InvalidInput.single("sql.url", str(exc)) from None
    if secret and url.password is None:
        url = url.set(password=secret)
    start = config.cursor_start
    base: dict[str, Any] = {}  # the checkpoint to keep until this run has read past it
    if not backfill and checkpoint and "cursor" in checkpoint:
        start, base = _load(checkpoint), dict(checkpoint)
    params = {"cursor": start} if config.cursor else {}
    # NullPool: a sync holds one connection for its run and leaves none behind.
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            result = conn.execution_options(yield_per=config.batch_size).execute(
                text(config.query), params
            )
            try:
                yield from _batches(config, result, base)
            finally:
                result.close()  # a server-side cursor left open warns when collected
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise Unavailable(f"the sql query failed: {reason}", retryable=True) from exc
    finally:
        engine.dispose()


def _batches(config: SqlConfig, result: Result[Any], base: dict[str, Any]) -> Iterator[Batch]:
    columns = list(result.keys())
    for needed in (config.key, config.cursor):
        if needed and needed not in columns:
            raise InvalidInput.single(
                "sql", f"the query gives no column {needed!r} (it gives {', '.join(columns)})"
            )
    safe: Any = None
    largest: Any = None
    number = 0
    for rows in result.partitions(config.batch_size):
        records: list[Record] = []
        rejected: list[Rejected] = []
        for row in rows:
            number += 1
            record = _record(config, row, number)
            if isinstance(record, Rejected):
                rejected.append(record)
            else:
                records.append(record)
        safe = _safe_cursor(config, rows, safe)
        if config.cursor:
            values = [v for v in (r._mapping[config.cursor] for r in rows) if v is not None]
            largest = max([*values, *([largest] if largest is not None else [])], default=None)
        yield Batch(records, _dump(safe) if safe is not None else base, rejected)
    if largest is not None and (safe is None or largest > safe):
        # Every row was read: the largest value is safe now.
        yield Batch([], _dump(largest))


def _record(config: SqlConfig, row: Row[Any], number: int) -> Record | Rejected:
    data = {name: _plain(value) for name, value in row._mapping.items()}
    key = data.get(config.key)
    where = f"row {number}" + (f" ({config.key} {key})" if key is not None else "")
    if key is None or key == "":
        return Rejected(
            where, f"has no {config.key!r} (the id that stores each row once)", orjson.dumps(data)
        )
    if config.cursor and config.cursor != config.key and data.get(config.cursor) is not None:
        key = f"{key}@{data[config.cursor]}"
    return Record(data, where=where, key=str(key))


def _safe_cursor(config: SqlConfig, rows: Sequence[Row[Any]], safe: Any) -> Any:
    """The largest cursor value all of whose rows are in this batch or before it."""
    if not config.cursor:
        return safe
    values = [v for v in (r._mapping[config.cursor] for r in rows) if v is not None]
    if not values:
        return safe
    last = values[-1]
    below = [v for v in values if v < last]
    candidate = max(below) if below else None
    if candidate is None or (safe is not None and not candidate > safe):
        return safe
    return candidate


def _plain(value: Any) -> Any:
    """A column's value as JSON: times in ISO 8601, decimals as numbers; a whole number beyond
    64 bits (a NUMERIC(30) column) as text, which keeps it exact where a number could not."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if SMALLEST <= value <= LARGEST else str(value)
    if value is None or isinstance(value, str | float | bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            return float(value)
        return int(value) if SMALLEST <= value <= LARGEST else format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list):
        return orjson.loads(orjson.dumps(value, default=str))
    return str(value)


def _dump(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, datetime):
        return {"cursor": value.isoformat(), "type": "datetime"}
    if isinstance(value, date):
        return {"cursor": value.isoformat(), "type": "date"}
    if isinstance(value, Decimal):
        return {"cursor": str(value), "type": "decimal"}
    return {"cursor": _plain(value)}


def _load(checkpoint: dict[str, Any]) -> Any:
    value = checkpoint["cursor"]
    kind = checkpoint.get("type")
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "decimal":
        return Decimal(value)
    return value
