"""Column types that behave the same on SQLite and PostgreSQL, and are quick on both."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, String, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes. PostgreSQL: timestamptz. SQLite: fixed-width ISO text, so text
    order is time order and parsing is the C-fast `datetime.fromisoformat`."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}; OpsLoop stores aware UTC times only")
        if dialect.name == "sqlite":
            return to_sqlite_text(value)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value)
        moment: datetime = value
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=256)
def to_sqlite_text(value: datetime) -> str:
    """`2026-03-02T09:00:00.000000+00:00`: always UTC, always microseconds, so that text order
    is time order. (isoformat pads every year to four digits, `0999-…`, so the width is fixed
    for all of datetime's years; times read from outside are kept to 1900-2999 anyway, by
    opsloop/core/times.py, far from the ends where converting to UTC overflows.)"""
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.isoformat(timespec="microseconds")


Json = JSON().with_variant(JSONB(), "postgresql")


def json_dumps(value: Any) -> str:
    return json_bytes(value).decode()


def json_bytes(value: Any) -> bytes:
    """`json_dumps` as UTF-8 bytes. Plain orjson first: the same bytes for the usual value (string
    keys, JSON types) at a third of the cost of the options that the rare one needs."""
    try:
        return orjson.dumps(value)
    except TypeError:  # a key that is no string, a set, a timedelta, an integer past 64 bits
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def json_loads(value: str | bytes) -> Any:
    return orjson.loads(value)


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
