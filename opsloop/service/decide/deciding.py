"""Decide: run the triggered playbooks on freshly stored events and record the decisions.

Runs inside the ingest transaction, so an event and the decisions it triggers commit together:
once a sender has its 2xx, the decision exists too, and a crash can never leave an event
undecided or decided twice. A batch is decided at once: history for all its subjects is read
with one query, decisions and explanations are written with one statement each, and `auto`
decisions queue their actions in the same transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection

from opsloop.core.decisions import Decision, DecisionDraft
from opsloop.core.events import Event, HistoryEvent, NewEvent
from opsloop.core.playbooks import ModelSpec
from opsloop.learning.text_dataset import text_model_name
from opsloop.reasoning.decide import decide, triggers
from opsloop.reasoning.features import Features, base_context, compute_features
from opsloop.reasoning.predictions import PlaybookModels, primed
from opsloop.service.context import ActivePlaybook, Context
from opsloop.service.decide import experiments
from opsloop.service.deliver.acting import act
from opsloop.service.jobs import DECIDE_WITH_LLM
from opsloop.service.review import deadlines as review_deadlines
from opsloop.store import audit
from opsloop.store import decisions as decision_store
from opsloop.store import events as event_store
from opsloop.store import outcomes as outcome_store
from opsloop.store.database import Tx

log = logging.getLogger(__name__)


def triage_key(playbook: str, subject: str) -> str:
    """The ordering key of a language-model decision's job: one subject's decisions by one
    playbook run in order."""
    return f"triage:{playbook}:{subject}"


def decide_stored(
    ctx: Context,
    tx: Tx,
    stored: list[Event],
    now: datetime,
    *,
    traits: dict[str, dict[str, Any]] | None = None,
    first_seen: Collection[str] = (),
    ahead: event_store.HistoryRead | None = None,
) -> list[int]:
    """Decide every active playbook each of these just-stored events triggers, in the caller's
    transaction; return the new decision ids. `traits` (subject → current traits) saves a read
    when the caller has them; `first_seen` names subjects this transaction created, which have
    no earlier decision for a cooldown to look up; `ahead`, what `history_ahead` asked for
    these events, read by the caller."""
    active = ctx.catalog.active()
    if any(playbook.compiled.playbook.trigger.is_absence for playbook in active.values()):
        from opsloop.service.decide import absences  # only businesses that wait for absences

        opened = [
            (event, playbook)
            for event in stored
            for playbook in active.values()
            if absences.opens_window(playbook, event)
        ]
        absences.schedule(ctx, tx, opened)
    work = triggered(stored, active.values())
    if not work:
        return []
    kept = without_cooldown(tx.conn, work, first_seen=first_seen)
    return decide_work(ctx, tx, kept, now, traits=traits, ahead=ahead)


def history_ahead(ctx: Context, stored: list[Event]) -> event_store.HistoryWanted | None:
    """The history `decide_stored` will read for these events, for the caller to read with
    statements of its own before it (the ingest reads it with the entity upsert). Asked before
    cooldowns drop any trigger, it holds what the decisions left read, and maybe more."""
    active = [p for p in ctx.catalog.active().values() if not needs_llm(p)]
    work = triggered(stored, active)
    return history_wanted(work) if work else None


def most_decisions(ctx: Context, events: list[NewEvent]) -> int:
    """At most how many decisions `decide_stored` makes in the transaction storing these events:
    one per event and active playbook it triggers (cooldowns only drop some), except those of
    playbooks that ask the language model, which decide in a job."""
    active = [p for p in ctx.catalog.active().values() if not needs_llm(p)]
    return len(triggered(events, active))


Triggering = TypeVar("Triggering", Event, NewEvent)


def triggered(
    events: list[Triggering], playbooks: Iterable[ActivePlaybook]
) -> list[tuple[Triggering, ActivePlaybook]]:
    """Each (event, playbook) pair where the event triggers the playbook, events in order."""
    playbooks = list(playbooks)
    return [
        (event, playbook)
        for event in events
        for playbook in playbooks
        if triggers(playbook.compiled, event.type, event.subject)
    ]


def decide_work(
    ctx: Context,
    tx: Tx,
    work: list[tuple[Event, ActivePlaybook]],
    now: datetime,
    *,
    traits: dict[str, dict[str, Any]] | None = None,
    ahead: event_store.HistoryRead | None = None,
) -> list[int]:
    """Decide each (stored event, playbook) pair, cooldowns already applied, in the caller's
    transaction; return the new decision ids. `ahead`: the history read already
    (`history_ahead`), used if it covers these pairs."""
    if not work:
        return []
    conn = tx.conn

    # A playbook that asks the language model decides in a job, after this transaction: a
    # slow or failing model must never hold the ingest transaction (or the SQLite write lock).
    later = [(event, playbook) for event, playbook in work if needs_llm(playbook)]
    if later:
        ctx.runtime.enqueue(
            tx,
            DECIDE_WITH_LLM,
            [
                ({"playbook": p.name, "event_id": e.id}, triage_key(p.name, e.subject))
                for e, p in later
            ],
        )
        work = [(event, playbook) for event, playbook in work if not needs_llm(playbook)]
        if not work:
            return []

    history, traits = read_inputs(ctx, conn, work, traits, ahead)
    playbooks = {playbook.name: playbook for _, playbook in work}
    models = _models(ctx, tx, playbooks)
    text_models = _text_models(ctx, tx, playbooks)
    prepared: dict[int, Features] = {}  # worked out while priming, by position in `work`
    models = _primed_models(models, work, history, traits, prepared)
    drafts: list[tuple[DecisionDraft, ActivePlaybook]] = []
    for index, (event, playbook) in enumerate(work):
        try:
            worked_out = prepared.get(index)
            draft = decide(
                playbook.compiled,
                version=playbook.version,
                mode=playbook.mode,
                event=event,
                history=history.get(event.subject, []),
                traits=traits.get(event.subject, {}),
                models=models.get(playbook.name),
                text_models=text_models.get(playbook.name),
                computed=None
                if worked_out is not None
                else computed_for(playbook, event, history, traits),
                prepared=worked_out,
            )
        except Exception as exc:  # a bug must not refuse the event: record it and go on
            log.exception("playbook %s failed on event %d", playbook.name, event.id)
            draft = error_draft(playbook, event, exc)
        drafts.append((draft, playbook))
    events = {event.id: event for event, _ in work}
    return record_decisions(ctx, tx, drafts, events, history, now, fresh_events=True)


def _primed_models(
    models: dict[str, PlaybookModels],
    work: list[tuple[Event, ActivePlaybook]],
    history: dict[str, list[HistoryEvent]],
    traits: dict[str, dict[str, Any]],
    prepared: dict[int, Features],
) -> dict[str, PlaybookModels]:
    """Each model asked once for all of a batch's rows, not once per decision: its features
    are worked out here as `decide` would work them out (the same function, the same inputs)
    and kept in `prepared` (by position in `work`) for `decide` to use. A row that fails here
    is left to `decide`, which records the failure as the decision's."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    specs: dict[str, ModelSpec] = {}
    for index, (event, playbook) in enumerate(work):
        spec = playbook.compiled.playbook.model
        if spec is None or playbook.name not in models:
            continue
        specs[playbook.name] = spec
        subject_traits = traits.get(event.subject, {})
        try:
            prepared[index] = compute_features(
                playbook.compiled,
                at=event.occurred_at,
                history=history.get(event.subject, []),
                traits=subject_traits,
                base=base_context(event, subject_traits),
                computed=computed_for(playbook, event, history, traits),
            )
        except Exception:  # decide() meets it again and records it
            continue
        rows[playbook.name].append(prepared[index][0])
    primed_models = dict(models)
    for name, feature_rows in rows.items():
        primed_models[name] = primed(specs[name], models[name], feature_rows) or models[name]
    return primed_models


