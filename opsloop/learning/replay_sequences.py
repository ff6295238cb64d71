"""Sequences in a backtest: for each replayed decision that chose an option with `steps`, what
would have been sent and when, and when the sequence would have stopped — walked over the
subject's stored events as the live loop walks them.

The walk starts at the trigger: a `send` is recorded at the current time, a `wait` moves the
time on, a `wait_for` takes its `then` branch at the first awaited event (matching `where`)
within its window, else its `else` branch at the deadline. Before every step, a `stop_when`
event about the subject since the start ends the walk (`stopped`, at that event). A walk that
passes the end of the data is `running`. Approval is not replayed: in `recommend` the live
sequence would start when a person approved, so the times are the earliest it could have run.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

import orjson
import polars as pl

from opsloop.core.backtest_reports import SequenceReplay, SequenceStepCount, SequenceTimeline
from opsloop.core.expressions import compile_expression
from opsloop.core.playbooks import Option, Step
from opsloop.learning.replay import Replayed
from opsloop.learning.replay_features import History, duration, moment
from opsloop.reasoning.compiler import CompiledPlaybook

HOUR_US = 3_600_000_000
EXAMPLES = 5

Seen = tuple[int, str, dict[str, Any]]
"""(time in µs, type, payload) of one event about the subject."""


def replay_sequences(
    history: History, compiled: CompiledPlaybook, replayed: Replayed
) -> list[SequenceReplay]:
    """One summary per option with steps that the replay chose at least once."""
    options = {name: o for name, o in compiled.playbook.options.items() if o.steps}
    found: list[SequenceReplay] = []
    for name, option in options.items():
        chosen = [i for i, choice in enumerate(replayed.choices) if choice == name]
        if chosen:
            found.append(_summary(history, name, option, replayed, chosen))
    return found


def _summary(
    history: History, name: str, option: Option, replayed: Replayed, chosen: list[int]
) -> SequenceReplay:
    types, _ = option.sequence_types()
    subjects = {replayed.subjects[i] for i in chosen}
    events = _events(history, types, subjects)
    sent: Counter[str] = Counter()
    after: dict[str, list[int]] = defaultdict(list)
    ends: Counter[str] = Counter()
    stop_after: list[int] = []
    examples: list[SequenceTimeline] = []
    for i in chosen:
        subject, start = replayed.subjects[i], replayed.times[i]
        walk = _Walk(option, events.get(subject, []), start, history.end)
        status, at = walk.run(option.steps, start)
        ends[status] += 1
        if status == "stopped":
            stop_after.append(at - start)
        for label, when in walk.sends:
            sent[label] += 1
            after[label].append(when - start)
        if len(examples) < EXAMPLES:
            examples.append(
                {
                    "subject": subject,
                    "started_at": moment(start).isoformat(),
                    "sent": [
                        {"step": label, "at": moment(when).isoformat()}
                        for label, when in walk.sends
                    ],
                    "ended": status,
                    "ended_at": moment(at).isoformat() if status != "running" else None,
                }
            )
    steps: list[SequenceStepCount] = [
        {
            "step": label,
            "would_send": count,
            "median_after_hours": round(statistics.median(after[label]) / HOUR_US, 2),
        }
        for label, count in sent.items()
    ]
    return {
        "option": name,
        "started": len(chosen),
        "sends": steps,
        "completed": ends["completed"],
        "stopped": ends["stopped"],
        "running_at_data_end": ends["running"],
        "median_hours_to_stop": round(statistics.median(stop_after) / HOUR_US, 2)
        if stop_after
        else None,
        "examples": examples,
    }


class _Walk:
    def __init__(self, option: Option, events: list[Seen], start: int, end: int | None) -> None:
        self.option = option
        self.events = events
        self.start = start
        self.end = end
        self.sends: list[tuple[str, int]] = []

    def run(self, steps: tuple[Step, ...], at: int) -> tuple[str, int]:
        for step in steps:
            stop = self._stop(at)
            if stop is not None:
                return "stopped", stop
            if self.end is not None and at > self.end:
                return "running", at
            if step.send is not None:
                self.sends.append((step.name, at))
            elif step.wait is not None:
                at += duration(step.wait)
            else:
                assert step.within is not None
                deadline = at + duration(step.within)
                came = self._awaited(step, at, deadline)
                branch = step.then if came is not None else step.otherwise
                status, at = self.run(branch, came if came is not None else deadline)
                if status != "completed":
                    return status, at
        stop = self._stop(at)
        return ("stopped", stop) if stop is not None else ("completed", at)

    def _stop(self, at: int) -> int | None:
        for when, type_, _ in self.events:
            if when > at:
                return None
            if when >= self.start and type_ in self.option.stop_when:
                return when
        return None

    def _awaited(self, step: Step, since: int, deadline: int) -> int | None:
        where = compile_expression(step.where) if step.where is not None else None
        for when, type_, payload in self.events:
            if when < since or type_ not in step.wait_for:
                continue
            if when > deadline:
                return None
            if where is None:
                return when
            context = {"type": type_, "payload": payload, "occurred_at": moment(when).isoformat()}
            try:
                if where.truth(context):
                    return when
            except Exception:  # a payload without the field: not the event waited for
                continue
        return None


def _events(history: History, types: set[str], subjects: set[str]) -> dict[str, list[Seen]]:
    if not types:
        return {}
    columns = ["subject", "t", "type"]
    if "payload" in history.events.columns:
        columns.append("payload")
    rows = history.events.filter(
        pl.col("type").is_in(sorted(types)), pl.col("subject").is_in(sorted(subjects))
    ).select(columns)
    found: dict[str, list[Seen]] = defaultdict(list)
    payloads = (
        rows.get_column("payload").to_list() if "payload" in columns else [None] * rows.height
    )
    for subject, at, type_, payload in zip(
        rows.get_column("subject").to_list(),
        rows.get_column("t").to_list(),
        rows.get_column("type").to_list(),
        payloads,
        strict=True,
    ):
        found[subject].append((at, type_, orjson.loads(payload) if payload else {}))
    for seen in found.values():
        seen.sort(key=lambda item: item[0])
    return found
