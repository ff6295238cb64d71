"""Absences: decisions made because something did not happen.

A playbook whose trigger says `after: signup.completed`, `unless: project.created`,
`within: 3d` decides about a subject when three days have passed since its signup without a
project, and never when the project came first. The `after` event queues a delayed job in the
ingest transaction (so it cannot be lost), due when the window closes by the service's clock.
The job looks for an `unless` event in the window and decides only when there is none.

Exactly once: a decision is unique per (playbook, trigger event), and the job checks for it in
the transaction that stores it, so a job run twice (a worker killed after committing) decides
once. Features are computed as of the window's close, so "logins in the first three days"
counts the whole window. An `unless` event that arrives after the job ran, though it happened
inside the window, comes too late: the decision stands and the event is its outcome.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from opsloop.core.durations import in_words
from opsloop.core.events import Event, subject_kind
from opsloop.reasoning.decide import decide
from opsloop.runtime.base import Job
from opsloop.service.context import ActivePlaybook, Context
from opsloop.service.decide import deciding
from opsloop.service.jobs import DECIDE_ABSENCE
from opsloop.store import decisions as decision_store
from opsloop.store import events as event_store
from opsloop.store.database import Tx

log = logging.getLogger(__name__)


def opens_window(playbook: ActivePlaybook, event: Event) -> bool:
    trigger = playbook.compiled.playbook.trigger
    return (
        trigger.is_absence
        and event.type in trigger.after
        and subject_kind(event.subject) == playbook.compiled.playbook.subject
    )


def schedule(ctx: Context, tx: Tx, opened: list[tuple[Event, ActivePlaybook]]) -> None:
    """Queue the check of each window these events opened, due when it closes."""
    for event, playbook in opened:
        within = playbook.compiled.playbook.trigger.within
        assert within is not None  # validation requires it on an absence
        ctx.runtime.enqueue(
            tx,
            DECIDE_ABSENCE,
            [({"playbook": playbook.name, "event_id": event.id}, None)],
            run_at=event.occurred_at + within,
        )


def decide_jobs(ctx: Context, jobs: list[Job]) -> None:
    for job in jobs:
        decide_absence(ctx, str(job.payload["playbook"]), int(job.payload["event_id"]))


def decide_absence(ctx: Context, playbook_name: str, event_id: int) -> int | None:
    """Decide `event_id`'s window for the playbook if it closed without an `unless` event;
    return the decision id (None: the event came, the window is still open, the playbook is
    gone, or the decision exists already)."""
    active = ctx.catalog.active().get(playbook_name)
    if active is None or not active.compiled.playbook.trigger.is_absence:
        log.info("playbook %s no longer waits for absences; event %d", playbook_name, event_id)
        return None
    trigger = active.compiled.playbook.trigger
    assert trigger.within is not None
    now = ctx.clock()
    with ctx.db.read() as conn:
        if decision_store.exists_for(conn, active.id, event_id):
            return None
        opened = event_store.get_events(conn, [event_id]).get(event_id)
        if opened is None:
            return None  # purged by retention before its window closed
        closes = opened.occurred_at + trigger.within
        if now < closes:  # the playbook's window grew since the job was queued
            with ctx.db.transaction() as tx:
                schedule(ctx, tx, [(opened, active)])
            return None
        if _came(conn, opened, trigger.unless, closes):
            return None
        # Features as of the window's close; the decision stays anchored on the `after` event.
        as_of = replace(opened, occurred_at=closes)
        work = deciding.without_cooldown(conn, [(as_of, active)])
        if not work:
            return None
        history, traits = deciding.read_inputs(ctx, conn, work)
    with ctx.db.transaction() as tx:
        models = deciding.models_for(ctx, tx, active)
    try:
        draft = decide(
            active.compiled,
            version=active.version,
            mode=active.mode,
            event=as_of,
            history=history.get(opened.subject, []),
            traits=traits.get(opened.subject, {}),
            models=models.tabular,
            text_models=models.text,
            computed=deciding.computed_for(active, as_of, history, traits),
        )
    except Exception as exc:  # a bug must not lose the window: record it as an error
        log.exception("playbook %s failed on the window of event %d", playbook_name, event_id)
        draft = deciding.error_draft(active, opened, exc)
    absence = {
        "after": {"type": opened.type, "occurred_at": opened.occurred_at.isoformat()},
        "unless": list(trigger.unless),
        "within": in_words(trigger.within),
        "closed_at": closes.isoformat(),
    }
    draft.explanation["absence"] = absence
    said = f"No {' or '.join(trigger.unless)} within {in_words(trigger.within)} of {opened.type}."
    draft.explanation["why"] = f"{said} {draft.explanation.get('why', '')}".strip()
    try:
        with ctx.db.transaction() as tx:
            if decision_store.exists_for(tx.conn, active.id, event_id):
                return None
            [decision_id] = deciding.record_decisions(
                ctx, tx, [(draft, active)], {opened.id: opened}, history, now
            )
    except IntegrityError:
        return None  # another worker stored it a moment ago (unique event and playbook)
    return decision_id


def _came(conn: Connection, opened: Event, types: tuple[str, ...], closes: datetime) -> bool:
    """Whether an event of `types` about the subject happened in the window."""
    history = event_store.fetch_history(
        conn,
        [opened.subject],
        set(types),
        since=opened.occurred_at - timedelta(microseconds=1),
        until=closes,
    )
    return any(
        opened.occurred_at <= past.occurred_at <= closes and past.id != opened.id
        for past in history.get(opened.subject, [])
    )