def computed_for(
    playbook: ActivePlaybook,
    event: Event,
    history: dict[str, list[HistoryEvent]],
    traits: dict[str, dict[str, Any]],
) -> dict[str, Any] | None:
    """The `forecast` feature values of this decision (None when the playbook has none)."""
    if not any(feature.kind == "forecast" for feature in playbook.compiled.features):
        return None
    from opsloop.learning import forecast_features  # loads the forecasting libraries

    return forecast_features.computed_features(
        playbook.compiled,
        at=event.occurred_at,
        history=history.get(event.subject, []),
        traits=traits.get(event.subject, {}),
    )


def read_inputs(
    ctx: Context,
    conn: Connection,
    work: list[tuple[Event, ActivePlaybook]],
    traits: dict[str, dict[str, Any]] | None = None,
    ahead: event_store.HistoryRead | None = None,
) -> tuple[dict[str, list[HistoryEvent]], dict[str, dict[str, Any]]]:
    """The history (features and early outcomes) and traits the decisions in `work` read.
    Traits passed in, and a history read ahead that holds all it needs, are not read again."""
    wanted = history_wanted(work)
    if ahead is not None and ahead.wanted.covers(wanted):
        history = ahead.events
    else:  # none, or the playbooks changed since it was read
        history = wanted.read(conn)
    if traits is None:
        traits = event_store.get_traits(conn, wanted.subjects)
    return history, traits


