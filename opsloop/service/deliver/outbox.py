"""Deliver: run one action through the outbox, exactly once per idempotency key.

    transaction 1: claim the action (conditional UPDATE) and log the attempt as started
    outside:       send it, carrying the action's idempotency key
    transaction 2: log the attempt's result; delivered, or retry later, or dead-letter

If the process dies between 1 and 2, the runtime runs the job again: the attempt left
`started` is marked `interrupted` and the action is sent again with the same idempotency key
(webhook-id, Message-ID, Idempotency-Key), so the receiver can tell it is a repeat. Local kinds
(update_traits, task) happen inside transaction 1 itself and so exactly once by construction.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from opsloop.core.action_views import ActionRow
from opsloop.core.decisions import Decision
from opsloop.core.errors import Conflict, DeliveryError, NotFound
from opsloop.core.playbooks import Option
from opsloop.execution.outbox import LOCAL_KINDS, GiveUp, after_failure
from opsloop.execution.render import plan_actions
from opsloop.runtime.base import Job
from opsloop.service.context import Context
from opsloop.service.jobs import DELIVER
from opsloop.store import actions as action_store
from opsloop.store import audit
from opsloop.store import decisions as decision_store
from opsloop.store import events as event_store
from opsloop.store.database import Tx

log = logging.getLogger(__name__)

# A guarded action runs only after a person said yes to it.
_APPROVED = frozenset({"approved", "overridden"})


def queue_actions(
    ctx: Context,
    tx: Tx,
    decision: Decision,
    option_name: str,
    option: Option,
    now: datetime,
    *,
    draft: str | None = None,
) -> list[int]:
    """Record the option's actions (rendered) and queue their delivery, in the caller's
    transaction. Called only once the decision may act: auto, approved or overridden.
    `draft`: the reply a person finalized, sent where the actions say `{{ draft }}`."""
    rows = plan_actions(decision, option_name, option, now, draft=draft)
    ids = action_store.insert_actions(tx.conn, rows)
    ready = [
        action_id for action_id, row in zip(ids, rows, strict=True) if row["status"] == "pending"
    ]
    ctx.runtime.enqueue(
        tx, DELIVER, [({"action_id": action_id}, f"action:{action_id}") for action_id in ready]
    )
    # Every action enters the audit trail as it is created, so the ledger can tell later
    # whether its request was changed.
    audit.record_many(
        tx.conn,
        [
            {
                "at": now,
                "actor": "outbox",
                "verb": "action.queued",
                "object_type": "action",
                "object_id": action_id,
                "detail": {"decision": decision.id, "kind": row["kind"]},
            }
            for action_id, row in zip(ids, rows, strict=True)
            if row["status"] != "dead"
        ],
    )
    for action_id, row in zip(ids, rows, strict=True):
        if row["status"] == "dead":
            audit.record(
                tx.conn,
                now,
                "outbox",
                "action.dead_lettered",
                action_id,
                {"error": row["last_error"]},
            )
            log.error("action %d dead-lettered: %s", action_id, row["last_error"])
    return ids


def deliver_jobs(ctx: Context, jobs: list[Job]) -> None:
    for job in jobs:
        deliver(ctx, int(job.payload["action_id"]))


def deliver(ctx: Context, action_id: int) -> str:
    """Make one delivery attempt; return the action's status afterwards."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        conn = tx.conn
        action = action_store.get_action(conn, action_id)
        if action is None:
            log.warning("deliver: no action %d", action_id)
            return "missing"
        if action["status"] == "delivering":
            # The previous run of this job stopped mid-attempt (the process died).
            action_store.finish_attempt(
                conn,
                action_id,
                action["attempts"],
                outcome="interrupted",
                at=now,
                error="the process stopped during this attempt",
                retryable=True,
            )
            action_store.set_status(conn, action_id, "retrying", at=now, expect=("delivering",))
            audit.record(conn, now, "outbox", "action.interrupted", action_id)
        elif action["status"] not in action_store.CLAIMABLE:
            return str(action["status"])
        if action["guarded"] and not _approved(conn, action):
            # Defence in depth: guarded actions are only ever created after approval.
            action_store.set_status(
                conn, action_id, "cancelled", at=now, last_error="guardrail: no approval"
            )
            audit.record(conn, now, "outbox", "action.blocked_by_guardrail", action_id)
            return "cancelled"
        claimed = action_store.claim(conn, action_id, now)
        if claimed is None:
            return "busy"
        if claimed["kind"] in LOCAL_KINDS:
            decision = decision_store.get_decision(conn, action["decision_id"])
            assert decision is not None
            receipt = _run_local(conn, claimed, decision, now)
            _succeeded(conn, claimed, receipt, now)
            return "delivered"
        # The claim changes the action (status, attempts) before anything is sent: audited,
        # like every change of an action's state.
        audit.record(
            conn, now, "outbox", "action.sending", action_id, {"attempt": claimed["attempts"]}
        )
    request, key = claimed["request"], claimed["idempotency_key"]
    try:
        receipt = ctx.channels[claimed["kind"]].send(request, idempotency_key=key)
    except DeliveryError as exc:
        return _failed(ctx, claimed, exc)
    except Exception as exc:  # an unexpected bug in a channel: log it and retry like a failure
        log.exception("channel %s crashed on action %d", claimed["kind"], action_id)
        return _failed(ctx, claimed, DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True))
    with ctx.db.transaction() as tx:
        _succeeded(tx.conn, claimed, receipt, ctx.clock())
    return "delivered"


def _approved(conn: Any, action: ActionRow) -> bool:
    """Did a person approve the decision this guarded action belongs to? Read only for
    guarded actions: the decision's explanation is a blob to inflate."""
    decision = decision_store.get_decision(conn, action["decision_id"])
    assert decision is not None
    return decision.status in _APPROVED


