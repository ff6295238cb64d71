"""Sequences: a chosen option's steps, run one at a time (opsloop/service/deliver/sequences.py)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from opsloop.store.schema import sequences

OPEN = ("active", "waiting")
"""A sequence that has steps still to run."""


def add(conn: Connection, row: dict[str, Any]) -> int:
    return int(conn.execute(insert(sequences).returning(sequences.c.id), row).scalar_one())


def get(conn: Connection, sequence_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    """One sequence; `lock` holds its row (PostgreSQL) until the transaction ends, so a step and
    an event that stops the sequence never both go ahead."""
    query = select(sequences).where(sequences.c.id == sequence_id)
    if lock and conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else dict(row._mapping)


def change(conn: Connection, sequence_id: int, **values: Any) -> None:
    conn.execute(update(sequences).where(sequences.c.id == sequence_id).values(**values))


def open_count(conn: Connection, subject: str) -> int:
    query = select(func.count()).where(sequences.c.subject == subject, sequences.c.status.in_(OPEN))
    return int(conn.execute(query).scalar_one())


def open_for(conn: Connection, subjects: Collection[str]) -> list[dict[str, Any]]:
    """The open sequences of these subjects, oldest first."""
    if not subjects:
        return []
    query = (
        select(sequences)
        .where(sequences.c.subject.in_(sorted(subjects)), sequences.c.status.in_(OPEN))
        .order_by(sequences.c.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def listing(
    conn: Connection,
    *,
    status: str | None = None,
    playbook: str | None = None,
    subject: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    query = select(sequences).order_by(sequences.c.id.desc()).limit(limit)
    if status == "open":
        query = query.where(sequences.c.status.in_(OPEN))
    elif status is not None:
        query = query.where(sequences.c.status == status)
    if playbook is not None:
        query = query.where(sequences.c.playbook == playbook)
    if subject is not None:
        query = query.where(sequences.c.subject == subject)
    return [dict(row._mapping) for row in conn.execute(query)]


def counts(conn: Connection, playbook: str | None = None) -> dict[str, int]:
    """Sequences by status."""
    query = select(sequences.c.status, func.count()).group_by(sequences.c.status)
    if playbook is not None:
        query = query.where(sequences.c.playbook == playbook)
    return {str(status): int(n) for status, n in conn.execute(query)}


def ended(values: dict[str, Any], status: str, now: datetime, reason: str | None) -> None:
    values.update(status=status, ended_at=now, updated_at=now, next_at=None, stop_reason=reason)
