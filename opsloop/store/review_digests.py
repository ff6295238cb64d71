"""Review digests sent: one per recipient per period, claimed before it is sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.store.schema import review_digests


def claim(
    conn: Connection,
    recipient: str,
    period_start: datetime,
    waiting: int,
    overdue: int,
    now: datetime,
) -> int | None:
    """Record the digest of `recipient` for the period; None when it was sent already."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    statement = (
        insert(review_digests)
        .values(
            recipient=recipient,
            period_start=period_start,
            waiting=waiting,
            overdue=overdue,
            sent_at=now,
        )
        .on_conflict_do_nothing(index_elements=["recipient", "period_start"])
        .returning(review_digests.c.id)
    )
    found = conn.execute(statement).scalar()
    return None if found is None else int(found)


def failed(conn: Connection, digest_id: int, error: str) -> None:
    conn.execute(
        update(review_digests).where(review_digests.c.id == digest_id).values(error=error[:1000])
    )
