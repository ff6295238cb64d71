"""Sequences: an option's `steps` (send, wait, wait for an event), run one step at a time.

When a decision that chose an option with `steps` may act (auto, approved or overridden), a
sequence starts in the same transaction: a row in `sequences` at position "0" and a
`SEQUENCE_STEP` job for it. Each step is its own job, keyed by (sequence, position): the job
locks the sequence's row, does nothing unless the sequence is still open and at that position,
and in one transaction queues the step's action (through the outbox, so delivery is exactly
once too), moves the position on and queues the next step's job — due at once, after a
`wait`, or at a `wait_for`'s deadline. So a `kill -9` at any point neither skips nor repeats a
step: the transaction that did a step also moved the position, or neither happened.

Events end or advance sequences in the transaction that stores them (`on_events`): a
`stop_when` event stops the subject's sequences; an awaited event moves a waiting sequence
into its `then` branch. Each step job also looks for such events itself before it acts, so a
sequence is stopped even when the event arrived between a wait's end and the job running, or
was stored by a process that did not check.

A sensitive step (a guarded action kind, or `sensitive: true`) makes the whole option guarded:
the decision waits for a person before the sequence starts, in every mode.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypedDict

from sqlalchemy import Connection

from opsloop.core.decisions import Decision
from opsloop.core.events import Event
from opsloop.core.expressions import CompiledExpression, compile_expression
from opsloop.core.playbooks import Option, Step, parse_playbook
from opsloop.runtime.base import Job
from opsloop.service.context import Context
from opsloop.service.deliver.outbox import queue_actions
from opsloop.service.jobs import SEQUENCE_STEP
from opsloop.store import audit
from opsloop.store import decisions as decision_store
from opsloop.store import events as event_store
from opsloop.store import playbooks as playbook_store
from opsloop.store import sequences as store
from opsloop.store.database import Tx

log = logging.getLogger(__name__)

Path = list[int | str]


# --- positions ---------------------------------------------------------------------------------


def parse_position(text: str) -> Path:
    return [int(part) if part.isdigit() else part for part in text.split(".")]


def format_position(path: Path) -> str:
    return ".".join(str(part) for part in path)


def steps_at(steps: tuple[Step, ...], prefix: Path) -> tuple[Step, ...]:
    """The list of steps a position's last index counts in (a branch, or the top level)."""
    current = steps
    for index in range(0, len(prefix), 2):
        step = current[int(prefix[index])]
        current = step.then if prefix[index + 1] == "then" else step.otherwise
    return current


def step_at(steps: tuple[Step, ...], position: str) -> Step:
    path = parse_position(position)
    return steps_at(steps, path[:-1])[int(path[-1])]


def after(steps: tuple[Step, ...], position: str) -> str | None:
    """The position after this step: its next sibling; at a branch's end, the step after the
    `wait_for` the branch belongs to; None at the end of the sequence."""
    path = parse_position(position)
    while path:
        *parent, last = path
        if int(last) + 1 < len(steps_at(steps, parent)):
            return format_position([*parent, int(last) + 1])
        path = parent[:-1]  # leave the branch: back at its wait_for step
    return None


def branch_start(steps: tuple[Step, ...], position: str, branch: str) -> str | None:
    """Where a `wait_for` continues: its branch's first step, or the step after it."""
    step = step_at(steps, position)
    chosen = step.then if branch == "then" else step.otherwise
    if chosen:
        return f"{position}.{branch}.0"
    return after(steps, position)


# --- starting ----------------------------------------------------------------------------------


