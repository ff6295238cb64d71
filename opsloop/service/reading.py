"""Read models: what the API, CLI and (later) the web pages show about the ledger."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

from opsloop.core.action_views import ActionDetail, ActionRow, AttemptRow, TaskRow
from opsloop.core.decision_views import (
    DecisionDetail,
    DecisionFields,
    DecisionInputs,
    DecisionRecord,
    DecisionSummary,
)
from opsloop.core.decisions import Decision
from opsloop.core.errors import Conflict, NotFound
from opsloop.core.event_views import Entity, EventView
from opsloop.core.events import Event
from opsloop.core.explanations import Explanation
from opsloop.core.quarantine import QuarantinedItem, readable
from opsloop.service.context import Context
from opsloop.store import actions as action_store
from opsloop.store import audit
from opsloop.store import decisions as decision_store
from opsloop.store import events as event_store
from opsloop.store import metrics as metric_store
from opsloop.store import outcomes as outcome_store
from opsloop.store import quarantine as quarantine_store

LEDGER_BOOKKEEPING = frozenset(
    {"action.queued", "action.sending", "action.sealed", "decision.sealed"}
)
"""Audit rows written so the ledger can check every state of an action (created, an attempt
started) and rows the upgrade that sealed an older ledger added. They are in the trail
`opsloop audit verify` walks; a decision's story shows what people and deliveries did:
reviews, deliveries, retries, cancellations."""


@dataclass(frozen=True, slots=True)
class LedgerCounts:
    """What `/metrics` exposes, read in one transaction."""

    events: int
    decisions: dict[str, dict[str, int]]
    """Per playbook, per status."""
    actions: dict[str, int]
    """Per delivery status."""
    held: int
    """Refused inputs waiting in quarantine."""


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    backend: str
    """`sqlite` or `postgresql`."""
    current: bool
    """The schema is at the newest migration."""


def ledger_counts(ctx: Context) -> LedgerCounts:
    with ctx.db.read() as conn:
        return LedgerCounts(
            events=event_store.count_events(conn),
            decisions=metric_store.decisions_by_status(conn, None),
            actions=action_store.count_by_status(conn),
            held=quarantine_store.count_held(conn),
        )


def events_by_source(ctx: Context) -> dict[str, int]:
    with ctx.db.read() as conn:
        return event_store.count_by_source(conn)


def database_status(ctx: Context) -> DatabaseStatus:
    return DatabaseStatus(backend=ctx.db.backend, current=ctx.db.schema_is_current())


def list_decisions(
    ctx: Context,
    *,
    status: str | None = None,
    playbook: str | None = None,
    subject: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[DecisionSummary]:
    with ctx.db.read() as conn:
        found = decision_store.list_decisions(
            conn,
            status=status,
            playbook=playbook,
            subject=subject,
            limit=limit,
            before_id=before_id,
        )
    return [summary(d) for d in found]


def decision_detail(ctx: Context, decision_id: int) -> DecisionDetail:
    """Everything about one decision: inputs, explanation, reviews, actions and every delivery
    attempt, the outcome and the audit trail."""
    with ctx.db.read() as conn:
        decision = decision_store.get_decision(conn, decision_id)
        if decision is None:
            raise NotFound(f"no decision {decision_id}")
        event = event_store.get_events(conn, [decision.event_id]).get(decision.event_id)
        actions = action_store.actions_of(conn, decision_id)
        attempts = action_store.attempts_of(conn, [a["id"] for a in actions])
        detail: DecisionDetail = {
            **_record(decision),
            "trigger": _event(event) if event else None,
            "reviews": decision_store.reviews_of(conn, decision_id),
            "actions": [_with_attempts(a, attempts[a["id"]]) for a in actions],
            "outcome": outcome_store.outcome_of(conn, decision_id),
            "audit": [
                row
                for row in audit.trail(conn, "decision", decision_id)
                + [row for a in actions for row in audit.trail(conn, "action", a["id"])]
                if row["verb"] not in LEDGER_BOOKKEEPING
            ],
        }
    detail["audit"].sort(key=lambda row: row["id"])
    return detail


def list_actions(
    ctx: Context, *, status: str | None = None, limit: int = 50, before_id: int | None = None
) -> list[ActionRow]:
    with ctx.db.read() as conn:
        return action_store.list_actions(conn, status=status, limit=limit, before_id=before_id)


def count_actions(ctx: Context) -> dict[str, int]:
    """Actions by status (statuses with none are left out)."""
    with ctx.db.read() as conn:
        return action_store.count_by_status(conn)


def get_action(ctx: Context, action_id: int) -> ActionDetail:
    with ctx.db.read() as conn:
        action = action_store.get_action(conn, action_id)
        if action is None:
            raise NotFound(f"no action {action_id}")
        return _with_attempts(action, action_store.attempts_of(conn, [action_id])[action_id])


def list_events(ctx: Context, **filters: Any) -> list[EventView]:
    with ctx.db.read() as conn:
        return [_event(e) for e in event_store.list_events(conn, **filters)]


def get_event(ctx: Context, event_id: int) -> EventView:
    with ctx.db.read() as conn:
        event = event_store.get_events(conn, [event_id]).get(event_id)
    if event is None:
        raise NotFound(f"no event {event_id}")
    return _event(event)


def get_entity(ctx: Context, subject: str) -> Entity:
    with ctx.db.read() as conn:
        entity = event_store.get_entity(conn, subject)
    if entity is None:
        raise NotFound(f"no entity {subject!r}")
    return entity


def list_quarantine(ctx: Context, **filters: Any) -> list[QuarantinedItem]:
    with ctx.db.read() as conn:
        items = quarantine_store.list_held(conn, **filters)
    return [readable(item) for item in items]


def get_quarantined(ctx: Context, item_id: int) -> QuarantinedItem:
    with ctx.db.read() as conn:
        item = quarantine_store.get(conn, item_id)
    if item is None:
        raise NotFound(f"no quarantined item {item_id}")
    return readable(item)


def list_tasks(
    ctx: Context,
    *,
    status: str | None = None,
    limit: int = 50,
    assignee: str | None = None,
    overdue: bool = False,
    decision_id: int | None = None,
) -> list[TaskRow]:
    """Tasks, newest first: `open` or `done`, one assignee's, the open ones past due, or
    one decision's."""
    with ctx.db.read() as conn:
        return action_store.list_tasks(
            conn,
            status=status,
            limit=limit,
            assignee=assignee,
            due_before=ctx.clock() if overdue else None,
            decision_id=decision_id,
        )