def history_wanted(work: list[tuple[Event, ActivePlaybook]]) -> event_store.HistoryWanted:
    """The history read that serves every decision in `work`."""
    # One read serves the features (events up to each trigger) and the outcomes a decision
    # made late may already have (events after it), so there is no upper bound when the
    # playbooks have outcomes.
    types: set[str] = set()
    since: datetime | None = min(event.occurred_at for event, _ in work)
    until: datetime | None = max(event.occurred_at for event, _ in work)
    for event, playbook in work:
        compiled = playbook.compiled
        types |= compiled.history_types
        if _outcome_types(playbook):
            types.update(_outcome_types(playbook))
            until = None
        if since is not None:
            since = (
                None
                if compiled.lookback is None
                else min(since, event.occurred_at - compiled.lookback)
            )
    subjects = sorted({event.subject for event, _ in work})
    return event_store.HistoryWanted(subjects, types, since, until)


def record_decisions(
    ctx: Context,
    tx: Tx,
    drafts: list[tuple[DecisionDraft, ActivePlaybook]],
    events: dict[int, Event],
    history: dict[str, list[HistoryEvent]],
    now: datetime,
    *,
    fresh_events: bool = False,
) -> list[int]:
    """Store the decisions with their audit entries and early outcomes, and queue the actions
    of the `auto` ones, in the caller's transaction. `fresh_events`: the events were stored in
    this transaction, so no other writer can be deciding them at the same time."""
    conn = tx.conn
    playbooks = {p.name: p for _, p in drafts}.values()
    if any(next(experiments.experiments_of(p.compiled.playbook), None) for p in playbooks):
        drafts = experiments.with_variants(conn, drafts)
    earlier = _earlier_outcomes(drafts, events, history)
    acting = any(draft.status == "auto" and draft.choice is not None for draft, _ in drafts)
    stored = decision_store.store_decisions(
        conn,
        [(draft, p.id, p.version_id) for draft, p in drafts],
        now,
        # Nothing below refers to the new rows unless an outcome links to one or one acts; and
        # no concurrent writer can make the same decision (its unique key would fail only at
        # the commit, where the callers that race no longer catch it).
        at_commit=fresh_events and not earlier and not acting,
    )
    ids = [decision.id for decision in stored]
    audit.record_many(
        conn,
        [
            {
                "at": now,
                "actor": f"playbook:{p.name}",
                "verb": f"decision.{draft.status}",
                "object_type": "decision",
                "object_id": str(decision.id),
                "detail": {"choice": draft.choice, "score": draft.score, "version": p.version},
                # Known from the write: the ledger need not read the decisions back.
                "digest": decision.digest,
            }
            for decision, (draft, p) in zip(stored, drafts, strict=True)
        ],
    )
    outcome_store.link(
        conn,
        [{**row, "decision_id": ids[index], "created_at": now} for index, row in earlier],
    )
    deadlines = [
        (decision_id, p.compiled.playbook.review)
        for decision_id, (draft, p) in zip(ids, drafts, strict=True)
        if draft.status == "pending" and p.compiled.playbook.review is not None
    ]
    if deadlines:
        review_deadlines.schedule(ctx, tx, deadlines, now)
    for decision_id, (draft, playbook) in zip(ids, drafts, strict=True):
        if draft.status == "auto" and draft.choice is not None:
            decision = _as_decision(decision_id, draft, playbook, now)
            option = playbook.compiled.playbook.options[draft.choice]
            act(ctx, tx, decision, draft.choice, option, now)
    return ids


@dataclass(frozen=True, slots=True)
class Models:
    tabular: PlaybookModels | None
    text: PlaybookModels | None


def models_for(ctx: Context, tx: Tx, playbook: ActivePlaybook) -> Models:
    """One playbook's trained models, as `decide` takes them."""
    playbooks = {playbook.name: playbook}
    return Models(
        _models(ctx, tx, playbooks).get(playbook.name),
        _text_models(ctx, tx, playbooks).get(playbook.name),
    )


def needs_llm(playbook: ActivePlaybook) -> bool:
    """The playbook asks the language model, so it decides in a job after the ingest commit."""
    text = playbook.compiled.playbook.text
    return text is not None and text.needs_llm


def _text_models(
    ctx: Context, tx: Tx, playbooks: dict[str, ActivePlaybook]
) -> dict[str, PlaybookModels]:
    """The trained text classifiers of the playbooks with `text.classify.using: model`."""
    found = {}
    for name, playbook in playbooks.items():
        text = playbook.compiled.playbook.text
        if text is not None and text.classify is not None and text.classify.using == "model":
            model = text_model_name(name, text.classify.output)
            found[name] = ctx.models.for_name(tx, name, model)
    return found


