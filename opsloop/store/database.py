"""The database: one SQLite file by default, PostgreSQL when the URL says so.

`Database.transaction()` is the unit of work the service uses — one per use case. On SQLite it
takes the write lock up front (`BEGIN IMMEDIATE`) so two writers never deadlock on a lock
upgrade, and a process-local lock queues this process's writers fairly instead of having them
spin on SQLite's busy handler. Reads (`Database.read()`) never block or wait for writers.

Alembic is imported only to migrate: a command on a database already at the newest revision
checks that with one query and the revision ids in `migrations/versions/` (about 65 ms less
start-up; docs/performance.md#cli-start-up).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError

from opsloop.store.types import json_dumps, json_loads

if TYPE_CHECKING:
    import psycopg
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
WAL_SIZE_LIMIT = 64 * 1024 * 1024
_TX = "opsloop.tx"  # key of the open Tx in its connection's `info`

POSTGRES_OPTIONS = "-c plan_cache_mode=force_custom_plan -c jit=off"
"""Set on every PostgreSQL connection OpsLoop opens. psycopg prepares a statement after its
fifth run, and PostgreSQL then keeps a generic plan made for the tables as they were: a
cooldown lookup first planned while `decisions` had a page or two kept scanning it per subject
once it held thousands of rows (1,000-event batches fell from 4,800 to 150 events/s, the
database at 100% CPU). Custom plans are made for the tables as they are at each run; the
statements stay prepared, so only planning, a fraction of a millisecond, is repeated.

