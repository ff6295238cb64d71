"""Outcomes: what happened after a decision, linked by subject and time window.

Linking runs in both directions, so the order in which work happens does not matter: an
outcome event links to the decisions already made, and a new decision links to outcome events
already stored (a batch may carry a lead and its won deal together).
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.core.decision_views import OutcomeRow
from opsloop.store.schema import decisions, events, outcomes


def open_decisions(
    conn: Connection, playbook_id: int, subject: str, *, since: datetime, until: datetime
) -> list[tuple[int, datetime]]:
    """(decision id, trigger time) of decisions without an outcome whose trigger event occurred
    in [since, until]."""
    query = (
        select(decisions.c.id, events.c.occurred_at)
        .join(events, events.c.id == decisions.c.event_id)
        .outerjoin(outcomes, outcomes.c.decision_id == decisions.c.id)
        .where(
            decisions.c.playbook_id == playbook_id,
            decisions.c.subject == subject,
            decisions.c.status != "error",
            outcomes.c.id.is_(None),
            events.c.occurred_at >= since,
            events.c.occurred_at <= until,
        )
    )
    return [(decision_id, at) for decision_id, at in conn.execute(query)]


def link(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert outcome rows; a decision that already has an outcome keeps it."""
    if not rows:
        return
    conn.execute(_link_statement(conn.dialect.name), rows)


@functools.cache
def _link_statement(dialect: str) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return insert(outcomes).on_conflict_do_nothing(index_elements=[outcomes.c.decision_id])


def close_expired(conn: Connection, playbook_id: int, within: timedelta, now: datetime) -> int:
    """Record a failure for every decision whose outcome window has closed without success."""
    deadline = now - within
    expired = (
        select(
            decisions.c.id,
            literal(None).label("event_id"),
            literal("failure").label("kind"),
            events.c.occurred_at,
        )
        .join(events, events.c.id == decisions.c.event_id)
        .outerjoin(outcomes, outcomes.c.decision_id == decisions.c.id)
        .where(
            decisions.c.playbook_id == playbook_id,
            decisions.c.status != "error",
            outcomes.c.id.is_(None),
            events.c.occurred_at < deadline,
        )
    )
    rows = [
        {
            "decision_id": decision_id,
            "event_id": None,
            "kind": "failure",
            "occurred_at": trigger_at + within,
            "after_seconds": within.total_seconds(),
            "created_at": now,
        }
        for decision_id, _, _, trigger_at in conn.execute(expired)
    ]
    link(conn, rows)
    return len(rows)


def outcome_of(conn: Connection, decision_id: int) -> OutcomeRow | None:
    row = conn.execute(select(outcomes).where(outcomes.c.decision_id == decision_id)).first()
    # A row of `select(outcomes)`: the table's columns are OutcomeRow's keys.
    return cast(OutcomeRow, dict(row._mapping)) if row else None


def count_outcomes(conn: Connection) -> dict[str, int]:
    query = select(outcomes.c.kind, func.count()).group_by(outcomes.c.kind)
    return dict(conn.execute(query).all())