def start(
    ctx: Context, tx: Tx, decision: Decision, option_name: str, option: Option, now: datetime
) -> int:
    """Start the option's sequence for the decision, in the caller's transaction (once the
    decision may act); return the sequence's id. A subject with `max_active` open sequences
    already gets a `skipped` one, with the reason."""
    conn = tx.conn
    row: dict[str, Any] = {
        "decision_id": decision.id,
        "playbook": decision.playbook,
        "option": option_name,
        "subject": decision.subject,
        "plan": {"version": decision.playbook_version, "option": option_name},
        "steps_done": 0,
        "started_at": now,
        "updated_at": now,
    }
    open_now = store.open_count(conn, decision.subject)
    if open_now >= option.max_active:
        reason = (
            f"{decision.subject} already has {open_now} active sequence"
            f"{'' if open_now == 1 else 's'} (max_active: {option.max_active})"
        )
        sequence_id = store.add(
            conn, {**row, "status": "skipped", "stop_reason": reason, "ended_at": now}
        )
        audit.record(conn, now, "sequences", "sequence.skipped", sequence_id, {"reason": reason})
        return sequence_id
    sequence_id = store.add(conn, {**row, "status": "active", "position": "0", "next_at": now})
    audit.record(
        conn,
        now,
        "sequences",
        "sequence.started",
        sequence_id,
        {"decision": decision.id, "option": option_name},
    )
    _queue(ctx, tx, sequence_id, "0", now)
    return sequence_id


def _queue(ctx: Context, tx: Tx, sequence_id: int, position: str, at: datetime) -> None:
    ctx.runtime.enqueue(
        tx,
        SEQUENCE_STEP,
        [({"sequence_id": sequence_id, "position": position}, None)],
        run_at=at,
    )


# --- steps -------------------------------------------------------------------------------------


def step_jobs(ctx: Context, jobs: list[Job]) -> None:
    for job in jobs:
        run_step(ctx, int(job.payload["sequence_id"]), str(job.payload["position"]))


