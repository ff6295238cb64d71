"""Aggregates for the four numbers OpsLoop is judged by, per playbook."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from opsloop.core.decisions import ACTED_STATUSES
from opsloop.store.tables import actions, decisions, events, outcomes, playbooks


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


def outcomes_of_acted(conn: Connection, since: datetime | None) -> dict[str, dict[str, int]]:
    """Per playbook, outcome counts (success/failure) of decisions that were acted on."""
    query = (
        select(playbooks.c.name, outcomes.c.kind, func.count())
        .join(decisions, decisions.c.id == outcomes.c.decision_id)
        .join(playbooks, playbooks.c.id == decisions.c.playbook_id)
        .where(decisions.c.status.in_(sorted(ACTED_STATUSES)))
        .group_by(playbooks.c.name, outcomes.c.kind)
    )
    if since:
        query = query.where(decisions.c.created_at >= since)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for name, kind, count in conn.execute(query):
        counts[name][kind] = count
    return counts


def action_delays(
    conn: Connection, since: datetime | None, limit: int = 20000
) -> dict[str, list[float]]:
    """Per playbook, seconds from receiving the triggering event to the decision's first
    delivered action (most recent decisions first, capped at `limit`)."""
    first_delivery = (
        select(actions.c.decision_id, func.min(actions.c.delivered_at).label("at"))
        .where(actions.c.status == "delivered")
        .group_by(actions.c.decision_id)
        .subquery()
    )
    query = (
        select(playbooks.c.name, events.c.received_at, first_delivery.c.at)
        .select_from(decisions)
        .join(first_delivery, first_delivery.c.decision_id == decisions.c.id)
        .join(events, events.c.id == decisions.c.event_id)
        .join(playbooks, playbooks.c.id == decisions.c.playbook_id)
        .order_by(decisions.c.id.desc())
        .limit(limit)
    )
    if since:
        query = query.where(decisions.c.created_at >= since)
    delays: dict[str, list[float]] = defaultdict(list)
    for name, received_at, delivered_at in conn.execute(query):
        delays[name].append(max((delivered_at - received_at).total_seconds(), 0.0))
    return delays


def playbook_names(conn: Connection) -> list[dict[str, Any]]:
    query = select(playbooks.c.name, playbooks.c.mode).order_by(playbooks.c.name)
    return [dict(row._mapping) for row in conn.execute(query)]
