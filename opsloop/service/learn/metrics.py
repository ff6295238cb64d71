"""The numbers that say whether OpsLoop is helping: per playbook, per ISO week, and now against
a baseline period; and customer satisfaction before and after.

* decision success rate: of decisions that acted and whose outcome window has closed, the
  share followed by the playbook's success event within the window (a window still open is
  left out: successes arrive early and failures only when it closes, so counting open windows
  would flatter the recent weeks);
* human override rate: of reviewed decisions, the share a person overrode or rejected (in
  `auto`, the sampled decisions reviewed after the fact);
* time to action: seconds from receiving the triggering event to the first delivered action
  (so review waiting time counts, which is what `auto` saves), median and 90th percentile;
* task completion: seconds from a `task` action creating its task to someone marking it done;
* customer satisfaction: the mean 1-5 rating of CSAT events and the share of 4s and 5s.

Weeks and periods place a decision by when its triggering event occurred (business time, so
imported history and the demo's back-filled decisions land in their own weeks); `since` keeps
the decisions made in that window, as before. A week is `partial` when the data does not cover
all of it: `first` when the data starts after its Monday (a playbook's first decision; for
satisfaction, the first answer or the first decision of any playbook, whichever came first),
`current` while it has not ended.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter
from typing import Any, Generic, Literal, TypeVar, cast

from opsloop.core.decisions import ACTED_STATUSES, DECISION_STATUSES
from opsloop.core.periods import DEFAULT_BASELINE, Baseline, Period, iso_week, parse_baseline
from opsloop.core.periods import week_start as monday_of
from opsloop.service.context import Context
from opsloop.service.learn.views import (
    By,
    Change,
    CsatFigures,
    CsatReport,
    CsatVersusBaseline,
    CsatWeek,
    DecisionFigures,
    DecisionsVersusBaseline,
    DecisionWeek,
    MetricsReport,
    PlaybookMetrics,
    WeekPart,
)
from opsloop.store import metrics as metric_store
from opsloop.store import outcomes as outcome_store

CSAT_EVENT = "csat.submitted"
CSAT_FIELD = "rating"
SATISFIED = 4
"""A rating of 4 or 5 (of 5) counts as satisfied."""

Keep = Callable[[datetime], bool]
"""Which moments a block counts: all, a period's, a week's."""
Figures = TypeVar("Figures", DecisionFigures, CsatFigures)


def metrics(
    ctx: Context, *, since: timedelta | None = None, playbook: str | None = None
) -> list[PlaybookMetrics]:
    """Per playbook, all time (or decisions made in `since`)."""
    return report(ctx, since=since, playbook=playbook)["playbooks"]


def report(
    ctx: Context,
    *,
    since: timedelta | None = None,
    playbook: str | None = None,
    by: By | None = None,
    baseline: Baseline | None = None,
    csat_event: str = CSAT_EVENT,
    csat_field: str = CSAT_FIELD,
) -> MetricsReport:
    """`GET /api/metrics`: per playbook (with `by="week"`, per ISO week too) and customer
    satisfaction, each against its baseline period."""
    now = ctx.clock()
    start = now - since if since else None
    baseline = baseline or parse_baseline(DEFAULT_BASELINE)
    windows = {
        name: active.compiled.playbook.outcome.within
        for name, active in ctx.catalog.active().items()
        if active.compiled.playbook.outcome is not None
    }
    with ctx.db.read() as conn:
        names = metric_store.playbook_names(conn)
        facts = metric_store.decision_facts(conn, start)
        task_rows = metric_store.task_facts(conn, start)
        answers = metric_store.rating_events(conn, csat_event, start)
    facts_of: dict[str, list[Any]] = defaultdict(list)
    for fact in facts:
        facts_of[fact.playbook].append(fact)
    tasks_of: dict[str, list[Any]] = defaultdict(list)
    for task in task_rows:
        tasks_of[task.playbook].append(task)

    rows: list[PlaybookMetrics] = []
    for row in names:
        name = row["name"]
        if playbook and name != playbook:
            continue
        mine, their_tasks = facts_of.get(name, []), tasks_of.get(name, [])

        def block(
            keep: Keep,
            mine: list[Any] = mine,
            their_tasks: list[Any] = their_tasks,
            within: timedelta | None = windows.get(name),
        ) -> DecisionFigures:
            return _decision_block(
                [f for f in mine if keep(f.trigger_at)],
                [t for t in their_tasks if keep(t.trigger_at)],
                within,
                now,
            )

        first = min((f.trigger_at for f in mine), default=None)
        within = windows.get(name)
        weeks: list[DecisionWeek] | None = None
        if by == "week":
            weeks = _decision_weeks(mine, their_tasks, within, now)
        rows.append(
            {
                "playbook": name,
                "mode": row["mode"],
                "outcome_within_seconds": within.total_seconds() if within else None,
                **block(lambda at: True),
                "vs_baseline": _decisions_versus(_split(baseline, first, now, block)),
                "weeks": weeks,
            }
        )
    return {
        "playbooks": rows,
        "csat": _csat(
            answers,
            csat_event,
            csat_field,
            by,
            baseline,
            now,
            started=min((f.trigger_at for f in facts), default=None),
        ),
        "by": by,
        "baseline": baseline.text,
    }


def close_outcome_windows(ctx: Context) -> int:
    """Record failures for decisions whose success window closed without a success event."""
    now = ctx.clock()
    closed = 0
    active = ctx.catalog.active()
    with ctx.db.transaction() as tx:
        for playbook in active.values():
            outcome = playbook.compiled.playbook.outcome
            if outcome is not None:
                closed += outcome_store.close_expired(tx.conn, playbook.id, outcome.within, now)
    return closed


# --- blocks: the same numbers over all time, a period or a week -------------------------------


def _decision_block(
    facts: Sequence[Any], tasks: Sequence[Any], within: timedelta | None, now: datetime
) -> DecisionFigures:
    counts: dict[str, int] = dict.fromkeys(DECISION_STATUSES, 0)
    successes = failures = still_open = 0
    # Sampled `auto` decisions reviewed after the fact: in `auto`, they are the override rate.
    after = dict.fromkeys(("approve", "override", "reject"), 0)
    waits: list[float] = []
    for fact in facts:
        counts[fact.status] = counts.get(fact.status, 0) + 1
        if fact.status == "auto" and fact.verdict in after:
            after[fact.verdict] += 1
        if fact.status in ACTED_STATUSES:
            settled = _settled(fact.outcome, fact.trigger_at, within, now)
            successes += settled == "success"
            failures += settled == "failure"
            still_open += settled == "open"
        if fact.delivered_at is not None:
            waits.append(max((fact.delivered_at - fact.received_at).total_seconds(), 0.0))
    done = [
        max((t.completed_at - t.created_at).total_seconds(), 0.0)
        for t in tasks
        if t.status == "done" and t.completed_at is not None
    ]
    overridden = counts["overridden"] + after["override"]
    rejected = counts["rejected"] + after["reject"]
    reviewed = counts["approved"] + after["approve"] + overridden + rejected
    changed = overridden + rejected
    return {
        "decisions": counts,
        "total": sum(counts.values()),
        "pending_reviews": counts["pending"],
        "success_rate": _rate(successes, successes + failures),
        "successes": successes,
        "failures": failures,
        "open_windows": still_open,
        "override_rate": _rate(changed, reviewed),
        "overridden": overridden,
        "rejected": rejected,
        "reviewed": reviewed,
        "median_time_to_action_seconds": _seconds(percentile(waits, 0.5)),
        "p90_time_to_action_seconds": _seconds(percentile(waits, 0.9)),
        "actions_timed": len(waits),
        "median_task_completion_seconds": _seconds(percentile(done, 0.5)),
        "p90_task_completion_seconds": _seconds(percentile(done, 0.9)),
        "tasks_done": len(done),
        "tasks_open": sum(1 for t in tasks if t.status == "open"),
    }


_TRIGGER_AT = attrgetter("trigger_at")
"""When a decision fact's (or a task's) triggering event occurred: the week it counts in."""


def _decision_weeks(
    facts: list[Any], tasks: list[Any], within: timedelta | None, now: datetime
) -> list[DecisionWeek]:
    """One playbook's numbers in each ISO week its decisions' triggers fall in."""
    tasks_in = _by_week_of(tasks, _TRIGGER_AT)

    def figures_of(week: str, facts: list[Any]) -> DecisionFigures:
        return _decision_block(facts, tasks_in.get(week, []), within, now)

    return [
        {"week": week, "starts": starts, "partial": part, **figures}
        for week, starts, part, figures in _by_week(facts, _TRIGGER_AT, figures_of, now)
    ]


def _settled(
    outcome: str | None, trigger_at: datetime, within: timedelta | None, now: datetime
) -> Literal["success", "failure", "open"] | None:
    """A decision's outcome once its window has closed; `open` before. Without a window (the
    playbook no longer declares an outcome), whatever outcome was linked counts."""
    if within is None:
        return "success" if outcome == "success" else "failure" if outcome == "failure" else None
    if trigger_at + within > now:
        return "open"
    # Closed, but the periodic job has not recorded the failure yet: it is one.
    return "success" if outcome == "success" else "failure"


def _csat_block(ratings: Sequence[float]) -> CsatFigures:
    satisfied = sum(1 for r in ratings if r >= SATISFIED)
    return {
        "responses": len(ratings),
        "mean_rating": round(sum(ratings) / len(ratings), 3) if ratings else None,
        "satisfied": satisfied,
        "satisfied_share": _rate(satisfied, len(ratings)),
    }


def _csat(
    answers: list[tuple[datetime, dict[str, Any]]],
    event: str,
    field: str,
    by: By | None,
    baseline: Baseline,
    now: datetime,
    *,
    started: datetime | None,
) -> CsatReport:
    """`started`: the first decision's trigger, which tells whether the first week of answers
    is a whole one (answers trail the work they rate, so the first answer alone would not)."""
    rated = [(at, r) for at, payload in answers if (r := rating(payload.get(field))) is not None]

    def block(keep: Keep) -> CsatFigures:
        return _csat_block([r for at, r in rated if keep(at)])

    first = rated[0][0] if rated else None
    weeks: list[CsatWeek] | None = None
    if by == "week":
        weeks = [
            {"week": week, "starts": starts, "partial": part, **figures}
            for week, starts, part, figures in _by_week(
                rated,
                lambda answer: answer[0],
                lambda _, answers: _csat_block([r for _, r in answers]),
                now,
                started=started,
            )
        ]
    return {
        "event": event,
        "field": field,
        **block(lambda at: True),
        "ignored": len(answers) - len(rated),
        "vs_baseline": _csat_versus(_split(baseline, first, now, block)),
        "weeks": weeks,
    }


def rating(value: Any) -> float | None:
    """A 1 to 5 rating, or None for anything else (missing, text, out of range)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and 1 <= value <= 5:
        return float(value)
    return None