def run_step(ctx: Context, sequence_id: int, position: str) -> str:
    """Do the step of `sequence_id` at `position` if the sequence is still there; return what
    happened (`sent`, `waiting`, `stopped`, `completed`, `stale` …) for logs and tests."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        conn = tx.conn
        sequence = store.get(conn, sequence_id, lock=True)
        if sequence is None or sequence["status"] not in store.OPEN:
            return "stale"
        if sequence["position"] != position:
            return "stale"  # a rerun, or a wait_for's deadline after its event came
        option = _option(conn, sequence)
        if sequence["next_at"] is not None and sequence["next_at"] > now:
            _queue(ctx, tx, sequence_id, position, sequence["next_at"])  # a clock behind ours
            return "early"
        stop = _stop_event(conn, sequence, option, now)
        if stop is not None:
            _stop(conn, sequence, f"{stop.type} at {stop.occurred_at.isoformat()}", now, stop.id)
            return "stopped"
        step = step_at(option.steps, position)
        if sequence["status"] == "waiting":
            return _deadline(ctx, tx, sequence, option, step, now)
        values: dict[str, Any] = {"steps_done": sequence["steps_done"] + 1, "updated_at": now}
        if step.send is not None:
            decision = decision_store.get_decision(conn, sequence["decision_id"])
            assert decision is not None
            single = Option(label=option.label, actions=(step.send,))
            queue_actions(ctx, tx, decision, sequence["option"], single, now)
            done, due = "sent", now
        elif step.wait is not None:
            done, due = "waited", now + step.wait
        else:
            assert step.within is not None
            deadline = now + step.within
            # Counted as done when it resolves (the event came, or the deadline did).
            store.change(conn, sequence_id, status="waiting", next_at=deadline, updated_at=now)
            _queue(ctx, tx, sequence_id, position, deadline)
            _log_step(conn, sequence, position, "waiting", now, {"until": deadline.isoformat()})
            return "waiting"
        _move(ctx, tx, sequence, option, after(option.steps, position), due, values, now)
        _log_step(conn, sequence, position, done, now, {})
        return done


def _deadline(
    ctx: Context, tx: Tx, sequence: dict[str, Any], option: Option, step: Step, now: datetime
) -> str:
    """A `wait_for` whose deadline came: its `then` branch if the event came after all (stored
    by a path that did not advance the sequence), else its `else` branch."""
    assert step.within is not None
    deadline = sequence["next_at"]
    came = _awaited(tx.conn, sequence, step, since=deadline - step.within, until=deadline)
    branch = "then" if came is not None else "else"
    position = sequence["position"]
    values = {"status": "active", "steps_done": sequence["steps_done"] + 1, "updated_at": now}
    _move(ctx, tx, sequence, option, branch_start(option.steps, position, branch), now, values, now)
    _log_step(tx.conn, sequence, position, "event came" if came else "timed out", now, {})
    return branch


def _move(
    ctx: Context,
    tx: Tx,
    sequence: dict[str, Any],
    option: Option,
    position: str | None,
    due: datetime,
    values: dict[str, Any],
    now: datetime,
) -> None:
    if position is None:
        store.ended(values, "completed", now, None)
        store.change(tx.conn, sequence["id"], position=None, **values)
        audit.record(tx.conn, now, "sequences", "sequence.completed", sequence["id"])
        return
    store.change(tx.conn, sequence["id"], position=position, next_at=due, **values)
    _queue(ctx, tx, sequence["id"], position, due)


def _stop(
    conn: Connection, sequence: dict[str, Any], reason: str, now: datetime, event_id: int | None
) -> None:
    values: dict[str, Any] = {}
    store.ended(values, "stopped", now, reason)
    store.change(conn, sequence["id"], **values)
    detail: dict[str, Any] = {"reason": reason}
    if event_id is not None:
        detail["event"] = event_id
    audit.record(conn, now, "sequences", "sequence.stopped", sequence["id"], detail)


def _log_step(
    conn: Connection,
    sequence: dict[str, Any],
    position: str,
    what: str,
    now: datetime,
    detail: dict[str, Any],
) -> None:
    audit.record(
        conn,
        now,
        "sequences",
        "sequence.step",
        sequence["id"],
        {"position": position, "result": what, **detail},
    )


# --- reading -----------------------------------------------------------------------------------


class SequenceView(TypedDict):
    """A sequence as the Sequences page, the API and the CLI show it."""

    id: int
    decision_id: int
    playbook: str
    option: str
    subject: str
    status: str
    """active | waiting | completed | stopped | skipped"""
    position: str | None
    next_step: str | None
    """The step at `position` in words: `email "Resources"`, `wait for login`."""
    next_at: datetime | None
    steps_done: int
    stop_reason: str | None
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None


def list_sequences(
    ctx: Context,
    *,
    status: str | None = None,
    playbook: str | None = None,
    subject: str | None = None,
    limit: int = 100,
) -> list[SequenceView]:
    with ctx.db.read() as conn:
        rows = store.listing(conn, status=status, playbook=playbook, subject=subject, limit=limit)
        return [_view(conn, row) for row in rows]


def sequence_counts(ctx: Context, playbook: str | None = None) -> dict[str, int]:
    with ctx.db.read() as conn:
        return store.counts(conn, playbook)


def stop_all(
    ctx: Context,
    *,
    who: str,
    reason: str,
    playbook: str | None = None,
    subject: str | None = None,
) -> int:
    """A person stops every open sequence (of one playbook, of one subject); return how
    many."""
    with ctx.db.read() as conn:
        rows = store.listing(
            conn, status="open", playbook=playbook, subject=subject, limit=1_000_000
        )
    return sum(stop(ctx, row["id"], who=who, reason=reason) for row in rows)


def _view(conn: Connection, row: dict[str, Any]) -> SequenceView:
    next_step = None
    if row["position"] is not None and row["status"] in store.OPEN:
        step = step_at(_option(conn, row).steps, row["position"])
        next_step = step.describe()
    return {
        "id": row["id"],
        "decision_id": row["decision_id"],
        "playbook": row["playbook"],
        "option": row["option"],
        "subject": row["subject"],
        "status": row["status"],
        "position": row["position"],
        "next_step": next_step,
        "next_at": row["next_at"],
        "steps_done": row["steps_done"],
        "stop_reason": row["stop_reason"],
        "started_at": row["started_at"],
        "updated_at": row["updated_at"],
        "ended_at": row["ended_at"],
    }


# --- events ------------------------------------------------------------------------------------


def on_events(ctx: Context, tx: Tx, stored: list[Event], now: datetime) -> None:
    """Stop or advance the open sequences of these events' subjects, in the ingest
    transaction. Costs one indexed read per batch, and only once sequences exist."""
    if not _in_use(ctx):
        return
    conn = tx.conn
    by_subject: dict[str, list[Event]] = defaultdict(list)
    for event in sorted(stored, key=lambda e: (e.occurred_at, e.id)):
        by_subject[event.subject].append(event)
    for sequence in store.open_for(conn, by_subject):
        option = _option(conn, sequence)
        for event in by_subject[sequence["subject"]]:
            if event.occurred_at < sequence["started_at"]:
                continue
            if event.type in option.stop_when:
                reason = f"{event.type} at {event.occurred_at.isoformat()}"
                _stop(conn, sequence, reason, now, event.id)
                break
            if sequence["status"] == "waiting" and _awaits(option, sequence, event):
                position = sequence["position"]
                values = {
                    "status": "active",
                    "steps_done": sequence["steps_done"] + 1,
                    "updated_at": now,
                }
                target = branch_start(option.steps, position, "then")
                _move(ctx, tx, sequence, option, target, now, values, now)
                _log_step(conn, sequence, position, "event came", now, {"event": event.id})
                break


def stop(ctx: Context, sequence_id: int, *, who: str, reason: str) -> bool:
    """A person stops one sequence; False when it was not open."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        sequence = store.get(tx.conn, sequence_id, lock=True)
        if sequence is None or sequence["status"] not in store.OPEN:
            return False
        _stop(tx.conn, sequence, f"stopped by {who}: {reason}", now, None)
    return True


