"""The operations chat's log: one `questions` row per question asked, with who asked it, how it
was answered, the tools used, the records cited and the language model's cost
(opsloop/service/ask/chat.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from opsloop.store.schema import questions


def record_question(conn: Connection, row: dict[str, Any]) -> int:
    """Append one question; return its id. `row` holds the table's columns but `id`."""
    return int(conn.execute(insert(questions).returning(questions.c.id), row).scalar_one())


def list_questions(
    conn: Connection, *, asked_by: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Newest first; one person's (or token's) when `asked_by` is given."""
    query = select(questions).order_by(questions.c.id.desc()).limit(limit)
    if asked_by is not None:
        query = query.where(questions.c.asked_by == asked_by)
    return [dict(row._mapping) for row in conn.execute(query)]
