"""Backtests: the history a replay reads in bulk, the decisions and reviews it is compared with,
and the reports it keeps.

A replay reads a subject kind's history once, in one streaming query, into a Polars frame: no
query per subject or per trigger. The query runs on the driver's own cursor (rows come back as
plain tuples, which Polars takes in bulk), and payloads are not decoded row by row: each payload
key a playbook reads comes back as the JSON text of its value, decoded later once per distinct
value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import polars as pl
from sqlalchemy import Connection, bindparam, insert, select

from opsloop.core.backtest_reports import BacktestRow, BacktestRun
from opsloop.store.schema import backtests, decisions, events, reviews
from opsloop.store.types import to_sqlite_text

CHUNK_ROWS = 100_000
_CHUNK = 400  # ids per IN (...): well under SQLite's bound-parameter limit
SAFE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")
"""Payload keys read by name in SQL (others make the replay read whole payloads)."""


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """What a replay reads: events about subjects of `kinds` whose type is in `types` and whose
    time is in (`since`, `until`] (no bound where None), plus every event of those subjects that
    carries traits (profile patches apply whatever their time)."""

    kinds: tuple[str, ...]
    types: tuple[str, ...]
    since: datetime | None
    until: datetime | None
    payload_keys: tuple[str, ...] = ()
    """Top-level payload keys read as the JSON text of their value: column `k:<key>`."""
    payload_types: tuple[str, ...] = ()
    """Event types whose whole payload is read (JSON text): column `payload`, null for others."""
    with_source: bool = False


def history_columns(query: HistoryQuery) -> list[str]:
    names = ["id", "subject", "type", "at", "traits"]
    if query.with_source:
        names.append("source")
    if query.payload_types:
        names.append("payload")
    names.extend(f"k:{key}" for key in query.payload_keys)
    return names


def read_history(
    conn: Connection,
    query: HistoryQuery,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """The events `query` asks for as one frame (unsorted): `id`, `subject`, `type`, `t` (µs
    since the epoch, UTC), `traits` (JSON text or null), and the optional columns. `progress`
    is called with the number of rows read so far after each chunk."""
    names = history_columns(query)
    schema: dict[str, Any] = dict.fromkeys(names, pl.String)
    schema["id"] = pl.Int64
    sqlite = conn.dialect.name == "sqlite"
    schema["at"] = pl.String if sqlite else pl.Datetime("us", "UTC")
    sql, params = (_sqlite_sql if sqlite else _postgres_sql)(query)
    frames = [pl.DataFrame(schema=schema)]
    read = 0
    for rows in _stream(conn, sql, params, chunk_rows, sqlite=sqlite):
        frames.append(pl.DataFrame(rows, schema=schema, orient="row"))
        read += len(rows)
        if progress is not None:
            progress(read)
    frame = pl.concat(frames)
    if sqlite:
        # Stored as fixed-width ISO text (store/types.py); parsed here in bulk.
        moment = pl.col("at").str.to_datetime(format="%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us")
    else:
        moment = pl.col("at")
    return frame.with_columns(moment.dt.epoch("us").alias("t")).drop("at")


def _stream(
    conn: Connection, sql: str, params: Sequence[Any], chunk_rows: int, *, sqlite: bool
) -> Iterator[list[tuple[Any, ...]]]:
    # The driver's cursor inside the caller's transaction: SQLAlchemy's row objects cost more
    # than the query itself at a million rows.
    raw: Any = conn.connection.driver_connection
    # PostgreSQL: a server-side (named) cursor streams instead of loading the result at once.
    cursor = raw.cursor() if sqlite else raw.cursor(name="opsloop_replay")
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk_rows):
            yield rows
    finally:
        cursor.close()


def _sqlite_sql(query: HistoryQuery) -> tuple[str, list[Any]]:
    params: list[Any] = []
    # Events without traits hold JSON `null` there (not SQL NULL).
    columns = ["id", "subject", "type", "occurred_at", "NULLIF(traits, 'null')"]
    if query.with_source:
        columns.append("source")
    if query.payload_types:
        columns.append(
            f"CASE WHEN type IN ({_marks(query.payload_types, params)}) THEN payload END"
        )
    for key in query.payload_keys:
        # `->` gives the value's JSON text (true stays `true`; json_extract would give 1).
        columns.append("payload -> ?")
        params.append(f'$."{key}"')
    where, where_params = _where(query, "?", to_sqlite_text, "traits <> 'null'")
    # NOT INDEXED: the read covers most of the table, where one pass beats index lookups.
    sql = f"SELECT {', '.join(columns)} FROM events NOT INDEXED WHERE {where}"
    return sql, params + where_params


def _postgres_sql(query: HistoryQuery) -> tuple[str, list[Any]]:
    params: list[Any] = []
    columns = ["id", "subject", "type", "occurred_at", "NULLIF(traits, 'null'::jsonb)::text"]
    if query.with_source:
        columns.append("source")
    if query.payload_types:
        types = _marks(query.payload_types, params, "%s")
        columns.append(f"CASE WHEN type IN ({types}) THEN payload::text END")
    for key in query.payload_keys:
        columns.append("(payload -> %s)::text")
        params.append(key)
    where, where_params = _where(query, "%s", lambda at: at, "traits <> 'null'::jsonb")
    return f"SELECT {', '.join(columns)} FROM events WHERE {where}", params + where_params


def _where(
    query: HistoryQuery, mark: str, moment: Callable[[datetime], Any], has_traits: str
) -> tuple[str, list[Any]]:
    params: list[Any] = []
    # substr(): a kind's subjects are most of the table, so no index should be used for it.
    kinds = " OR ".join(f"substr(subject, 1, {len(kind) + 1}) = {mark}" for kind in query.kinds)
    params.extend(f"{kind}:" for kind in query.kinds)
    wanted = [f"type IN ({_marks(query.types, params, mark)})"]
    if query.since is not None:
        wanted.append(f"occurred_at > {mark}")
        params.append(moment(query.since))
    if query.until is not None:
        wanted.append(f"occurred_at <= {mark}")
        params.append(moment(query.until))
    return f"({kinds}) AND (({' AND '.join(wanted)}) OR {has_traits})", params


def _marks(values: Sequence[str], params: list[Any], mark: str = "?") -> str:
    params.extend(values)
    return ", ".join(mark for _ in values)


# --- what the replay is compared with --------------------------------------------------------


_REVIEWS = select(reviews.c.decision_id, reviews.c.verdict, reviews.c.option).order_by(reviews.c.id)
_REVIEWED = (
    select(decisions.c.id, decisions.c.event_id, decisions.c.choice)
    .join(events, events.c.id == decisions.c.event_id)
    .where(
        decisions.c.id.in_(bindparam("ids", expanding=True)),
        decisions.c.playbook_id == bindparam("playbook_id"),
        events.c.occurred_at >= bindparam("since"),
        events.c.occurred_at <= bindparam("until"),
    )
)


def reviewed_decisions(
    conn: Connection, playbook_id: int, *, since: datetime, until: datetime
) -> dict[int, tuple[str | None, str, str | None]]:
    """By triggering event id: (the decision's choice, the verdict, the override's option) of
    this playbook's reviewed decisions on events in [since, until]; the latest review wins."""
    # Reviews are few next to decisions: start from them, then look their decisions up by id.
    latest = {
        decision_id: (verdict, option) for decision_id, verdict, option in conn.execute(_REVIEWS)
    }
    wanted = sorted(latest)
    found: dict[int, tuple[str | None, str, str | None]] = {}
    for start in range(0, len(wanted), _CHUNK):
        params = {
            "ids": wanted[start : start + _CHUNK],
            "playbook_id": playbook_id,
            "since": since,
            "until": until,
        }
        for decision_id, event_id, choice in conn.execute(_REVIEWED, params):
            found[event_id] = (choice, *latest[decision_id])
    return found


