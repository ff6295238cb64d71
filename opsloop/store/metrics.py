"""Aggregates for the numbers OpsLoop is judged by, per playbook, and the rows the service
splits into weeks and periods (one row per decision, task or rating event)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.engine import Row

from opsloop.store.schema import (
    actions,
    decisions,
    events,
    outcomes,
    playbooks,
    reviews,
    tasks,
)


def decisions_by_status(conn: Connection, since: datetime | None) -> dict[str, dict[str, int]]:
    query = (
        select(playbooks.c.name, decisions.c.status, func.count())
        .join(playbooks, playbooks.c.id == decisions.c.playbook_id)
        .group_by(playbooks.c.name, decisions.c.status)
    )
    if since:
        query = query.where(decisions.c.created_at >= since)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for name, status, count in conn.execute(query):
        counts[name][status] = count
    return counts


def playbook_names(conn: Connection) -> list[dict[str, Any]]:
    query = select(playbooks.c.name, playbooks.c.mode).order_by(playbooks.c.name)
    return [dict(row._mapping) for row in conn.execute(query)]


def decision_facts(conn: Connection, since: datetime | None) -> list[Row[Any]]:
    """One row per decision (made since `since`, by `created_at`): `playbook`, `status`,
    `trigger_at` (when its triggering event occurred), `received_at` (when that event arrived),
    `outcome` (success, failure or None), `delivered_at` (its first delivered action) and
    `verdict` (its review's, or None: an `auto` decision has one when it was sampled and
    reviewed after the fact)."""
    verdict = (
        select(reviews.c.verdict)
        .where(reviews.c.decision_id == decisions.c.id)
        .order_by(reviews.c.id)
        .limit(1)
        .scalar_subquery()
    )
    first_delivery = (
        select(actions.c.decision_id, func.min(actions.c.delivered_at).label("at"))
        .where(actions.c.status == "delivered")
        .group_by(actions.c.decision_id)
        .subquery()
    )
    query = (
        select(
            playbooks.c.name.label("playbook"),
            decisions.c.status,
            events.c.occurred_at.label("trigger_at"),
            events.c.received_at,
            outcomes.c.kind.label("outcome"),
            first_delivery.c.at.label("delivered_at"),
            verdict.label("verdict"),
        )
        .select_from(decisions)
        .join(playbooks, playbooks.c.id == decisions.c.playbook_id)
        .join(events, events.c.id == decisions.c.event_id)
        .outerjoin(outcomes, outcomes.c.decision_id == decisions.c.id)
        .outerjoin(first_delivery, first_delivery.c.decision_id == decisions.c.id)
    )
    if since:
        query = query.where(decisions.c.created_at >= since)
    return list(conn.execute(query))


def task_facts(conn: Connection, since: datetime | None) -> list[Row[Any]]:
    """One row per task created by a decision made since `since`: `playbook`, `trigger_at`,
    `status` (open or done), `created_at` and `completed_at`."""
    query = (
        select(
            playbooks.c.name.label("playbook"),
            events.c.occurred_at.label("trigger_at"),
            tasks.c.status,
            tasks.c.created_at,
            tasks.c.completed_at,
        )
        .select_from(tasks)
        .join(decisions, decisions.c.id == tasks.c.decision_id)
        .join(playbooks, playbooks.c.id == decisions.c.playbook_id)
        .join(events, events.c.id == decisions.c.event_id)
    )
    if since:
        query = query.where(decisions.c.created_at >= since)
    return list(conn.execute(query))


def rating_events(
    conn: Connection, event_type: str, since: datetime | None
) -> list[tuple[datetime, dict[str, Any]]]:
    """(occurred_at, payload) of every event of this type (a CSAT survey answer), oldest first."""
    query = (
        select(events.c.occurred_at, events.c.payload)
        .where(events.c.type == event_type)
        .order_by(events.c.occurred_at, events.c.id)
    )
    if since:
        query = query.where(events.c.occurred_at >= since)
    return [(at, payload) for at, payload in conn.execute(query)]