JIT is off: OpsLoop's statements are short lookups and writes. With statistics that say the
tables are empty, a batch's history read is estimated above PostgreSQL's JIT thresholds once
`events` holds some 60,000 rows, and LLVM then spent 40-60 ms compiling it for every
1,000-event batch (auto_explain: "JIT: Functions: 18, Inlining true, Optimization true"), 60%
more PostgreSQL CPU per event (docs/performance.md)."""


@dataclass
class Tx:
    """An open write transaction, the writes to make last in it (before it commits) and the
    callbacks to run once it has committed."""

    conn: Connection
    _after_commit: list[Callable[[], None]] = field(default_factory=list)
    _before_commit: list[Callable[[], None]] = field(default_factory=list)
    scratch: dict[str, Any] = field(default_factory=dict)
    """Per-transaction state of store modules (the audit rows waiting to be appended)."""
    _deferred: list[tuple[str, Sequence[Any], bool]] = field(default_factory=list)
    _shared: int = 0  # how many of `_deferred`, at its start, lock rows other writers lock
    _last: LastWrite | None = None
    _at_end: list[Callable[[], None]] = field(default_factory=list)
    committed: bool = False
    """Set once it has committed, before the commit's callbacks run."""
    _began_here: psycopg.Connection[Any] | None = None
    """The driver connection switched to autocommit by `_begin_here`, until switched back."""

    def at_end(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the transaction is over, committed or not (after the commit's
        callbacks): to let go of what it held in this process."""
        self._at_end.append(callback)

    def after_commit(self, callback: Callable[[], None]) -> None:
        if callback not in self._after_commit:
            self._after_commit.append(callback)

    def before_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` as the transaction's last work, inside it: the audit trail is
        appended there, so the lock on its head is held only from then until the commit."""
        if callback not in self._before_commit:
            self._before_commit.append(callback)

    def defer(self, sql: str, params: Sequence[Any], *, shared: bool = False) -> None:
        """A write on the driver's connection whose result nobody reads (a counter's upsert).
        PostgreSQL: sent with the transaction's next pipelined round trip (`pipelined`), at the
        latest with its COMMIT. SQLite, where a statement costs no round trip: now.

        `shared`: the write locks a row other writers write too (a source's daily counter). It
        goes ahead of the other deferred writes, so a round trip takes its shared locks as it
        starts: the next writer's last round trip, sent a moment later, then queues behind
        them instead of overtaking this one to the ledger's head (whose guard would fail)."""
        driver = self.conn.connection.driver_connection
        assert driver is not None
        if self.conn.dialect.name == "sqlite":
            driver.execute(sql, params)
        elif shared:
            self._deferred.insert(self._shared, (sql, params, False))
            self._shared += 1
        else:
            self._deferred.append((sql, params, False))

    def defer_many(self, sql: str, rows: Sequence[Any]) -> None:
        """`defer`, the statement run once per row of parameters (PostgreSQL only: on SQLite
        an insert costs no round trip, and the caller makes it now)."""
        if self.conn.dialect.name == "sqlite":
            raise RuntimeError("defer_many is for PostgreSQL; on SQLite write now")
        self._deferred.append((sql, rows, True))

    @contextmanager
    def pipelined(self) -> Iterator[Any]:
        """The driver's connection, sending every statement of the block, after the deferred
        writes, in one round trip: psycopg's pipeline mode on PostgreSQL. A cursor's rows and
        rowcount are known once the block has ended. SQLite: the connection as it is."""
        driver = self.conn.connection.driver_connection
        assert driver is not None
        if self.conn.dialect.name == "sqlite":
            yield driver
            return
        import psycopg  # PostgreSQL only

        begin = self._begin_here(driver)
        try:
            with driver.pipeline():
                if begin:
                    driver.execute("BEGIN", prepare=False)
                deferred, self._deferred, self._shared = self._deferred, [], 0
                for sql, params, many in deferred:
                    if many:
                        with driver.cursor() as cursor:
                            cursor.executemany(sql, params)
                    else:
                        driver.execute(sql, params)
                yield driver
        except psycopg.errors.IntegrityError as exc:
            # As the statement would have raised it had it been sent at once.
            raise IntegrityError(str(exc), None, exc) from exc

    def _begin_here(self, driver: psycopg.Connection[Any]) -> bool:
        """Whether the transaction's BEGIN goes in this pipeline, with its first statements.
        psycopg sends BEGIN on its own and waits for it, even in pipeline mode: a round trip
        of its own, a quarter of a small ingest group's. So the connection is switched to
        autocommit while idle, and BEGIN is queued here instead. From then on the server is in
        the transaction, and psycopg's commit and rollback still end it (they look at the
        server's status, not at autocommit); `Database.transaction` switches it back, or drops
        the connection, before the pool hands it to anybody else."""
        from psycopg.pq import TransactionStatus  # PostgreSQL only

        if driver.autocommit or driver.info.transaction_status != TransactionStatus.IDLE:
            return False
        if driver.isolation_level is not None or driver.read_only is not None:
            return False  # psycopg's BEGIN would say more than ours
        driver.autocommit = True
        self._began_here = driver
        return True

    def end_of_connection_use(self) -> None:
        """Back to psycopg's own BEGIN for the connection's next user (see `_begin_here`);
        a connection that cannot be switched back (its server gone) is dropped instead."""
        driver, self._began_here = self._began_here, None
        if driver is None or self.conn.invalidated:  # a lost connection is not pooled again
            return
        try:
            driver.autocommit = False
        except Exception:
            log.warning("dropping a connection that could not leave autocommit", exc_info=True)
            self.conn.invalidate()

    def flush(self) -> None:
        """Send the deferred writes now (in one round trip), so the rows they lock are taken
        before whatever the caller locks next: every writer locks in the same order."""
        if self._deferred:
            with self.pipelined():
                pass

    def last_write(self, write: LastWrite) -> None:
        """PostgreSQL: make `write` the transaction's last statement, sent with the deferred
        writes and the COMMIT in one round trip (`commit_pipelined`). One per transaction."""
        if self.conn.dialect.name == "sqlite":
            raise RuntimeError("last_write is for PostgreSQL; on SQLite write now")
        if self._last is not None:
            raise RuntimeError("a transaction has one last write")
        self._last = write

    def commit_pipelined(self) -> bool:
        """PostgreSQL: send the deferred writes, the last write and COMMIT in one round trip
        instead of two. True if committed; False if the caller still has to commit (SQLite,
        nothing to send, or the last write's guard failed and its fallback ran instead)."""
        if self.conn.dialect.name == "sqlite" or (not self._deferred and self._last is None):
            return False
        import psycopg  # PostgreSQL only

        driver = self.conn.connection.driver_connection
        assert driver is not None
        last, self._last = self._last, None
        try:
            with self.pipelined():
                if last is not None:
                    driver.execute(f"SAVEPOINT {_BEFORE_LAST}", prepare=False)
                    driver.execute(last.sql, last.params)
                # Never prepared: after a failed last write the server skips it, Parse
                # included, and psycopg would take it for prepared ("… does not exist" ever
                # after).
                driver.execute("COMMIT", prepare=False)
                # Sent (each statement goes out as it is queued): what waits for this
                # transaction's turn may go on while the server runs it and flushes the WAL.
                if last is not None and last.on_sent is not None:
                    last.on_sent()
        except psycopg.Error as exc:
            if exc.sqlstate != GUARD_FAILED or last is None:
                raise
            # The last write's guard: it could not do its work (another writer got there
            # first). Back to before it, still in the transaction, and the fallback instead.
            driver.execute(f"ROLLBACK TO SAVEPOINT {_BEFORE_LAST}", prepare=False)
            last.fallback()
            self.flush()
            return False
        return True


_BEFORE_LAST = "opsloop_before_last_write"
GUARD_FAILED = "OL001"
"""The SQLSTATE of `opsloop_guard(ok, what)` (migration 0019) when `ok` is false: how a last
write says it could not do its work."""


@dataclass(frozen=True)
class LastWrite:
    """A transaction's last statement (`Tx.last_write`), sent with its COMMIT. `sql` fails
    `opsloop_guard` (SQLSTATE `GUARD_FAILED`) when it cannot do its work: it is then undone and
    `fallback` runs instead, in the same transaction."""

    sql: str
    params: dict[str, Any]
    fallback: Callable[[], None]
    on_sent: Callable[[], None] | None = None
    """Runs once the statement and the COMMIT are sent, before their results are back."""


PING_AFTER = 2.0
"""Seconds a pooled PostgreSQL connection may sit unused before it is checked on checkout."""


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only if it sat idle for `PING_AFTER` seconds.
    SQLAlchemy's `pool_pre_ping` checks on every checkout: a round trip per transaction,
    about 5% of a busy server's single-event throughput. A connection in steady use has just
    proved itself; one that sat idle (through a database restart, say) is checked, and a dead
    one is replaced before anybody's statement runs on it."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER:
            return
        try:
            dbapi_connection.execute(";")
            dbapi_connection.rollback()  # the ping's implicit transaction: none is left open
        except Exception as exc:  # the pool drops it and takes (or makes) another
            raise DisconnectionError(f"a pooled connection was dead: {exc}") from exc


def current_tx(conn: Connection) -> Tx | None:
    """The `Database.transaction()` this connection is running, if any."""
    tx: Tx | None = conn.info.get(_TX)
    return tx


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
            kwargs.update(
                pool_size=pool_size,
                max_overflow=pool_size * 2,
                connect_args={"options": POSTGRES_OPTIONS},
            )
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        else:
            _ping_when_idle(self.engine)

    @property
    def backend(self) -> str:
        return "sqlite" if self.is_sqlite else self.url.get_backend_name()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction: commits when the block ends, rolls back if it raises."""
        if self._write_lock is not None:
            self._write_lock.acquire()
        tx: Tx | None = None
        try:
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                tx = Tx(conn)
                # Held: a connection lost mid-transaction refuses `conn.info` until rolled
                # back, and the server's error, not that refusal, is what the caller gets.
                info = conn.info
                try:
                    with conn.begin():
                        info[_TX] = tx
                        try:
                            yield tx
                            for callback in tx._before_commit:
                                callback()
                            if not tx.commit_pipelined():
                                tx.flush()
                        finally:
                            info.pop(_TX, None)
                finally:
                    tx.end_of_connection_use()
            tx.committed = True
        finally:
            if self._write_lock is not None:
                self._write_lock.release()
            if tx is not None and not tx.committed:
                for callback in tx._at_end:
                    callback()
        assert tx is not None
        try:
            for callback in tx._after_commit:
                callback()
        finally:
            for callback in tx._at_end:
                callback()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """One consistent view over many statements, for long reads (`audit verify`): SQLite's
        read transactions are that already; PostgreSQL needs REPEATABLE READ."""
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextmanager
    def raw(self) -> Iterator[Any]:
        """The driver's connection outside any transaction: SQLite's checkpoints and VACUUM
        refuse to run inside one."""
        connection = self.engine.raw_connection()
        try:
            yield connection.driver_connection
        finally:
            connection.close()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (safe to call on every start)."""
        if self._at_head():
            return  # nothing to do, and Alembic stays unloaded
        # Imported here: only a database behind the newest revision needs Alembic's machinery.
        from alembic import command

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

    # --- upkeep (the retention job, `opsloop db ...`) ------------------------------------------

    @property
    def path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL or in memory)."""
        database = self.url.database or ""
        if not self.is_sqlite or not database or database == ":memory:":
            return None
        return Path(database)

    def incremental_vacuum(self, pages: int) -> int:
        """SQLite in `auto_vacuum=INCREMENTAL` mode: give up to `pages` free pages back to the
        file system, in one short write transaction; return how many went."""
        if not self.is_sqlite:
            return 0
        assert self._write_lock is not None
        with self._write_lock, self.raw() as connection:
            before = int(connection.execute("PRAGMA freelist_count").fetchone()[0])
            # Python's execute() steps the pragma once, which frees a single page; a script
            # runs it to the end, as its own transaction.
            connection.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
            after = int(connection.execute("PRAGMA freelist_count").fetchone()[0])
        return before - after

    def checkpoint(self, *, wait_seconds: float = 1.0) -> tuple[int, int, int] | None:
        """SQLite: copy the WAL into the database file and reset the WAL to empty, waiting at
        most `wait_seconds` for readers; (busy, WAL frames, frames copied). None elsewhere."""
        if not self.is_sqlite:
            return None
        with self.raw() as connection:
            connection.execute(f"PRAGMA busy_timeout={int(wait_seconds * 1000)}")
            try:
                busy, frames, copied = connection.execute(
                    "PRAGMA wal_checkpoint(TRUNCATE)"
                ).fetchone()
            finally:
                connection.execute("PRAGMA busy_timeout=30000")
        return int(busy), int(frames), int(copied)

    def vacuum(self) -> None:
        """Rebuild the database: on SQLite, in `auto_vacuum=INCREMENTAL` mode from now on (an
        existing file needs this once), its free pages given back; on PostgreSQL, `VACUUM
        (ANALYZE)`. SQLite writers wait while it runs (it rewrites the whole file)."""
        if self.is_sqlite:
            assert self._write_lock is not None
            with self._write_lock, self.raw() as connection:
                connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
                connection.execute("VACUUM")
            return
        with self.raw() as connection:
            connection.rollback()
            connection.autocommit = True
            try:
                connection.execute("VACUUM (ANALYZE)")
            finally:
                connection.autocommit = False

    def schema_is_current(self) -> bool:
        if self._at_head():
            return True
        # Imported here: `_at_head` answers for a current database without Alembic.
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current == head

    def _at_head(self) -> bool:
        """The database is at the newest revision of `migrations/versions/`, by one query and
        without Alembic. False whenever that cannot be told so simply (no version table yet,
        an older or unknown revision, a branched history): Alembic then decides."""
        head = head_revision()
        if head is None:
            return False
        with self.read() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return False
            rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
        return [row[0] for row in rows] == [head]

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


_REVISION_LINE = re.compile(
    r"""^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(None|"([^"\n]*)"|'([^'\n]*)')\s*$""",
    re.MULTILINE,
)


@cache
def head_revision() -> str | None:
    """The newest revision in `migrations/versions/`, read from each file's `revision` and
    `down_revision` lines without importing Alembic; None when the history is not one simple
    line (a merge, a branch, a line this cannot read), which leaves the answer to Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = {
            match[1]: match[3] if match[3] is not None else match[4]
            for match in _REVISION_LINE.finditer(path.read_text(encoding="utf-8"))
        }
        revision = found.get("revision")
        if revision is None or revision in revisions or "down_revision" not in found:
            return None
        revisions.add(revision)
        if found["down_revision"] is not None:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def alembic_config() -> Config:
    from alembic.config import Config  # Alembic loads only to migrate (see the module's notes)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below); the driver's implicit transactions would get in the way.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # A new file gives space back a little at a time (`PRAGMA incremental_vacuum`, run by
        # the retention job); the mode can only be chosen before anything is written (an
        # existing file changes mode with `opsloop db vacuum`). Setting it on a file that has
        # pages would take the write lock, so only an empty one gets it.
        if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        # A WAL that grew under a burst is cut back to this size when a checkpoint resets it.
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        # FULL: a commit survives power loss, which is what a 2xx to an ingest call promises.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())
