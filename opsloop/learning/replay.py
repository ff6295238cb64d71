"""Replay: run a compiled playbook over stored events, every trigger of a period at once.

The live loop decides one triggering event at a time (`reasoning.decide`). A replay reaches the
same answers in bulk and without touching storage: the triggers and the cooldown come from the
events frame, features are computed for all triggers together (`replay_features`), and the
decision steps run a column at a time (`replay_decisions`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson
import polars as pl

from opsloop.core.expressions import CompiledExpression
from opsloop.learning.replay_decisions import Columns, Scorer, TextScorer, decide_all
from opsloop.learning.replay_features import (
    History,
    Traits,
    duration,
    event_feature,
    field_keys,
    micros,
    moment,
    where_plan,
)
from opsloop.learning.replay_schedules import forecast_column, picked, scheduled_triggers
from opsloop.reasoning.compiler import CompiledPlaybook

Progress = Callable[[int, int], None]

# --- what a playbook reads -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Needs:
    """What replaying some playbooks reads from the ledger."""

    kinds: frozenset[str]
    types: frozenset[str]
    payload_keys: frozenset[str]
    payload_types: frozenset[str]
    with_source: bool
    lookback: timedelta | None
    """How far before the period the features (and cooldowns) look; None: all history."""
    unbounded_after: bool
    """Outcome windows look past the period's end, so read to the end of the data."""


def needs(playbooks: Iterable[CompiledPlaybook]) -> Needs:
    kinds: set[str] = set()
    types: set[str] = set()
    keys: set[str] = set()
    payload_types: set[str] = set()
    with_source = False
    lookback: timedelta | None = timedelta(0)
    after = False
    for compiled in playbooks:
        spec = compiled.playbook
        kinds.add(spec.subject)
        types.update(spec.trigger.starts)
        types.update(spec.trigger.unless)
        types.update(compiled.history_types)
        if spec.outcome is not None:
            types.update(spec.outcome.success)
            types.update(spec.outcome.failure)
            after = True
        if _reads(compiled, "event"):
            payload_types.update(spec.trigger.starts)
            with_source = True
        for feature in compiled.features:
            plan = where_plan(feature.where)
            if plan is None:
                payload_types.update(feature.event_types)
                with_source = True
            else:
                keys.update(plan.keys)
                with_source = with_source or plan.source
            if feature.kind == "forecast":
                payload_types.update(feature.event_types)  # the units sold, from the payload
            elif feature.field_path:
                wanted = field_keys(feature)
                if wanted is not None:
                    keys.update(wanted)
                else:
                    payload_types.update(feature.event_types)
        for option in spec.options.values():
            if option.steps:  # a backtest walks its sequences over the subject's events
                read, with_payload = option.sequence_types()
                types.update(read)
                payload_types.update(with_payload)
        cooldown = spec.trigger.cooldown or timedelta(0)
        # An absence decided in the period may have opened its window before it.
        window = spec.trigger.within or timedelta(0)
        if compiled.lookback is None or lookback is None:
            lookback = None
        else:
            lookback = max(lookback, compiled.lookback + window, cooldown + window)
    return Needs(
        frozenset(kinds),
        frozenset(types),
        frozenset(keys),
        frozenset(payload_types),
        with_source,
        lookback,
        after,
    )


def _reads(compiled: CompiledPlaybook, root: str) -> bool:
    if root == "event" and compiled.playbook.text is not None:
        return True  # the message is in the trigger's payload
    tables = (*compiled.point_tables, *compiled.choice_tables)
    return any(root in expression.roots for expression in _expressions(compiled)) or any(
        root in table.roots for table in tables
    )


def _expressions(compiled: CompiledPlaybook) -> Iterable[CompiledExpression]:
    for feature in compiled.features:
        if feature.formula is not None:
            yield feature.formula
    for line in compiled.scorecard:
        yield line.when
        if line.points is not None:
            yield line.points
    yield compiled.score
    for rule in compiled.rules:
        yield rule.when
    for guardrail in compiled.guardrails:
        yield guardrail.when


# --- one version's decisions -----------------------------------------------------------------