# --- periods -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Split(Generic[Figures]):
    """The same numbers in the baseline period and in the recent one."""

    baseline: Period
    before: Figures
    recent: Period | None
    """None until the baseline period has ended."""
    after: Figures | None


def _split(
    baseline: Baseline, first: datetime | None, now: datetime, block: Callable[[Keep], Figures]
) -> _Split[Figures] | None:
    periods = baseline.periods(first, now)
    if periods is None:
        return None
    before, after = periods
    return _Split(
        before, block(before.__contains__), after, block(after.__contains__) if after else None
    )


PERIOD_COUNTS = ("total", "open_windows", "reviewed", "actions_timed", "tasks_done", "tasks_open")
"""What each period of `vs_baseline` counts: with them, a reader can tell why a number has no
recent value (no decision yet, every outcome window still open, nothing reviewed, timed or done)."""


def _decisions_versus(split: _Split[DecisionFigures] | None) -> DecisionsVersusBaseline | None:
    """Each number in the baseline period and the recent one, and its relative change."""
    return cast(
        DecisionsVersusBaseline | None, _versus(split, DecisionsVersusBaseline, PERIOD_COUNTS)
    )


def _csat_versus(split: _Split[CsatFigures] | None) -> CsatVersusBaseline | None:
    return cast(CsatVersusBaseline | None, _versus(split, CsatVersusBaseline, ("responses",)))


