"""The outbox: actions waiting to be delivered, their attempts, and tasks they create.

State machine of an action:

    pending ──claim──► delivering ──ok──► delivered
       ▲                  │
       │                  ├─failed, can retry──► retrying ──(due)──claim──► delivering …
       │                  └─failed for good / attempts used up──► dead
       └──────────── retry by a person (from dead) ◄──────────────────────────┘

A claim is a conditional UPDATE (`WHERE status IN ('pending','retrying')`), so two workers can
never both start the same delivery; the attempt row is written before anything is sent.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, bindparam, func, insert, select, update

from opsloop.core.action_views import ActionRow, AttemptRow, TaskRow
from opsloop.store.bulk import insert_returning_ids
from opsloop.store.schema import action_attempts, actions, tasks

CLAIMABLE = ("pending", "retrying")


def insert_actions(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    return insert_returning_ids(conn, actions, rows)


def _action(row: Any) -> ActionRow:
    # A row of `select(actions)`: the table's columns are ActionRow's keys.
    return cast(ActionRow, dict(row._mapping))


def _attempt(row: Any) -> AttemptRow:
    # A row of `select(action_attempts)`.
    return cast(AttemptRow, dict(row._mapping))


def _task(row: Any) -> TaskRow:
    # A row of `select(tasks)`.
    return cast(TaskRow, dict(row._mapping))


# The statements of every delivery, built once: building a statement and its cache key
# costs more than the driver's round trip on loopback (each delivery runs about ten).
_GET = select(actions).where(actions.c.id == bindparam("action_id"))
_CLAIM = (
    update(actions)
    .where(actions.c.id == bindparam("action_id"), actions.c.status.in_(CLAIMABLE))
    .values(status="delivering", attempts=actions.c.attempts + 1, updated_at=bindparam("now"))
    .returning(*actions.c)
)
_START_ATTEMPT = insert(action_attempts)
_FINISH_ATTEMPT = (  # parameters named apart from the columns, as update() requires
    update(action_attempts)
    .where(
        action_attempts.c.action_id == bindparam("which"),
        action_attempts.c.number == bindparam("attempt"),
    )
    .values(
        outcome=bindparam("how"),
        finished_at=bindparam("at"),
        error=bindparam("failure"),
        retryable=bindparam("can_retry"),
        detail=bindparam("receipt"),
    )
)


def get_action(conn: Connection, action_id: int) -> ActionRow | None:
    row = conn.execute(_GET, {"action_id": action_id}).first()
    return _action(row) if row else None


def claim(conn: Connection, action_id: int, now: datetime) -> ActionRow | None:
    """Take the action for one delivery attempt; None if someone else has it or it is settled.
    The conditional UPDATE returns the claimed row: no second read."""
    row = conn.execute(_CLAIM, {"action_id": action_id, "now": now}).first()
    if row is None:
        return None
    action = _action(row)
    conn.execute(
        _START_ATTEMPT,
        {
            "action_id": action_id,
            "number": action["attempts"],
            "started_at": now,
            "outcome": "started",
        },
    )
    return action


def finish_attempt(
    conn: Connection,
    action_id: int,
    number: int,
    *,
    outcome: str,
    at: datetime,
    error: str | None = None,
    retryable: bool | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        _FINISH_ATTEMPT,
        {
            "which": action_id,
            "attempt": number,
            "how": outcome,
            "at": at,
            "failure": error,
            "can_retry": retryable,
            "receipt": detail,
        },
    )


def set_status(
    conn: Connection,
    action_id: int,
    status: str,
    *,
    at: datetime,
    expect: tuple[str, ...] | None = None,
    **values: Any,
) -> bool:
    query = _set_status(expect, tuple(sorted(values)))
    params = {"which": action_id, "new_status": status, "at": at}
    params.update({f"new_{name}": value for name, value in values.items()})
    return conn.execute(query, params).rowcount == 1


@lru_cache(maxsize=64)
def _set_status(expect: tuple[str, ...] | None, names: tuple[str, ...]) -> Any:
    """The UPDATE for one shape of `set_status` call, built once (see `_GET`)."""
    query = update(actions).where(actions.c.id == bindparam("which"))
    if expect:
        query = query.where(actions.c.status.in_(expect))
    columns: dict[str, Any] = {name: bindparam(f"new_{name}") for name in names}
    return query.values(status=bindparam("new_status"), updated_at=bindparam("at"), **columns)


def actions_of(conn: Connection, decision_id: int) -> list[ActionRow]:
    query = select(actions).where(actions.c.decision_id == decision_id).order_by(actions.c.position)
    return [_action(row) for row in conn.execute(query)]


def attempts_of(conn: Connection, action_ids: list[int]) -> dict[int, list[AttemptRow]]:
    found: dict[int, list[AttemptRow]] = {action_id: [] for action_id in action_ids}
    if not action_ids:
        return found
    query = (
        select(action_attempts)
        .where(action_attempts.c.action_id.in_(action_ids))
        .order_by(action_attempts.c.action_id, action_attempts.c.number)
    )
    for row in conn.execute(query):
        found[row.action_id].append(_attempt(row))
    return found


def list_actions(
    conn: Connection, *, status: str | None = None, limit: int = 50, before_id: int | None = None
) -> list[ActionRow]:
    query = select(actions).order_by(actions.c.id.desc()).limit(limit)
    if status:
        query = query.where(actions.c.status == status)
    if before_id:
        query = query.where(actions.c.id < before_id)
    return [_action(row) for row in conn.execute(query)]


def count_by_status(conn: Connection) -> dict[str, int]:
    query = select(actions.c.status, func.count()).group_by(actions.c.status)
    return dict(conn.execute(query).all())


# --- tasks ---------------------------------------------------------------------------------


def insert_task(conn: Connection, row: dict[str, Any]) -> int:
    new_id: int = conn.execute(insert(tasks).returning(tasks.c.id), row).scalar_one()
    return new_id


def task_for_action(conn: Connection, action_id: int) -> TaskRow | None:
    row = conn.execute(select(tasks).where(tasks.c.action_id == action_id)).first()
    return _task(row) if row else None


def list_tasks(
    conn: Connection,
    *,
    status: str | None = None,
    limit: int = 50,
    assignee: str | None = None,
    due_before: datetime | None = None,
    decision_id: int | None = None,
) -> list[TaskRow]:
    """Tasks, newest first; `due_before` keeps the open ones due before then (overdue)."""
    query = select(tasks).order_by(tasks.c.id.desc()).limit(limit)
    if decision_id is not None:
        query = query.where(tasks.c.decision_id == decision_id)
    if status:
        query = query.where(tasks.c.status == status)
    if assignee is not None:
        query = query.where(func.lower(tasks.c.assignee) == assignee.lower())
    if due_before is not None:
        query = query.where(tasks.c.status == "open", tasks.c.due_at < due_before)
    return [_task(row) for row in conn.execute(query)]


def reassign_task(conn: Connection, task_id: int, assignee: str | None) -> bool:
    result = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == "open")
        .values(assignee=assignee)
    )
    return result.rowcount == 1


def complete_task(conn: Connection, task_id: int, *, by: str, at: datetime) -> bool:
    result = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == "open")
        .values(status="done", completed_at=at, completed_by=by)
    )
    return result.rowcount == 1


def get_task(conn: Connection, task_id: int) -> TaskRow | None:
    row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
    return _task(row) if row else None