def reassign_task(ctx: Context, task_id: int, assignee: str | None, *, by: str) -> TaskRow:
    """Give an open task to someone else (None: nobody in particular); audited."""
    now = ctx.clock()
    assignee = (assignee or "").strip()[:200] or None
    with ctx.db.transaction() as tx:
        task = action_store.get_task(tx.conn, task_id)
        if task is None:
            raise NotFound(f"no task {task_id}")
        if not action_store.reassign_task(tx.conn, task_id, assignee):
            raise Conflict(f"task {task_id} is done; only open tasks can be reassigned")
        audit.record(
            tx.conn, now, by, "task.reassigned", task_id, {"from": task["assignee"], "to": assignee}
        )
        changed = action_store.get_task(tx.conn, task_id)
    assert changed is not None
    return changed


def complete_task(ctx: Context, task_id: int, *, by: str) -> TaskRow:
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        task = action_store.get_task(tx.conn, task_id)
        if task is None:
            raise NotFound(f"no task {task_id}")
        if not action_store.complete_task(tx.conn, task_id, by=by, at=now):
            raise Conflict(f"task {task_id} is already done")
        audit.record(tx.conn, now, by, "task.completed", task_id)
        done = action_store.get_task(tx.conn, task_id)
    assert done is not None
    return done


def _fields(decision: Decision) -> DecisionFields:
    return {
        "id": decision.id,
        "playbook": decision.playbook,
        "playbook_version": decision.playbook_version,
        "subject": decision.subject,
        "event_id": decision.event_id,
        "mode": decision.mode,
        "status": decision.status,
        "choice": decision.choice,
        "final_choice": decision.final_choice,
        "score": decision.score,
        "needs_approval": decision.needs_approval,
        "created_at": decision.created_at,
        "decided_at": decision.decided_at,
        "why": decision.why,
        "sampled": decision.sampled,
    }


def summary(decision: Decision) -> DecisionSummary:
    """A decision as the lists show it (`GET /api/decisions`, `?wait=decision`)."""
    return {**_fields(decision), "reasons": decision.explanation.get("reasons", decision.why)}


def _record(decision: Decision) -> DecisionRecord:
    return {
        **_fields(decision),
        # What reasoning wrote (opsloop/reasoning/decide.py, service/decide/deciding.py for a
        # failed decision), as the store decoded it.
        "explanation": cast(Explanation, decision.explanation),
        "inputs": cast(DecisionInputs, decision.inputs),
    }


def _event(event: Event) -> EventView:
    # `asdict` of an Event: its fields are EventView's keys.
    return cast(EventView, asdict(event))


def _with_attempts(action: ActionRow, attempts: list[AttemptRow]) -> ActionDetail:
    return {**action, "attempt_log": attempts}