@dataclass
class Replayed:
    """One playbook version's decisions over the period, one list entry per decision, in
    subject and time order."""

    triggers: int
    """Trigger events in the period."""
    skipped: int
    """Of those, skipped by the cooldown."""
    event_ids: list[int]
    subjects: list[str]
    times: list[int]
    """When each triggering event occurred, in µs since the epoch."""
    choices: list[str | None]
    scores: list[float | None]
    points: list[float]
    held: list[bool]
    errors: list[list[tuple[str, str]] | None]
    """Per decision, the (where, message) of each expression that failed, or None."""
    outcomes: list[str | None]
    """`success`, `failure` or `open` (window not closed by the end of the data); None when the
    playbook has no outcome or the decision failed."""


def replay(
    history: History,
    compiled: CompiledPlaybook,
    *,
    since: datetime,
    until: datetime,
    progress: Progress | None = None,
    scorer: Scorer | None = None,
    text_scorer: TextScorer | None = None,
    live: frozenset[int] = frozenset(),
) -> Replayed:
    """`live`: the triggering events of the playbook's live decisions in the period; a
    scheduled playbook's remade run that the live loop also made takes that run's event id,
    so it is compared with the live decision and its review."""
    spec = compiled.playbook
    # Versions with the same trigger (most changes touch scores and rules) share the work
    # that depends only on it.
    definition = spec.trigger.model_dump_json() + spec.subject

    def once(what: str, compute: Callable[[], Any]) -> Any:
        if (definition, what) not in history.computed:
            history.computed[(definition, what)] = compute()
        return history.computed[(definition, what)]

    scheduled = spec.trigger.is_scheduled
    if scheduled:
        triggers = once(
            "triggers", lambda: scheduled_triggers(history, compiled, since, until, live)
        )
        in_period = skipped = 0
    else:
        triggers, in_period, skipped = once(
            "triggers", lambda: _triggers(history, compiled, micros(since), micros(until))
        )
    n = triggers.height
    codes, times = triggers.get_column("code"), triggers.get_column("t")
    at_trigger = history.at_or_before(codes, times)
    subject_start = codes * history.span - 1

    columns: Columns = {"subject": once("subject", triggers.get_column("subject").to_list)}
    forecasts = [f for f in compiled.features if f.kind == "forecast"]
    if (
        scheduled
        or forecasts
        or _reads(compiled, "entity")
        or any(f.kind == "trait" for f in compiled.features)
    ):
        traits = once("traits", lambda: Traits(history, triggers))
        columns["entity"] = once("entity", lambda: [traits.at(i) for i in range(n)])
    if _reads(compiled, "event"):
        columns["event"] = once("event", lambda: _trigger_events(triggers))
    for feature in compiled.features:
        if feature.kind == "forecast":
            compute = partial(forecast_column, history, feature, triggers, columns["entity"])
            columns[feature.name] = once(feature.spec.model_dump_json(), compute)
        elif feature.event_types:
            compute = partial(event_feature, history, feature, triggers, at_trigger, subject_start)
            columns[feature.name] = once(feature.spec.model_dump_json(), compute)
    decided = decide_all(compiled, columns, n, history.memo, progress, scorer, text_scorer)
    ids = triggers.get_column("trigger_id" if scheduled else "id").to_list()
    rows = list(range(n))
    if scheduled:
        # The runs decide only about the subjects `select` picks, after the cooldown.
        rows, selected = picked(compiled, columns, triggers)
        in_period, skipped = selected, selected - len(rows)
        triggers = triggers[rows]

    def kept(values: list[Any]) -> list[Any]:
        return values if not scheduled else [values[i] for i in rows]

    choices = kept(decided.choices)
    return Replayed(
        triggers=in_period,
        skipped=skipped,
        event_ids=kept(ids),
        subjects=kept(columns["subject"]),
        times=kept(times.to_list()),
        choices=choices,
        scores=kept(decided.scores),
        points=kept(decided.points),
        held=kept(decided.held),
        errors=kept(decided.errors),
        outcomes=_outcomes(history, compiled, triggers, choices),
    )


def _trigger_events(triggers: pl.DataFrame) -> list[dict[str, Any]]:
    """`event` as a decision's expressions see it."""
    payloads = triggers.get_column("payload").to_list()
    sources = triggers.get_column("source").to_list()
    return [
        {
            "type": type_,
            "source": source,
            "payload": orjson.loads(payload) if payload else {},
            "occurred_at": moment(at).isoformat(),
        }
        for type_, source, payload, at in zip(
            triggers.get_column("type").to_list(),
            sources,
            payloads,
            triggers.get_column("t").to_list(),
            strict=True,
        )
    ]