def stored_decisions(
    conn: Connection, playbook_version_id: int, *, since: datetime, until: datetime
) -> dict[int, tuple[str | None, float | None]]:
    """By triggering event id: (choice, score) of the decisions this playbook version made on
    events in [since, until]."""
    query = (
        select(decisions.c.event_id, decisions.c.choice, decisions.c.score)
        .join(events, events.c.id == decisions.c.event_id)
        .where(
            decisions.c.playbook_version_id == playbook_version_id,
            events.c.occurred_at >= since,
            events.c.occurred_at <= until,
        )
    )
    return {event_id: (choice, score) for event_id, choice, score in conn.execute(query)}


# --- reports ---------------------------------------------------------------------------------


def insert_backtest(
    conn: Connection,
    *,
    playbook: str,
    content_hash: str,
    since: datetime,
    until: datetime,
    report: BacktestRun,
    created_by: str,
    now: datetime,
) -> int:
    new_id: int = conn.execute(
        insert(backtests).returning(backtests.c.id),
        {
            "playbook": playbook,
            "content_hash": content_hash,
            "since": since,
            "until": until,
            "report": report,
            "created_at": now,
            "created_by": created_by,
        },
    ).scalar_one()
    return new_id


def get_backtest(conn: Connection, backtest_id: int) -> BacktestRow | None:
    row = conn.execute(select(backtests).where(backtests.c.id == backtest_id)).first()
    # A row of `select(backtests)`; its `report` is the BacktestRun `insert_backtest` kept,
    # whose times are ISO text already, so JSON gives it back as it was.
    return cast(BacktestRow, dict(row._mapping)) if row else None
