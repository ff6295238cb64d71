"""The database: one SQLite file by default, PostgreSQL when the URL says so.

`Database.transaction()` is the unit of work the service uses — one per use case. On SQLite it
takes the write lock up front (`BEGIN IMMEDIATE`) so two writers never deadlock on a lock
upgrade, and a process-local lock queues this process's writers fairly instead of having them
spin on SQLite's busy handler. Reads (`Database.read()`) never block or wait for writers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from opsloop.store.types import json_dumps, json_loads

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Tx:
    """An open write transaction and the callbacks to run once it has committed."""

    conn: Connection
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, callback: Callable[[], None]) -> None:
        if callback not in self._after_commit:
            self._after_commit.append(callback)


class Database:
    def __init__(self, url: str, *, pool_size: int = 8, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {
            "json_serializer": json_dumps,
            "json_deserializer": json_loads,
            "echo": echo,
        }
        if self.is_sqlite:
            database = self.url.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, connect_args={"timeout": 30})
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            _configure_sqlite(self.engine)

    @property
    def backend(self) -> str:
        return "sqlite" if self.is_sqlite else self.url.get_backend_name()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction: commits when the block ends, rolls back if it raises."""
        if self._write_lock is not None:
            self._write_lock.acquire()
        try:
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                tx = Tx(conn)
                with conn.begin():
                    yield tx
        finally:
            if self._write_lock is not None:
                self._write_lock.release()
        for callback in tx._after_commit:
            callback()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest migration (safe to call on every start)."""
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                # One process migrates at a time when several start together.
                conn.execute(text("SELECT pg_advisory_lock(724201)"))
            try:
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                if not self.is_sqlite:
                    conn.execute(text("SELECT pg_advisory_unlock(724201)"))
                    conn.commit()

    def schema_is_current(self) -> bool:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current == head

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below); the driver's implicit transactions would get in the way.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss, which is what a 2xx to an ingest call promises.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())
