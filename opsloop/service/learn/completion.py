"""Completion speed: how soon after starting (a signup) customers take the first key action,
per weekly cohort, before and after a sequence playbook went live — and the sequence's funnel.

For a playbook whose option has `steps` and whose `outcome.success` names the key action (an
onboarding playbook: `signup.completed` → `project.created` within 14 days):

* each trigger event (a signup) is a member of the ISO week it happened in; its time to
  complete is the time to the subject's first success event after it, within the outcome
  window; a window still open with no action yet is `open`, counted apart;
* a start counts as `after` when it happened once the playbook's first version existed, else
  `before`; the report compares the median time and the share completed of the two (the same
  events, whether or not OpsLoop decided on them: imported history counts). A cohort is `live`
  when the playbook existed during its week;
* the funnel counts the playbook's sequences: started, how many reached each step, completed,
  stopped because the customer acted (a `stop_when` event), stopped by a person, running.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TypedDict

from opsloop.core.durations import in_words
from opsloop.core.errors import NotFound
from opsloop.core.playbooks import Playbook
from opsloop.service.context import ActivePlaybook, Context
from opsloop.store import playbooks as playbook_store
from opsloop.store import sequences as sequence_store
from opsloop.store import training_data

HOUR = 3600.0


class Cohort(TypedDict):
    week: str
    """The ISO week's Monday (UTC), `2026-03-02`."""
    started: int
    completed: int
    open: int
    """Still within the window, no key action yet."""
    median_hours: float | None
    """Median hours to the key action, of those who took it."""
    live: bool
    """The playbook existed during the week."""


class Side(TypedDict):
    started: int
    completed: int
    completion_rate: float | None
    median_hours: float | None


class FunnelStep(TypedDict):
    step: int
    label: str
    reached: int


class Funnel(TypedDict):
    started: int
    steps: list[FunnelStep]
    completed: int
    stopped_acted: int
    stopped_by_person: int
    running: int
    skipped: int


class CompletionReport(TypedDict):
    playbook: str
    starts: list[str]
    key_action: list[str]
    within: str
    live_since: datetime | None
    cohorts: list[Cohort]
    before: Side
    after: Side
    median_change_hours: float | None
    """After minus before: negative is faster."""
    funnel: Funnel


def sequence_playbooks(ctx: Context) -> list[ActivePlaybook]:
    """Active playbooks with a sequence option and a success outcome: the ones reported on."""
    return [
        playbook
        for playbook in ctx.catalog.active().values()
        if _has_steps(playbook.compiled.playbook) and playbook.compiled.playbook.outcome
    ]


def completion(ctx: Context, name: str, *, weeks: int = 12) -> CompletionReport:
    playbook = ctx.catalog.active().get(name)
    if playbook is None:
        raise NotFound(f"no active playbook named {name!r}")
    spec = playbook.compiled.playbook
    if spec.outcome is None:
        raise NotFound(
            f"playbook {name!r} has no outcome: say what completing is (outcome.success)"
        )
    now = ctx.clock()
    since = _monday(now) - timedelta(weeks=weeks - 1)
    within = spec.outcome.within
    with ctx.db.read() as conn:
        versions = playbook_store.list_versions(conn, playbook.id)
        starts = training_data.trigger_events(
            conn, list(spec.trigger.starts), spec.subject, until=now
        )
        actions = training_data.trigger_events(
            conn, list(spec.outcome.success), spec.subject, until=now
        )
        rows = sequence_store.listing(conn, playbook=name, limit=1_000_000)
    live_since = min((v["created_at"] for v in versions), default=None)
    firsts: dict[str, list[datetime]] = defaultdict(list)
    for event in actions:
        firsts[event.subject].append(event.occurred_at)
    by_week: dict[datetime, list[float | None]] = defaultdict(list)
    open_by_week: dict[datetime, int] = defaultdict(int)
    sides: dict[bool, list[float | None]] = {False: [], True: []}
    for event in starts:
        if event.occurred_at < since:
            continue
        week = _monday(event.occurred_at)
        took = _first_after(firsts.get(event.subject, []), event.occurred_at, within)
        if took is None and event.occurred_at + within > now:
            open_by_week[week] += 1
            continue
        seconds = None if took is None else (took - event.occurred_at).total_seconds()
        by_week[week].append(seconds)
        # Each start counts on the side of when it happened: before the playbook, or with it.
        sides[live_since is not None and event.occurred_at >= live_since].append(seconds)
    cohorts: list[Cohort] = []
    for n in range(weeks):
        week = since + timedelta(weeks=n)
        times = by_week.get(week, [])
        done = [t for t in times if t is not None]
        cohorts.append(
            {
                "week": week.date().isoformat(),
                "started": len(times) + open_by_week.get(week, 0),
                "completed": len(done),
                "open": open_by_week.get(week, 0),
                "median_hours": _hours(statistics.median(done)) if done else None,
                "live": live_since is not None and live_since < week + timedelta(weeks=1),
            }
        )
    before, after = _side(sides[False]), _side(sides[True])
    change = (
        round(after["median_hours"] - before["median_hours"], 2)
        if after["median_hours"] is not None and before["median_hours"] is not None
        else None
    )
    return {
        "playbook": name,
        "starts": list(spec.trigger.starts),
        "key_action": list(spec.outcome.success),
        "within": in_words(within),
        "live_since": live_since,
        "cohorts": cohorts,
        "before": before,
        "after": after,
        "median_change_hours": change,
        "funnel": _funnel(spec, rows),
    }


def _funnel(spec: Playbook, rows: list[dict[str, object]]) -> Funnel:
    option = next(option for option in spec.options.values() if option.steps)
    started = [row for row in rows if row["status"] != "skipped"]
    steps: list[FunnelStep] = [
        {
            "step": index + 1,
            "label": step.name,
            "reached": sum(int(str(row["steps_done"])) > index for row in started),
        }
        for index, step in enumerate(option.steps)
    ]
    stopped = [row for row in started if row["status"] == "stopped"]
    by_person = sum(str(row["stop_reason"] or "").startswith("stopped by ") for row in stopped)
    return {
        "started": len(started),
        "steps": steps,
        "completed": sum(row["status"] == "completed" for row in started),
        "stopped_acted": len(stopped) - by_person,
        "stopped_by_person": by_person,
        "running": sum(row["status"] in sequence_store.OPEN for row in started),
        "skipped": len(rows) - len(started),
    }


def _side(times: list[float | None]) -> Side:
    done = [t for t in times if t is not None]
    return {
        "started": len(times),
        "completed": len(done),
        "completion_rate": round(len(done) / len(times), 4) if times else None,
        "median_hours": _hours(statistics.median(done)) if done else None,
    }


def _first_after(times: list[datetime], start: datetime, within: timedelta) -> datetime | None:
    return next((at for at in times if start <= at <= start + within), None)


def _has_steps(spec: Playbook) -> bool:
    return any(option.steps for option in spec.options.values())


def _monday(at: datetime) -> datetime:
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _hours(seconds: float) -> float:
    return round(seconds / HOUR, 2)