def _versus(
    split: _Split[Any] | None, shape: type, counts: tuple[str, ...]
) -> dict[str, Any] | None:
    """The baseline and recent periods with their `counts`, and every other key of `shape` (a
    TypedDict: the numbers compared) as a `Change`."""
    if split is None:
        return None
    before, after, recent = split.before, split.after, split.recent

    def period(span: Period, figures: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "since": span.since,
            "until": span.until,
            **{count: figures[count] for count in counts},
        }

    compared = [name for name in shape.__annotations__ if name not in ("baseline", "recent")]
    return {
        "baseline": period(split.baseline, before),
        "recent": period(recent, after) if recent and after else None,
        **{name: _compared(before[name], after[name] if after else None) for name in compared},
    }


def _compared(baseline: float | None, recent: float | None) -> Change:
    return {"baseline": baseline, "recent": recent, "change": change(baseline, recent)}


Item = TypeVar("Item")


def _by_week(
    items: Sequence[Item],
    moment: Callable[[Item], datetime],
    figures_of: Callable[[str, list[Item]], Figures],
    now: datetime,
    *,
    started: datetime | None = None,
) -> list[tuple[str, date, WeekPart | None, Figures]]:
    """Each ISO week the items' moments fall in, oldest first: (week, its Monday, which part of
    it the data covers when not all of it, `figures_of` the week's items). The data starts at
    the first moment, or at `started` when that is earlier."""
    grouped = _by_week_of(items, moment)
    begins = min([*map(moment, items), *([started] if started else [])], default=None)
    first = begins.astimezone(UTC).date() if begins else None
    weeks = []
    for week in sorted(grouped):
        monday = monday_of(moment(grouped[week][0]))
        weeks.append((week, monday, _part(monday, first, now), figures_of(week, grouped[week])))
    return weeks


