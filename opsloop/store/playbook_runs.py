"""Runs of scheduled playbooks: each (playbook, due time) is claimed once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.store.schema import entities, playbook_runs


def claim(conn: Connection, playbook_id: int, due_at: datetime, now: datetime) -> int | None:
    """Record the run of `playbook_id` due at `due_at`; return its id, or None when that run
    was claimed already (by this process before a restart, or by another one)."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    statement = (
        insert(playbook_runs)
        .values(
            playbook_id=playbook_id,
            due_at=due_at,
            status="queued",
            subjects=0,
            selected=0,
            decided=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["playbook_id", "due_at"])
        .returning(playbook_runs.c.id)
    )
    found = conn.execute(statement).scalar()
    return None if found is None else int(found)


def finish(
    conn: Connection,
    run_id: int,
    now: datetime,
    *,
    status: str = "done",
    subjects: int = 0,
    selected: int = 0,
    decided: int = 0,
) -> None:
    """End a run (`done`, or `skipped`: a new schedule's first due time) with its counts."""
    conn.execute(
        update(playbook_runs)
        .where(playbook_runs.c.id == run_id)
        .values(
            status=status,
            finished_at=now,
            subjects=subjects,
            selected=selected,
            decided=decided,
        )
    )


def get(conn: Connection, run_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(playbook_runs).where(playbook_runs.c.id == run_id)).first()
    return None if row is None else dict(row._mapping)


def recent(conn: Connection, playbook_id: int, limit: int = 10) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(playbook_runs)
        .where(playbook_runs.c.playbook_id == playbook_id)
        .order_by(playbook_runs.c.due_at.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def subjects_of_kind(conn: Connection, kind: str, *, after: str, limit: int) -> list[str]:
    """The next `limit` subjects of `kind` after `after`, in order (a run pages through them)."""
    rows = conn.execute(
        select(entities.c.subject)
        .where(entities.c.kind == kind, entities.c.subject > after)
        .order_by(entities.c.subject)
        .limit(limit)
    )
    return [str(subject) for subject in rows.scalars()]
