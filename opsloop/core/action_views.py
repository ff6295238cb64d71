"""Actions, their delivery attempts and the tasks they create, as the store reads them and the
service hands them to the edges (`GET /api/actions`, the actions page, `opsloop actions`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict

from opsloop.core.decisions import ActionStatus

AttemptOutcome = Literal["started", "ok", "failed", "interrupted"]
TaskStatus = Literal["open", "done"]


class ActionRow(TypedDict):
    """One `actions` row: a side effect of a decision and where its delivery stands."""

    id: int
    decision_id: int
    position: int
    """Its place among the option's actions."""
    kind: str
    """`email`, `webhook`, `notify`, `task`, `update_traits` …"""
    request: dict[str, Any]
    """What is sent, rendered; its keys depend on the kind (`to`/`subject`/`body` for an
    email, `url`/`body` for a webhook …), or `render_error`."""
    guarded: bool
    """It waits for a person's approval whatever the mode."""
    status: ActionStatus
    attempts: int
    idempotency_key: str
    next_attempt_at: datetime | None
    last_error: str | None
    result: dict[str, Any] | None
    """The channel's receipt once delivered; its keys depend on the channel."""
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class AttemptRow(TypedDict):
    """One `action_attempts` row: one try at delivering an action."""

    id: int
    action_id: int
    number: int
    started_at: datetime
    finished_at: datetime | None
    outcome: AttemptOutcome
    error: str | None
    retryable: bool | None
    detail: dict[str, Any] | None
    """The channel's receipt of a successful attempt; its keys depend on the channel."""


class ActionDetail(ActionRow):
    """An action with every delivery attempt, oldest first."""

    attempt_log: list[AttemptRow]


class TaskRow(TypedDict):
    """One `tasks` row: the work a `task` action gave a person."""

    id: int
    action_id: int
    decision_id: int
    subject: str
    title: str
    notes: str | None
    assignee: str | None
    due_at: datetime | None
    status: TaskStatus
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
