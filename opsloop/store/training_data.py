"""The ledger read as training data: reviewed decisions, triggering events, traits as of a time.

Only reads; the learning layer (`opsloop.learning.datasets`) turns these rows into labelled
examples.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, select

from opsloop.core.events import Event
from opsloop.store.events import as_event
from opsloop.store.explanations import DICTIONARIES
from opsloop.store.schema import decisions, events, reviews

_CHUNK = 400

# The latest review of each decision (a decision is reviewed once; latest keeps it well defined).
_LAST_REVIEW = select(func.max(reviews.c.id).label("id")).group_by(reviews.c.decision_id).subquery()

_REVIEWED = (
    select(
        decisions.c.id,
        decisions.c.subject,
        decisions.c.choice,
        decisions.c.playbook_version_id,
        decisions.c.detail,
        decisions.c.created_at,
        reviews.c.verdict,
        reviews.c.option,
    )
    .join(reviews, reviews.c.decision_id == decisions.c.id)
    .join(_LAST_REVIEW, _LAST_REVIEW.c.id == reviews.c.id)
    .where(decisions.c.playbook_id == bindparam("playbook_id"), decisions.c.status != "error")
    .order_by(decisions.c.created_at, decisions.c.id)
)

_TRAIT_PATCHES = (
    select(events.c.subject, events.c.id, events.c.traits)
    .where(events.c.subject.in_(bindparam("subjects", expanding=True)))
    .order_by(events.c.id)
)


def reviewed_decisions(conn: Connection, playbook_id: int) -> list[dict[str, Any]]:
    """Every decision of the playbook that a person reviewed, oldest first, with its verdict
    and (for an override) the option the person chose. Unreviewed decisions are not here."""
    found = []
    for row in conn.execute(_REVIEWED, {"playbook_id": playbook_id}):
        decision = dict(row._mapping)
        version, detail = decision.pop("playbook_version_id"), decision.pop("detail")
        decision["inputs"] = DICTIONARIES.decode(conn, version, bytes(detail))[0]
        found.append(decision)
    return found


def trigger_events(
    conn: Connection, types: list[str], subject_kind: str, *, until: datetime | None = None
) -> list[Event]:
    """Events of these types about subjects of this kind, oldest first, whether or not a
    playbook decided on them (imported history has no decisions)."""
    query = (
        select(events)
        .where(
            events.c.type.in_(types),
            events.c.subject.startswith(f"{subject_kind}:", autoescape=True),
        )
        .order_by(events.c.occurred_at, events.c.id)
    )
    if until is not None:
        query = query.where(events.c.occurred_at <= until)
    return [as_event(row) for row in conn.execute(query)]


def trait_patches(
    conn: Connection, subjects: list[str]
) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Per subject, (event id, trait patch) of its events that carried traits, in the order
    they were stored: merged up to a trigger they give the profile as it stood when the
    trigger was stored, not as it is now."""
    found: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for start in range(0, len(subjects), _CHUNK):
        chunk = {"subjects": subjects[start : start + _CHUNK]}
        for subject, event_id, traits in conn.execute(_TRAIT_PATCHES, chunk):
            if traits:
                found[subject].append((event_id, traits))
    return found


def events_state(
    conn: Connection,
    subject_kind: str,
    *,
    until: datetime,
    types: list[str] | None = None,
    closed_types: list[str] | None = None,
    closed_until: datetime | None = None,
) -> list[int]:
    """A cheap summary of the events a training set is built from: how many there are about
    subjects of this kind (of these `types`, or of any), the largest id, how many occurred by
    `until`, and how many of `closed_types` occurred by `closed_until` (triggers whose outcome
    window has closed). Events are never edited, so while these stay the same, the rows built
    from them stay the same: training can say "nothing to learn" without reading them."""
    occurred = case((events.c.occurred_at <= until, 1), else_=0)
    columns = [func.count(events.c.id), func.max(events.c.id), func.sum(occurred)]
    if closed_types is not None and closed_until is not None:
        closed = (events.c.type.in_(closed_types)) & (events.c.occurred_at <= closed_until)
        columns.append(func.sum(case((closed, 1), else_=0)))
    query = select(*columns).where(events.c.subject.startswith(f"{subject_kind}:", autoescape=True))
    if types is not None:
        query = query.where(events.c.type.in_(types))
    row = conn.execute(query).one()
    return [int(value or 0) for value in row]


def reviews_state(conn: Connection, playbook_id: int) -> list[int]:
    """How many reviews the playbook's decisions have, and the largest review id: while these
    stay the same, so do the reviewed-decision labels."""
    row = conn.execute(
        select(func.count(reviews.c.id), func.max(reviews.c.id))
        .join(decisions, decisions.c.id == reviews.c.decision_id)
        .where(decisions.c.playbook_id == playbook_id)
    ).one()
    return [int(value or 0) for value in row]
