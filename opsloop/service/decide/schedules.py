"""Scheduled playbooks: decide about the subjects a `select` picks, every Monday at 8 or every 6h.

A periodic job (`SCHEDULES_DUE`, every minute) finds, for each active playbook with a
`schedule`, the latest due time at or before now, and claims (playbook, due time) in
`playbook_runs`. The claim and the job that does the run commit together, and a claimed time
is never claimed again: a restart or a second process never runs a period twice, and after
downtime only the latest missed period runs (once), not one run per missed period. The first
time a schedule is seen, its latest due time is recorded as `skipped`: it starts with the next
one, as a schedule trigger in n8n or Zapier does.

The run (`RUN_SCHEDULE`) pages through the subjects of the playbook's kind, computes the
playbook's features for each as of the due time, and keeps those `select` is true for. Each
kept subject gets an event (`schedule.run`, source `schedule`, occurred at the due time) and a
decision, in one transaction per page: the event is the decision's anchor in the ledger and its
idempotency key is (run, subject), so a run killed halfway and run again skips the subjects it
decided already.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from opsloop.core.events import Event, NewEvent
from opsloop.core.playbooks import Trigger
from opsloop.core.schedules import SCHEDULED_EVENT, Schedule, parse_schedule
from opsloop.reasoning.features import base_context, compute_features
from opsloop.runtime.base import Job
from opsloop.service.context import ActivePlaybook, Context
from opsloop.service.decide import deciding
from opsloop.service.jobs import RUN_SCHEDULE
from opsloop.store import audit, playbook_runs
from opsloop.store import events as event_store

log = logging.getLogger(__name__)

SOURCE = "schedule"
PAGE = 500


def schedule_of(ctx: Context, playbook: ActivePlaybook) -> Schedule | None:
    return trigger_schedule(ctx, playbook.compiled.playbook.trigger)


def trigger_schedule(ctx: Context, trigger: Trigger) -> Schedule | None:
    """The schedule of a playbook's trigger, in the business's time zone unless it names one."""
    if trigger.schedule is None:
        return None
    return parse_schedule(trigger.schedule, trigger.timezone or ctx.settings.timezone)


def claim_due(ctx: Context) -> int:
    """Claim and queue each scheduled playbook's latest due run not claimed yet; return how
    many runs were queued."""
    now = ctx.clock()
    queued = 0
    for playbook in ctx.catalog.active().values():
        schedule = schedule_of(ctx, playbook)
        if schedule is None:
            continue
        due_at = schedule.latest(now)
        with ctx.db.transaction() as tx:
            first = not playbook_runs.recent(tx.conn, playbook.id, limit=1)
            run_id = playbook_runs.claim(tx.conn, playbook.id, due_at, now)
            if run_id is None:
                continue
            if first:  # a new schedule starts with its next due time
                playbook_runs.finish(tx.conn, run_id, now, status="skipped")
                continue
            ctx.runtime.enqueue(
                tx,
                RUN_SCHEDULE,
                [({"playbook": playbook.name, "run_id": run_id}, f"schedule:{playbook.name}")],
            )
            audit.record(
                tx.conn,
                now,
                "scheduler",
                "playbook.run.queued",
                run_id,
                {"playbook": playbook.name, "due_at": due_at.isoformat()},
                object_type="playbook_run",
            )
            queued += 1
    return queued


def run_jobs(ctx: Context, jobs: list[Job]) -> None:
    for job in jobs:
        run(ctx, str(job.payload["playbook"]), int(job.payload["run_id"]))


def run(ctx: Context, playbook_name: str, run_id: int) -> dict[str, int]:
    """Do one claimed run; return its counts (subjects looked at, selected, decided)."""
    counts = {"subjects": 0, "selected": 0, "decided": 0}
    with ctx.db.read() as conn:
        claimed = playbook_runs.get(conn, run_id)
    if claimed is None or claimed["status"] != "queued":
        return counts
    active = ctx.catalog.active().get(playbook_name)
    if active is not None and active.compiled.playbook.trigger.schedule is not None:
        due_at: datetime = claimed["due_at"]
        after = ""
        while True:
            with ctx.db.read() as conn:
                subjects = playbook_runs.subjects_of_kind(
                    conn, active.compiled.playbook.subject, after=after, limit=PAGE
                )
            if not subjects:
                break
            after = subjects[-1]
            selected, decided = _page(ctx, active, run_id, due_at, subjects)
            counts["subjects"] += len(subjects)
            counts["selected"] += selected
            counts["decided"] += decided
    else:
        log.info("playbook %s no longer runs on a schedule; run %d ends", playbook_name, run_id)
    with ctx.db.transaction() as tx:
        playbook_runs.finish(
            tx.conn,
            run_id,
            ctx.clock(),
            subjects=counts["subjects"],
            selected=counts["selected"],
            decided=counts["decided"],
        )
    return counts


def _page(
    ctx: Context, active: ActivePlaybook, run_id: int, due_at: datetime, subjects: list[str]
) -> tuple[int, int]:
    """Select and decide one page of subjects; return (selected, decided so far in this run)."""
    now = ctx.clock()
    probes = [
        Event(0, SOURCE, SCHEDULED_EVENT, subject, due_at, now, {}, {}) for subject in subjects
    ]
    with ctx.db.read() as conn:
        history, traits = deciding.read_inputs(ctx, conn, [(p, active) for p in probes])
    picked = [
        probe
        for probe in probes
        if _selected(active, probe, history.get(probe.subject, []), traits.get(probe.subject, {}))
    ]
    if not picked:
        return 0, 0
    keys = {probe.subject: f"{run_id}:{probe.subject}"[:200] for probe in picked}
    with ctx.db.transaction() as tx:
        done = event_store.find_by_idempotency(tx.conn, [(SOURCE, k) for k in keys.values()])
        fresh = [p for p in picked if (SOURCE, keys[p.subject]) not in done]
        kept = {
            e.subject for e, _ in deciding.without_cooldown(tx.conn, [(p, active) for p in fresh])
        }
        new = [
            NewEvent(SOURCE, SCHEDULED_EVENT, p.subject, due_at, now, {}, {}, keys[p.subject])
            for p in fresh
            if p.subject in kept
        ]
        ids = event_store.insert_events(tx.conn, new)
        stored = [
            Event(
                event_id, e.source, e.type, e.subject, e.occurred_at, now, {}, {}, e.idempotency_key
            )
            for event_id, e in zip(ids, new, strict=True)
        ]
        deciding.decide_work(ctx, tx, [(event, active) for event in stored], now, traits=traits)
    return len(picked), len(done) + len(stored)


def _selected(
    active: ActivePlaybook, probe: Event, history: list[Any], traits: dict[str, Any]
) -> bool:
    select = active.compiled.select
    if select is None:
        return True
    base = base_context(probe, traits)
    try:
        computed = deciding.computed_for(
            active, probe, {probe.subject: history}, {probe.subject: traits}
        )
    except Exception:  # a forecast that fails here fails the decision too: it is not picked
        log.exception("playbook %s: forecast failed for %s", active.name, probe.subject)
        return False
    features, _ = compute_features(
        active.compiled,
        at=probe.occurred_at,
        history=history,
        traits=traits,
        base=base,
        computed=computed,
    )
    try:
        return select.truth({**base, **features})
    except Exception:  # a null where a number was expected: this subject is not picked
        return False


def upcoming(ctx: Context, playbook: ActivePlaybook, count: int = 5) -> list[datetime]:
    schedule = schedule_of(ctx, playbook)
    return [] if schedule is None else schedule.upcoming(ctx.clock(), count)