def _models(
    ctx: Context, tx: Tx, playbooks: dict[str, ActivePlaybook]
) -> dict[str, PlaybookModels]:
    """The trained models of the playbooks that declare one, looked up once per batch."""
    found = {}
    for name, playbook in playbooks.items():
        spec = playbook.compiled.playbook.model
        if spec is not None:
            found[name] = ctx.models.for_playbook(tx, name, spec)
    return found


def without_cooldown(
    conn: Connection,
    work: list[tuple[Event, ActivePlaybook]],
    *,
    first_seen: Collection[str] = (),
) -> list[tuple[Event, ActivePlaybook]]:
    """Drop triggers that come within a playbook's cooldown of its last decision on the subject
    (measured in event time, so imported history behaves like live traffic). Subjects in
    `first_seen` were created by this transaction: only its own triggers can cool them down."""
    cooled = [(e, p) for e, p in work if p.compiled.playbook.trigger.cooldown]
    if not cooled:
        return work
    last: dict[tuple[int, str], datetime] = {}
    by_playbook: dict[int, set[str]] = defaultdict(set)
    for event, playbook in cooled:
        if event.subject not in first_seen:
            by_playbook[playbook.id].add(event.subject)
    for playbook_id, subjects in by_playbook.items():
        for subject, at in decision_store.last_trigger_times(
            conn, playbook_id, sorted(subjects)
        ).items():
            last[(playbook_id, subject)] = at
    kept = []
    for event, playbook in sorted(work, key=lambda item: (item[0].occurred_at, item[0].id)):
        cooldown: timedelta | None = playbook.compiled.playbook.trigger.cooldown
        key = (playbook.id, event.subject)
        previous = last.get(key)
        if (
            cooldown
            and previous is not None
            and previous <= event.occurred_at < previous + cooldown
        ):
            continue
        if cooldown:
            last[key] = event.occurred_at
        kept.append((event, playbook))
    return kept


def _earlier_outcomes(
    drafts: list[tuple[DecisionDraft, ActivePlaybook]],
    stored: dict[int, Event],
    history: dict[str, list[HistoryEvent]],
) -> list[tuple[int, dict[str, Any]]]:
    """A decision made after its outcome event was stored (both arrived in one batch, or the
    decide job ran late) links to that event now: (position in `drafts`, the link's row
    without the decision's id)."""
    rows = []
    for index, (draft, playbook) in enumerate(drafts):
        outcome = playbook.compiled.playbook.outcome
        if outcome is None or draft.status == "error":
            continue
        trigger_at = stored[draft.event_id].occurred_at
        for past in history.get(draft.subject, []):
            event_id, type_, at = past.id, past.type, past.occurred_at
            if trigger_at <= at <= trigger_at + outcome.within and type_ in _outcome_types(
                playbook
            ):
                rows.append(
                    (
                        index,
                        {
                            "event_id": event_id,
                            "kind": "success" if type_ in outcome.success else "failure",
                            "occurred_at": at,
                            "after_seconds": (at - trigger_at).total_seconds(),
                        },
                    )
                )
                break
    return rows


def _outcome_types(playbook: ActivePlaybook) -> tuple[str, ...]:
    outcome = playbook.compiled.playbook.outcome
    return (*outcome.success, *outcome.failure) if outcome else ()


def error_draft(playbook: ActivePlaybook, event: Event, exc: Exception) -> DecisionDraft:
    message = f"{type(exc).__name__}: {exc}"
    return DecisionDraft(
        playbook=playbook.name,
        subject=event.subject,
        event_id=event.id,
        mode=playbook.mode,
        choice=None,
        score=None,
        status="error",
        needs_approval=False,
        inputs={"event": {"id": event.id, "type": event.type, "payload": event.payload}},
        explanation={"error": message, "why": f"The playbook failed on this event: {message}"},
    )


def _as_decision(
    decision_id: int, draft: DecisionDraft, playbook: ActivePlaybook, now: datetime
) -> Decision:
    return Decision(
        id=decision_id,
        playbook=playbook.name,
        playbook_version=playbook.version,
        subject=draft.subject,
        event_id=draft.event_id,
        mode=draft.mode,
        status=draft.status,
        choice=draft.choice,
        final_choice=draft.choice,
        score=draft.score,
        needs_approval=draft.needs_approval,
        created_at=now,
        decided_at=now,
        why=draft.explanation.get("why", ""),
        explanation=draft.explanation,
        inputs=draft.inputs,
    )