def _by_week_of(items: Sequence[Item], moment: Callable[[Item], datetime]) -> dict[str, list[Item]]:
    """The items in each ISO week, in one pass: a week's numbers then read only its own rows
    (filtering every row for every week made a year's dashboard take seconds)."""
    weeks: dict[datetime, str] = {}  # many items share a moment: its week, worked out once
    grouped: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        at = moment(item)
        week = weeks.get(at)
        if week is None:
            week = weeks[at] = iso_week(at)
        grouped[week].append(item)
    return grouped


def _part(monday: date, first: date | None, now: datetime) -> WeekPart | None:
    """`current` for a week not over yet (its numbers will move), `first` for the week the data
    starts in after its Monday (it holds only the days since); None for a whole week."""
    if now < datetime.combine(monday + timedelta(days=7), time(), UTC):
        return "current"
    if first is not None and monday < first < monday + timedelta(days=7):
        return "first"
    return None


# --- arithmetic --------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile, interpolating linearly between the two nearest values (as numpy and
    spreadsheets do by default); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def change(baseline: float | None, recent: float | None) -> float | None:
    """Relative change from baseline to recent: -0.25 is a quarter lower."""
    if baseline is None or recent is None or baseline == 0:
        return None
    return round((recent - baseline) / abs(baseline), 4)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
