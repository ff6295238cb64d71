"""The language model's books: one `llm_calls` row per call, and the response cache.

`DatabaseLedger` is the `opsloop.reasoning.llm_client.LLMLedger` port over these queries. Each of its
methods is a short transaction of its own, so a slow model never holds the write lock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, case, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.core.llm_calls import ModelUsage
from opsloop.store.schema import llm_cache, llm_calls

if TYPE_CHECKING:
    from opsloop.core.llm_calls import LLMCall
    from opsloop.store.database import Database


def record_call(conn: Connection, call: LLMCall, *, at: datetime) -> int:
    """Append one call to the ledger; return its id."""
    row = {**asdict(call), "created_at": at}
    return int(conn.execute(insert(llm_calls).returning(llm_calls.c.id), row).scalar_one())


def cached_response(conn: Connection, request_hash: str) -> dict[str, Any] | None:
    query = select(llm_cache.c.response).where(llm_cache.c.request_hash == request_hash)
    response: dict[str, Any] | None = conn.execute(query).scalar_one_or_none()
    return response


def cache_response(
    conn: Connection, request_hash: str, model: str, response: dict[str, Any], *, at: datetime
) -> None:
    """Keep a response; a hash already kept is left as it is."""
    conn.execute(
        _cache_statement(conn.dialect.name),
        {"request_hash": request_hash, "model": model, "response": response, "created_at": at},
    )


@functools.cache
def _cache_statement(dialect: str) -> Any:
    insert_ = sqlite_insert if dialect == "sqlite" else pg_insert
    return insert_(llm_cache).on_conflict_do_nothing(index_elements=[llm_cache.c.request_hash])


def list_calls(
    conn: Connection, *, decision_id: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest first."""
    query = select(llm_calls).order_by(llm_calls.c.id.desc()).limit(limit)
    if decision_id is not None:
        query = query.where(llm_calls.c.decision_id == decision_id)
    return [dict(row._mapping) for row in conn.execute(query)]


def usage_totals(conn: Connection, *, since: datetime | None = None) -> dict[str, ModelUsage]:
    """Calls, cache hits, failures, tokens and cost, per model."""
    query = (
        select(
            llm_calls.c.model,
            func.count().label("calls"),
            func.sum(case((llm_calls.c.cached, 1), else_=0)).label("cached"),
            func.sum(case((llm_calls.c.status == "failed", 1), else_=0)).label("failed"),
            func.coalesce(func.sum(llm_calls.c.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(llm_calls.c.completion_tokens), 0).label("completion_tokens"),
            func.sum(llm_calls.c.cost).label("cost"),
        )
        .group_by(llm_calls.c.model)
        .order_by(llm_calls.c.model)
    )
    if since is not None:
        query = query.where(llm_calls.c.created_at >= since)
    # The query's labelled columns are ModelUsage's keys.
    return {row.model: cast(ModelUsage, dict(row._mapping)) for row in conn.execute(query)}


class DatabaseLedger:
    """The LLM ledger and response cache in the OpsLoop database."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    def record_call(self, call: LLMCall) -> None:
        with self.db.transaction() as tx:
            record_call(tx.conn, call, at=self.clock())

    def get_cached(self, request_hash: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            return cached_response(conn, request_hash)

    def put_cached(self, request_hash: str, model: str, response: dict[str, Any]) -> None:
        with self.db.transaction() as tx:
            cache_response(tx.conn, request_hash, model, response, at=self.clock())
