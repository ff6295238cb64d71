"""Migrations build exactly the schema `opsloop.store.schema` describes, on SQLite and on
PostgreSQL, starting from an empty database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from opsloop.store import audit as audit_store
from opsloop.store.database import Database, alembic_config, head_revision
from opsloop.store.schema import audit, metadata
from tests.conftest import PG_URL

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with nothing in it, not even the migrations' bookkeeping table."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        yield db
        db.dispose()
        return
    request.getfixturevalue("pg_template")  # skips (or fails in CI) without PostgreSQL
    name = f"opsloop_empty_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db = Database(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    yield db
    db.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def ours(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    """Procrastinate's tables are its own (applied from its schema.sql by migration 0009)."""
    table = obj if kind == "table" else getattr(obj, "table", None)
    return not (table is not None and str(table.name).startswith("procrastinate_"))


def schema_diff(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": ours}
        )
        return list(compare_metadata(context, metadata))


def schema_snapshot(db: Database) -> dict[str, Any]:
    inspector = sa.inspect(db.engine)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "indexes": sorted(i["name"] or "" for i in inspector.get_indexes(table)),
            "unique": sorted(u["name"] or "" for u in inspector.get_unique_constraints(table)),
            "foreign_keys": sorted(f["name"] or "" for f in inspector.get_foreign_keys(table)),
        }
        for table in sorted(inspector.get_table_names())
    }


def test_migrating_an_empty_database_builds_exactly_the_table_metadata(empty_db: Database) -> None:
    empty_db.migrate()

    assert schema_diff(empty_db) == []
    tables = set(sa.inspect(empty_db.engine).get_table_names())
    procrastinate = {t for t in tables if t.startswith("procrastinate_")}
    assert tables - procrastinate == set(metadata.tables) | {"alembic_version"}
    if empty_db.is_sqlite:
        assert procrastinate == set()
    else:
        assert procrastinate == {
            "procrastinate_jobs",
            "procrastinate_events",
            "procrastinate_periodic_defers",
            "procrastinate_workers",
        }


def test_the_schema_is_current_only_after_migrating(empty_db: Database) -> None:
    assert empty_db.schema_is_current() is False
    empty_db.migrate()
    assert empty_db.schema_is_current() is True


def test_the_newest_revision_read_without_alembic_is_the_one_alembic_reads() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_a_database_one_revision_behind_is_not_current_until_migrated(empty_db: Database) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_revision(script.get_current_head())
    assert isinstance(head.down_revision, str)
    with empty_db.engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, head.down_revision)
        conn.commit()

    assert empty_db.schema_is_current() is False
    empty_db.migrate()
    assert empty_db.schema_is_current() is True
    assert schema_diff(empty_db) == []


def test_migrating_twice_changes_nothing(empty_db: Database) -> None:
    empty_db.migrate()
    with empty_db.transaction() as tx:
        audit_store.record(
            tx.conn, at=AT, actor="ana", verb="apply", object_type="playbook", object_id=1
        )
    before = schema_snapshot(empty_db)

    empty_db.migrate()

    assert schema_snapshot(empty_db) == before
    assert empty_db.schema_is_current() is True
    with empty_db.read() as conn:
        assert [row["actor"] for row in audit_store.recent(conn)] == ["ana"]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(sa.update(audit).values(actor="mallory"), id="update"),
        pytest.param(sa.delete(audit), id="delete"),
    ],
)
def test_the_audit_trail_refuses_to_be_rewritten(empty_db: Database, statement: Any) -> None:
    empty_db.migrate()
    with empty_db.transaction() as tx:
        audit_store.record(
            tx.conn,
            at=AT,
            actor="ana",
            verb="approve",
            object_type="decision",
            object_id=7,
            detail={"choice": "call"},
        )

    with pytest.raises(sa.exc.DBAPIError, match="append-only"), empty_db.transaction() as tx:
        tx.conn.execute(statement)

    with empty_db.read() as conn:
        [entry] = audit_store.trail(conn, "decision", 7)
    assert entry["actor"] == "ana"
    assert entry["detail"] == {"choice": "call"}
    assert entry["at"] == AT