def _triggers(
    history: History, compiled: CompiledPlaybook, since: int, until: int
) -> tuple[pl.DataFrame, int, int]:
    """The triggering events this version decides on in [since, until], after its cooldown;
    also how many triggers the period had and how many the cooldown skipped."""
    spec = compiled.playbook
    candidates = history.events.filter(
        pl.col("type").is_in(list(spec.trigger.starts)),
        pl.col("subject").str.starts_with(f"{spec.subject}:"),
    )
    if spec.trigger.is_absence:
        candidates = _absent(history, compiled, candidates)
    candidates = candidates.filter(pl.col("t") <= until)
    in_period = candidates.filter(pl.col("t") >= since).height
    cooldown = spec.trigger.cooldown
    if cooldown:
        # As the live loop does, in event time: a trigger within the cooldown of the last one
        # decided about the subject is skipped. Triggers before the period count as decided.
        keep: list[bool] = []
        span = duration(cooldown)
        last: dict[int, int] = {}
        for code, at in zip(
            candidates.get_column("code").to_list(),
            candidates.get_column("t").to_list(),
            strict=True,
        ):
            previous = last.get(code)
            if previous is not None and previous <= at < previous + span:
                keep.append(False)
                continue
            last[code] = at
            keep.append(True)
        candidates = candidates.filter(pl.Series(keep, dtype=pl.Boolean))
    kept = candidates.filter(pl.col("t") >= since)
    return kept, in_period, in_period - kept.height


def _absent(history: History, compiled: CompiledPlaybook, opened: pl.DataFrame) -> pl.DataFrame:
    """Absences as the live loop decides them: each `after` event with no `unless` event about
    the subject in its window, decided when the window closes (its `t` moved there, so
    features read the whole window, and a window still open at the period's end is left out
    by the caller)."""
    trigger = compiled.playbook.trigger
    assert trigger.within is not None
    span = duration(trigger.within)
    closing = opened.with_columns(closes=pl.col("t") + span)
    stops = history.events.filter(pl.col("type").is_in(list(trigger.unless))).select(
        "code", stop="t"
    )
    stopped = (
        closing.select("id", "code", "t", "closes")
        .join(stops, on="code")
        .filter(pl.col("stop") >= pl.col("t"), pl.col("stop") <= pl.col("closes"))
        .get_column("id")
        .unique()
    )
    kept = closing.filter(~pl.col("id").is_in(stopped.implode()))
    return kept.with_columns(t=pl.col("closes")).drop("closes").sort("code", "t", "id")


# --- outcomes ---------------------------------------------------------------------------------


def _outcomes(
    history: History,
    compiled: CompiledPlaybook,
    triggers: pl.DataFrame,
    choices: list[str | None],
) -> list[str | None]:
    """As the live loop links them: the first success or failure event about the subject at
    or after the trigger and within the window; none by the window's close is a failure; a
    window that had not closed by the end of the data is `open`."""
    outcome = compiled.playbook.outcome
    if outcome is None:
        return [None] * len(choices)
    success = set(outcome.success)
    rows = (
        history.events.lazy()
        .filter(pl.col("type").is_in([*outcome.success, *outcome.failure]))
        .select("key", "code", "t", "type")
        .collect()
    )
    codes, times = triggers.get_column("code"), triggers.get_column("t")
    first = rows.get_column("key").search_sorted(history.before(codes, times), side="right")
    found = first.cast(pl.Int64).to_list()
    row_codes = rows.get_column("code").to_list()
    row_times = rows.get_column("t").to_list()
    row_types = rows.get_column("type").to_list()
    window = duration(outcome.within)
    end = history.end if history.end is not None else 0
    out: list[str | None] = []
    for position, code, at, choice in zip(
        found, codes.to_list(), times.to_list(), choices, strict=True
    ):
        if choice is None:
            out.append(None)
        elif (
            position < len(row_codes)
            and row_codes[position] == code
            and row_times[position] <= at + window
        ):
            out.append("success" if row_types[position] in success else "failure")
        elif at + window < end:
            out.append("failure")
        else:
            out.append("open")
    return out
