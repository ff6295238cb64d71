"""The SQL connector on real SQLite and PostgreSQL tables: batches, an incremental column that
carries over between runs, changed rows as new events, and no row lost at a batch's edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from opsloop.core.errors import InvalidInput, PlaybookInvalid, Unavailable
from opsloop.core.sources import SourceSpec, parse_source
from opsloop.perception.connectors import fetch
from opsloop.service import OpsLoop
from tests.conftest import OpsFactory

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
table = sa.Table(
    "shop_orders",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(100), nullable=False),
    sa.Column("total", sa.Numeric(10, 2), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def sql_yaml(url: str, *, op: str = ">=", batch: int = 2, query: str | None = None) -> str:
    query = query or (
        "SELECT id, email, total, updated_at FROM shop_orders "
        f"WHERE updated_at {op} :cursor ORDER BY updated_at, id"
    )
    return f"""\
name: shopdb
kind: sql
mapping:
  type: order.updated
  subject: "'customer:' + email"
  occurred_at: updated_at
  payload:
    total: total
sql:
  url: "{url}"
  query: "{query}"
  cursor: updated_at
  cursor_start: "1970-01-01"
  batch_size: {batch}
"""


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    table.create(engine)
    return engine


def put(engine: sa.Engine, *rows: tuple[int, str, str, datetime]) -> None:
    with engine.begin() as conn:
        for id_, email, total, at in rows:
            conn.execute(sa.delete(table).where(table.c.id == id_))
            conn.execute(
                sa.insert(table).values(id=id_, email=email, total=Decimal(total), updated_at=at)
            )


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


@pytest.fixture
def ops(make_ops: OpsFactory, database_url: str, engine: sa.Engine) -> OpsLoop:
    ops = make_ops(database_url)
    ops.ingest.add_source(sql_yaml(database_url), "shopdb.yaml", actor="test")
    return ops


def keys(ops: OpsLoop) -> list[str]:
    return sorted(
        e["idempotency_key"] for e in ops.ingest.list_events(limit=100) if e["source"] == "shopdb"
    )


def test_rows_are_read_in_batches_and_the_next_sync_reads_only_what_changed(
    ops: OpsLoop, engine: sa.Engine
) -> None:
    put(engine, (1, "a@x.co", "10.50", minutes(1)), (2, "b@x.co", "20", minutes(2)))
    put(engine, (3, "c@x.co", "30", minutes(3)))
    first = ops.ingest.sync_source("shopdb", actor="test")
    assert (first.status, first.rows_in, first.events_stored) == ("ok", 3, 3), first.error
    [event] = ops.ingest.list_events(subject="customer:a@x.co")
    assert event["payload"] == {"total": 10.5}
    assert event["occurred_at"] == minutes(1)

    put(engine, (2, "b@x.co", "25", minutes(10)), (4, "d@x.co", "40", minutes(11)))
    second = ops.ingest.sync_source("shopdb", actor="test")
    # Row 3 is at the edge (>= the cursor): read again and stored once.
    assert (second.rows_in, second.events_stored, second.duplicates) == (3, 2, 1)
    assert len(keys(ops)) == 5
    assert sum(k.startswith("2@") for k in keys(ops)) == 2, "a changed row is a new event"
    assert ops.ingest.get_source("shopdb").checkpoint is not None


def test_a_run_resumed_between_batches_loses_no_row_sharing_the_edge_value(
    database_url: str, engine: sa.Engine
) -> None:
    put(
        engine,
        (1, "a@x.co", "1", minutes(1)),
        (2, "b@x.co", "2", minutes(2)),
        (3, "c@x.co", "3", minutes(2)),
        (4, "d@x.co", "4", minutes(3)),
    )
    spec: SourceSpec = parse_source(sql_yaml(database_url, op=">"), "shopdb.yaml")[0]
    batches = list(fetch(spec, None, None))
    assert [[r.data["id"] for r in b.records] for b in batches if b.records] == [[1, 2], [3, 4]]
    # Killed after the first batch: row 3 shares row 2's time, so that time is not safe yet.
    resumed = list(fetch(spec, None, batches[0].checkpoint))
    assert [r.data["id"] for b in resumed for r in b.records] == [2, 3, 4]
    assert not [r for b in fetch(spec, None, batches[-1].checkpoint) for r in b.records]


def test_a_query_that_fails_ends_the_run_with_the_databases_reason(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    ops.ingest.add_source(sql_yaml(database_url), "shopdb.yaml", actor="test")
    run = ops.ingest.sync_source("shopdb", actor="test")
    assert run.status == "failed"
    assert "the sql query failed" in (run.error or "")
    assert "shop_orders" in (run.error or "")


def test_a_query_without_the_key_column_says_which_columns_it_gives(
    database_url: str, engine: sa.Engine
) -> None:
    query = "SELECT email, updated_at FROM shop_orders WHERE updated_at > :cursor"
    spec = parse_source(sql_yaml(database_url, query=query), "x.yaml")[0]
    with pytest.raises(InvalidInput, match="no column 'id' \\(it gives email, updated_at\\)"):
        list(fetch(spec, None, None))


def test_an_incremental_query_must_use_the_cursor_and_say_where_it_starts() -> None:
    text = "name: x\nkind: sql\nsql:\n  url: sqlite://\n  query: SELECT 1\n  cursor: at\n"
    with pytest.raises(PlaybookInvalid, match=":cursor"):
        parse_source(text, "x.yaml")
    with pytest.raises(PlaybookInvalid, match="cursor_start"):
        parse_source(text.replace("SELECT 1", "SELECT 1 WHERE at > :cursor"), "x.yaml")


def test_an_unreachable_database_is_a_failure_to_retry() -> None:
    text = (
        "name: x\nkind: sql\nsql:\n  url: postgresql+psycopg://u@127.0.0.1:9/db\n"
        "  query: SELECT 1 AS id\n"
    )
    with pytest.raises(Unavailable) as caught:
        list(fetch(parse_source(text, "x.yaml")[0], "secret-pass", None))
    assert caught.value.retryable
    assert "secret-pass" not in str(caught.value)
