"""Weekly reports: the rows that say a week's report went to someone (claimed before it is
sent), and the named queries a report reads that no other module asks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.store.schema import (
    actions,
    decisions,
    outcomes,
    playbooks,
    report_summaries,
    weekly_reports,
)


def claim(
    conn: Connection, recipient: str, week: str, now: datetime, scope: str = ""
) -> int | None:
    """Record the report of `week` (the business's, or playbook `scope`'s) to `recipient`;
    None when it was sent already."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    statement = (
        insert(weekly_reports)
        .values(recipient=recipient, week=week, sent_at=now, scope=scope)
        .on_conflict_do_nothing(index_elements=["recipient", "week", "scope"])
        .returning(weekly_reports.c.id)
    )
    found = conn.execute(statement).scalar()
    return None if found is None else int(found)


def keep_summary(
    conn: Connection, week: str, text: str, model: str, now: datetime, scope: str = ""
) -> None:
    """Keep the first summary written for `week`'s report (`scope`: '' for the business's,
    else the playbook's own); a second process's is dropped."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    conn.execute(
        insert(report_summaries)
        .values(week=week, scope=scope, text=text, model=model, written_at=now)
        .on_conflict_do_nothing(index_elements=["week", "scope"])
    )


def summary(conn: Connection, week: str, scope: str = "") -> tuple[str, str] | None:
    """(text, model) of the summary kept for `week`'s report (`scope` as for `keep_summary`)."""
    row = conn.execute(
        select(report_summaries.c.text, report_summaries.c.model).where(
            report_summaries.c.week == week, report_summaries.c.scope == scope
        )
    ).first()
    return None if row is None else (str(row.text), str(row.model))


def was_claimed(conn: Connection, recipient: str, week: str, scope: str = "") -> bool:
    query = select(weekly_reports.c.id).where(
        weekly_reports.c.recipient == recipient,
        weekly_reports.c.week == week,
        weekly_reports.c.scope == scope,
    )
    return conn.execute(query).first() is not None


def failed(conn: Connection, report_id: int, error: str) -> None:
    conn.execute(
        update(weekly_reports).where(weekly_reports.c.id == report_id).values(error=error[:1000])
    )


@dataclass(frozen=True, slots=True)
class SentWeek:
    week: str
    recipients: int
    failed: int
    sent_at: datetime


def sent_weeks(conn: Connection) -> list[SentWeek]:
    """The weeks whose report went out, newest first: to how many, how many failed, when."""
    query = (
        select(
            weekly_reports.c.week,
            func.count().label("recipients"),
            func.count(weekly_reports.c.error).label("failed"),
            func.min(weekly_reports.c.sent_at).label("sent_at"),
        )
        .group_by(weekly_reports.c.week)
        .order_by(weekly_reports.c.week.desc())
    )
    return [
        SentWeek(row.week, int(row.recipients), int(row.failed or 0), row.sent_at)
        for row in conn.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    action_id: int
    decision_id: int
    playbook: str
    kind: str
    attempts: int
    last_error: str | None
    failed_at: datetime


def failed_deliveries(
    conn: Connection, since: datetime, until: datetime, playbook: str | None = None
) -> list[FailedDelivery]:
    """Actions dead-lettered (failed for good) in [since, until), oldest first."""
    query = (
        select(
            actions.c.id,
            actions.c.decision_id,
            playbooks.c.name,
            actions.c.kind,
            actions.c.attempts,
            actions.c.last_error,
            actions.c.updated_at,
        )
        .join(decisions, decisions.c.id == actions.c.decision_id)
        .join(playbooks, playbooks.c.id == decisions.c.playbook_id)
        .where(actions.c.status == "dead")
        .where(actions.c.updated_at >= since, actions.c.updated_at < until)
        .order_by(actions.c.updated_at, actions.c.id)
    )
    if playbook is not None:
        query = query.where(playbooks.c.name == playbook)
    return [
        FailedDelivery(
            int(row.id),
            int(row.decision_id),
            row.name,
            row.kind,
            int(row.attempts),
            row.last_error,
            row.updated_at,
        )
        for row in conn.execute(query)
    ]


def busy_playbooks(conn: Connection, since: datetime, until: datetime) -> set[str]:
    """The names of the playbooks with something in [since, until): a decision made, an action
    created or changed (sent, retried, failed), or an outcome that happened or was recorded."""

    def within(column: Any) -> Any:
        return (column >= since) & (column < until)

    decided = select(decisions.c.playbook_id).where(within(decisions.c.created_at))
    acted = (
        select(decisions.c.playbook_id)
        .join(actions, actions.c.decision_id == decisions.c.id)
        .where(or_(within(actions.c.created_at), within(actions.c.updated_at)))
    )
    came_of_it = (
        select(decisions.c.playbook_id)
        .join(outcomes, outcomes.c.decision_id == decisions.c.id)
        .where(or_(within(outcomes.c.occurred_at), within(outcomes.c.created_at)))
    )
    ids = union(decided, acted, came_of_it).subquery()
    query = select(playbooks.c.name).where(playbooks.c.id.in_(select(ids.c.playbook_id)))
    return {str(name) for name in conn.scalars(query)}
