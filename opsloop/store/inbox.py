"""The inbox's queries: decisions waiting for a person, in the order a reviewer works them.

"Waiting" is what `GET /api/decisions?status=to_review` lists: pending decisions, plus `auto`
decisions sampled for review that nobody has reviewed yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, and_, case, func, or_, select

from opsloop.core.decisions import Decision
from opsloop.store import decisions as decision_store
from opsloop.store.schema import decisions, playbooks, reviews

InboxOrder = Literal["newest", "urgent"]


def _waiting() -> Any:
    unreviewed = ~select(reviews.c.id).where(reviews.c.decision_id == decisions.c.id).exists()
    # `status = 'auto'` besides `sampled`: only auto decisions are sampled, and it lets the
    # (status, id) index do the work.
    return or_(
        decisions.c.status == "pending",
        and_(decisions.c.status == "auto", decisions.c.sampled.is_(True), unreviewed),
    )


def fetch_waiting(
    conn: Connection, *, playbook: str | None = None, order: InboxOrder = "newest", limit: int = 50
) -> list[Decision]:
    """Waiting decisions. `newest` first, or the most `urgent` first: those that have not run
    yet before the sampled ones that already did, those a guardrail holds first, then the
    highest score, then the longest waiting."""
    query = decision_store._select().where(_waiting()).limit(limit)
    if playbook:
        query = query.where(playbooks.c.name == playbook)
    if order == "urgent":
        not_run_yet = case((decisions.c.status == "pending", 0), else_=1)
        held = case((decisions.c.needs_approval.is_(True), 0), else_=1)
        no_score = case((decisions.c.score.is_(None), 1), else_=0)
        query = query.order_by(
            not_run_yet, held, no_score, decisions.c.score.desc(), decisions.c.id
        )
    else:
        query = query.order_by(decisions.c.id.desc())
    return [decision_store._decision(conn, row) for row in conn.execute(query)]


def count_waiting(conn: Connection) -> dict[str, int]:
    """How many decisions wait, per playbook name (playbooks with none are left out)."""
    query = (
        select(playbooks.c.name, func.count())
        .select_from(decisions.join(playbooks, playbooks.c.id == decisions.c.playbook_id))
        .where(_waiting())
        .group_by(playbooks.c.name)
        .order_by(playbooks.c.name)
    )
    return {name: int(count) for name, count in conn.execute(query)}


def pending_since(conn: Connection) -> list[tuple[str, datetime]]:
    """(playbook name, created_at) of every decision that waits for a person before it acts,
    oldest first: what review deadlines and digests count."""
    query = (
        select(playbooks.c.name, decisions.c.created_at)
        .select_from(decisions.join(playbooks, playbooks.c.id == decisions.c.playbook_id))
        .where(decisions.c.status == "pending")
        .order_by(decisions.c.created_at)
    )
    return [(str(name), at) for name, at in conn.execute(query)]
