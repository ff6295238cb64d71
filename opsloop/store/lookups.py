"""Finding records by what a person remembers of them: a subject by its key or a trait value
(`1042`, `ana@example.com`), events by a value in their payload. The operations chat asks these
(opsloop/service/ask/chat_tools.py); the pages look records up by id instead.

Matching ignores case and treats `%` and `_` in the text literally, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, String, case, func, or_, select
from sqlalchemy import cast as sql_cast

from opsloop.core.event_views import Entity
from opsloop.core.events import Event
from opsloop.store.events import as_event
from opsloop.store.schema import entities, events


def find_subjects(conn: Connection, text: str, *, limit: int = 10) -> list[Entity]:
    """Entities whose subject is `text`, ends in `:text`, or contains it, or whose traits
    mention it; exact matches first, then the most recently seen."""
    wanted = text.strip().lower()
    if not wanted:
        return []
    subject = func.lower(entities.c.subject)
    traits = func.lower(sql_cast(entities.c.traits, String))
    rank = case(
        (subject == wanted, 0),
        (subject.endswith(":" + wanted, autoescape=True), 1),
        (subject.contains(wanted, autoescape=True), 2),
        else_=3,
    )
    query = (
        select(entities)
        .where(
            or_(
                subject.contains(wanted, autoescape=True),
                traits.contains(wanted, autoescape=True),
            )
        )
        .order_by(rank, entities.c.last_seen_at.desc(), entities.c.subject)
        .limit(limit)
    )
    # Rows of `select(entities)`: the table's columns are Entity's keys.
    return [cast(Entity, dict(row._mapping)) for row in conn.execute(query)]


def events_mentioning(conn: Connection, text: str, *, limit: int = 10) -> list[Event]:
    """The newest events whose subject or payload mentions `text`."""
    wanted = text.strip().lower()
    if not wanted:
        return []
    payload = func.lower(sql_cast(events.c.payload, String))
    query = (
        select(events)
        .where(
            or_(
                func.lower(events.c.subject).contains(wanted, autoescape=True),
                payload.contains(wanted, autoescape=True),
            )
        )
        .order_by(events.c.id.desc())
        .limit(limit)
    )
    return [as_event(row) for row in conn.execute(query)]