def _run_local(conn: Any, action: ActionRow, decision: Decision, now: datetime) -> dict[str, Any]:
    request = action["request"]
    if action["kind"] == "update_traits":
        subject = request["subject"]
        event_store.ensure_entity(conn, subject, now)
        event_store.merge_traits(conn, {subject: request["traits"]}, now)
        return {"subject": subject, "traits": request["traits"]}
    due_at = datetime.fromisoformat(request["due_at"]) if request.get("due_at") else None
    task_id = action_store.insert_task(
        conn,
        {
            "action_id": action["id"],
            "decision_id": decision.id,
            "subject": decision.subject,
            "title": request["title"],
            "notes": request.get("notes"),
            "assignee": request.get("assignee"),
            "due_at": due_at,
            "status": "open",
            "created_at": now,
        },
    )
    return {"task_id": task_id}


def _succeeded(conn: Any, action: ActionRow, receipt: dict[str, Any], now: datetime) -> None:
    action_store.finish_attempt(
        conn, action["id"], action["attempts"], outcome="ok", at=now, detail=receipt
    )
    action_store.set_status(
        conn,
        action["id"],
        "delivered",
        at=now,
        expect=("delivering",),
        delivered_at=now,
        result=receipt,
        last_error=None,
        next_attempt_at=None,
    )
    audit.record(
        conn,
        now,
        "outbox",
        "action.delivered",
        action["id"],
        {"kind": action["kind"], "attempt": action["attempts"]},
    )
    log.info("delivered %s action %d", action["kind"], action["id"], extra={"action": action["id"]})


def _failed(ctx: Context, action: ActionRow, error: DeliveryError) -> str:
    s = ctx.settings
    step = after_failure(
        error,
        attempts=action["attempts"],
        max_attempts=s.outbox_max_attempts,
        base=s.outbox_backoff_base_seconds,
        cap=s.outbox_backoff_max_seconds,
    )
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        conn = tx.conn
        action_store.finish_attempt(
            conn,
            action["id"],
            action["attempts"],
            outcome="failed",
            at=now,
            error=str(error),
            retryable=error.retryable,
        )
        if isinstance(step, GiveUp):
            action_store.set_status(
                conn,
                action["id"],
                "dead",
                at=now,
                expect=("delivering",),
                last_error=step.reason,
                next_attempt_at=None,
            )
            audit.record(
                conn, now, "outbox", "action.dead_lettered", action["id"], {"error": step.reason}
            )
            log.error(
                "action %d dead-lettered: %s",
                action["id"],
                step.reason,
                extra={"action": action["id"]},
            )
            return "dead"
        run_at = now + timedelta(seconds=step.delay_seconds)
        action_store.set_status(
            conn,
            action["id"],
            "retrying",
            at=now,
            expect=("delivering",),
            last_error=str(error),
            next_attempt_at=run_at,
        )
        ctx.runtime.enqueue(
            tx, DELIVER, [({"action_id": action["id"]}, f"action:{action['id']}")], run_at=run_at
        )
        audit.record(
            conn,
            now,
            "outbox",
            "action.retry_scheduled",
            action["id"],
            {"error": str(error), "in_seconds": round(step.delay_seconds, 1)},
        )
    log.warning(
        "action %d attempt %d failed, retrying in %.1fs: %s",
        action["id"],
        action["attempts"],
        step.delay_seconds,
        error,
        extra={"action": action["id"]},
    )
    return "retrying"


def retry_action(ctx: Context, action_id: int, *, actor: str) -> ActionRow:
    """A person asks for one more attempt at a dead-lettered action."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        action = action_store.get_action(tx.conn, action_id)
        if action is None:
            raise NotFound(f"no action {action_id}")
        if "render_error" in action["request"]:
            raise Conflict(
                f"action {action_id} could not be rendered ({action['request']['render_error']}); "
                "a retry would send nothing — fix the playbook's template instead"
            )
        if not action_store.set_status(
            tx.conn, action_id, "pending", at=now, expect=("dead",), next_attempt_at=None
        ):
            raise Conflict(
                f"action {action_id} is {action['status']}; only dead-lettered actions can be retried"
            )
        ctx.runtime.enqueue(tx, DELIVER, [({"action_id": action_id}, f"action:{action_id}")])
        audit.record(tx.conn, now, actor, "action.retry_requested", action_id)
        updated = action_store.get_action(tx.conn, action_id)
    assert updated is not None
    return updated


CANCELLABLE = ("pending", "retrying")


def cancel_action(ctx: Context, action_id: int, *, actor: str) -> ActionRow:
    """A person stops an action that has not been delivered yet. It never runs afterwards: a
    delivery job that finds it `cancelled` does nothing (`deliver` claims only pending and
    retrying actions), and a retry refuses it. One being delivered right now cannot be
    stopped mid-flight."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        action = action_store.get_action(tx.conn, action_id)
        if action is None:
            raise NotFound(f"no action {action_id}")
        if not action_store.set_status(
            tx.conn,
            action_id,
            "cancelled",
            at=now,
            expect=CANCELLABLE,
            next_attempt_at=None,
            last_error=f"cancelled by {actor}",
        ):
            raise Conflict(
                f"action {action_id} is {action['status']}; only pending or retrying actions "
                "can be cancelled"
            )
        audit.record(tx.conn, now, actor, "action.cancelled", action_id, {"was": action["status"]})
        # Its queued delivery job goes too (the job would find it cancelled and do nothing).
        ctx.runtime.cancel(tx, f"action:{action_id}")
        updated = action_store.get_action(tx.conn, action_id)
    assert updated is not None
    log.info("action %d cancelled by %s", action_id, actor, extra={"action": action_id})
    return updated
