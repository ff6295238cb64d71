"""Replaying a scheduled playbook: the runs its schedule would have made over the period.

A scheduled playbook has no triggering events to replay: the live loop decides, at each due
time, about every subject of its kind that its `select` picks. A replay does the same:

    due times in the period (the schedule, in its time zone), each with the subjects of the kind that
    had an event by then ─► features as of each due time (forecasts included) ─► `select`
    keeps the picked ones ─► the cooldown, in time order ─► decided like any trigger

Each (subject, due time) the live loop also decided keeps the id of the event that live run
stored (`schedule.run`, at the due time), so the replayed decision is compared with the live
one and with its review, as any trigger's is. Any other gets a synthetic trigger id, negative
and the same for every version replayed over the same history, so two versions' decisions are
still compared one by one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import polars as pl

from opsloop.core.events import HistoryEvent
from opsloop.core.expressions import CompiledExpression
from opsloop.core.schedules import SCHEDULED_EVENT, parse_schedule
from opsloop.learning.forecast_features import forecast_value
from opsloop.learning.replay_features import History, duration, micros, moment
from opsloop.reasoning.compiler import CompiledFeature, CompiledPlaybook

MAX_RUNS = 1000
"""Due times replayed at most (an hourly schedule over 40 days); the earliest are dropped."""


def due_times(
    compiled: CompiledPlaybook, timezone: str, since: datetime, until: datetime
) -> list[int]:
    """The schedule's due times in [since, until], as µs since the epoch."""
    trigger = compiled.playbook.trigger
    assert trigger.schedule is not None
    schedule = parse_schedule(trigger.schedule, trigger.timezone or timezone)
    found = [micros(due) for due in schedule.between(since, until)]
    return found[-MAX_RUNS:]


def scheduled_triggers(
    history: History,
    compiled: CompiledPlaybook,
    since: datetime,
    until: datetime,
    live: frozenset[int] = frozenset(),
) -> pl.DataFrame:
    """One row per (due time, subject of the kind with an event by then): `code`, `subject`,
    `t`, `id` (the subject's latest event by then: its traits as they stood), `trigger_id`
    (the live run's event when `live`, the playbook's live triggers, holds one for that
    subject and due time), and the columns a trigger event has."""
    times = due_times(compiled, history.timezone, since, until)
    kind = f"{compiled.playbook.subject}:"
    events = history.events.filter(pl.col("subject").str.starts_with(kind))
    empty = pl.DataFrame(
        schema={
            "code": pl.Int64,
            "subject": pl.String,
            "t": pl.Int64,
            "id": pl.Int64,
            "trigger_id": pl.Int64,
            "type": pl.String,
            "source": pl.String,
            "payload": pl.String,
        }
    )
    if not times or events.is_empty():
        return empty
    subjects = events.group_by("code").agg(pl.col("subject").first()).sort("code")
    grid = subjects.join(pl.DataFrame({"t": times, "run": range(len(times))}), how="cross")
    latest = events.select("code", "t", "id").sort("code", "t", "id")
    placed = grid.sort("code", "t").join_asof(latest, on="t", by="code", strategy="backward")
    runs = len(times)
    placed = placed.filter(pl.col("id").is_not_null()).with_columns(
        trigger_id=-(pl.col("code") * runs + pl.col("run") + 1)
    )
    if live:
        ran = events.filter(
            pl.col("type") == SCHEDULED_EVENT, pl.col("id").is_in(sorted(live))
        ).select("code", "t", live_id=pl.col("id"))
        placed = (
            placed.join(ran.unique(["code", "t"]), on=["code", "t"], how="left")
            .with_columns(trigger_id=pl.coalesce("live_id", "trigger_id"))
            .drop("live_id")
        )
    return (
        placed.with_columns(
            type=pl.lit(SCHEDULED_EVENT),
            source=pl.lit("schedule"),
            payload=pl.lit(None, dtype=pl.String),
        )
        .select(empty.columns)
        .sort("t", "code")
    )


def forecast_column(
    history: History,
    feature: CompiledFeature,
    triggers: pl.DataFrame,
    entities: list[dict[str, Any]],
) -> list[Any]:
    """The `forecast` feature's value at each trigger, as the live decision computes it."""
    wanted = list(feature.event_types)
    rows = history.events.filter(
        pl.col("type").is_in(wanted),
        pl.col("code").is_in(triggers.get_column("code").unique().to_list()),
    )
    by_code: dict[int, list[HistoryEvent]] = {}
    has_payload = "payload" in rows.columns
    for code, type_, t, payload, event_id in zip(
        rows.get_column("code").to_list(),
        rows.get_column("type").to_list(),
        rows.get_column("t").to_list(),
        rows.get_column("payload").to_list() if has_payload else [None] * rows.height,
        rows.get_column("id").to_list(),
        strict=True,
    ):
        by_code.setdefault(code, []).append(
            HistoryEvent(type_, moment(t), orjson.loads(payload) if payload else {}, "", event_id)
        )
    return [
        forecast_value(feature, moment(t), by_code.get(code, []), entity)
        for code, t, entity in zip(
            triggers.get_column("code").to_list(),
            triggers.get_column("t").to_list(),
            entities,
            strict=True,
        )
    ]


def picked(
    compiled: CompiledPlaybook, columns: dict[str, list[Any]], triggers: pl.DataFrame
) -> tuple[list[int], int]:
    """The rows `select` picks, then the cooldown in time order: (the indices to keep, how
    many `select` picked)."""
    select: CompiledExpression | None = compiled.select
    names = [f.name for f in compiled.features]
    codes = triggers.get_column("code").to_list()
    times = triggers.get_column("t").to_list()
    cooldown = compiled.playbook.trigger.cooldown
    span = duration(cooldown) if cooldown else 0
    last: dict[int, int] = {}
    kept: list[int] = []
    selected = 0
    for i in range(triggers.height):
        if select is not None:
            context = {
                "subject": columns["subject"][i],
                "entity": columns["entity"][i] if "entity" in columns else {},
                **{name: columns[name][i] for name in names if name in columns},
            }
            try:
                if select.truth(context) is not True:
                    continue
            except Exception:  # a null where a number was expected: not picked, as live
                continue
        selected += 1
        if span:
            previous = last.get(codes[i])
            if previous is not None and previous <= times[i] < previous + span:
                continue
            last[codes[i]] = times[i]
        kept.append(i)
    return kept, selected