def _in_use(ctx: Context) -> bool:
    """Whether an active playbook has steps. (A sequence an older version started still
    stops and advances without this: each step job looks for the events itself.)"""
    return any(
        option.steps
        for playbook in ctx.catalog.active().values()
        for option in playbook.compiled.playbook.options.values()
    )


def _awaits(option: Option, sequence: dict[str, Any], event: Event) -> bool:
    step = step_at(option.steps, sequence["position"])
    if event.type not in step.wait_for or step.within is None:
        return False
    deadline = sequence["next_at"]
    if not deadline - step.within <= event.occurred_at <= deadline:
        return False
    return _matches(step, event.type, event.payload, event.source, event.occurred_at)


def _awaited(
    conn: Connection, sequence: dict[str, Any], step: Step, *, since: datetime, until: datetime
) -> Any:
    """The first awaited event about the subject in [since, until], if one was stored."""
    history = event_store.fetch_history(
        conn,
        [sequence["subject"]],
        set(step.wait_for),
        since=since - timedelta(microseconds=1),
        until=until,
    )
    for past in history.get(sequence["subject"], []):
        if _matches(step, past.type, past.payload, past.source, past.occurred_at):
            return past
    return None


def _stop_event(conn: Connection, sequence: dict[str, Any], option: Option, now: datetime) -> Any:
    if not option.stop_when:
        return None
    history = event_store.fetch_history(
        conn,
        [sequence["subject"]],
        set(option.stop_when),
        since=sequence["started_at"] - timedelta(microseconds=1),
        until=now,
    )
    found = history.get(sequence["subject"], [])
    return found[0] if found else None


def _matches(step: Step, type_: str, payload: Any, source: str, at: datetime) -> bool:
    if step.where is None:
        return True
    context = {"type": type_, "payload": payload, "source": source, "occurred_at": at.isoformat()}
    try:
        return _compiled(step.where).truth(context)
    except Exception:  # a payload without the field: not the event waited for
        return False


@lru_cache(maxsize=256)
def _compiled(text: str) -> CompiledExpression:
    return compile_expression(text)


def _option(conn: Connection, sequence: dict[str, Any]) -> Option:
    plan = sequence["plan"]
    return _option_of(conn, sequence["playbook"], int(plan["version"]), str(plan["option"]))


def _option_of(conn: Connection, playbook: str, version: int, option: str) -> Option:
    """The option as the version that started the sequence has it (versions never change)."""
    source = playbook_store.version_source(conn, playbook, version)
    if source is None:
        raise LookupError(f"playbook {playbook} has no version {version}")
    return _parsed_option(*source, option)


@lru_cache(maxsize=64)
def _parsed_option(source: str, file: str, option: str) -> Option:
    return parse_playbook(source, file)[0].options[option]
