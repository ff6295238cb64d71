"""Settings saved in the browser, one JSON text per key (`smtp_host`, `llm.api_key`, ...)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from opsloop.store.schema import settings_values, sources


def all_values(conn: Connection) -> dict[str, str]:
    rows = conn.execute(select(settings_values.c.key, settings_values.c.value))
    return {row.key: row.value for row in rows}


def put(conn: Connection, key: str, value: str, *, at: datetime, actor: str) -> None:
    values = {"value": value, "updated_at": at, "updated_by": actor}
    done = conn.execute(
        update(settings_values).where(settings_values.c.key == key).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(insert(settings_values).values(key=key, **values))


def remove(conn: Connection, key: str) -> bool:
    return conn.execute(delete(settings_values).where(settings_values.c.key == key)).rowcount > 0


def any_sealed(conn: Connection, prefix: str) -> bool:
    """Whether any secret in the database was sealed (sources' secrets, saved settings)."""
    for column in (sources.c.secret, settings_values.c.value):
        if conn.execute(select(column).where(column.startswith(prefix)).limit(1)).first():
            return True
    return False
