"""The flywheel, simulated: reviews teach the lead playbook, agreement earns it `auto`, and
deals are won more often once OpsLoop acts fast and right.

`simulate` plays the demo business week by week on a manual clock, an hour at a time, and
drives OpsLoop only through its façade:

* **Leads arrive** with what they do before and after the form (page views, demo requests:
  the simulator's journeys), as events stamped with their time. The lead playbook
  (`lead-qualification-learning.yaml`: the built-in one plus a model that learns from
  reviews) decides on each `lead.created` and `demo.requested`.
* **A simulated reviewer** (`reviewer.py`) works the review inbox at 16:00 each working day,
  oldest first, for `reviewer_minutes`: an approval takes a minute, an override three
  (choosing the other option and writing why). What does not fit waits for the next day.
  In `auto` only the sampled decisions reach the inbox, after their actions ran.
* **Outcomes depend on what OpsLoop did.** A lead makes up its mind when its journey ends (at
  the simulator's deal, or a day after its last visit). Then, and only then, its deal is
  drawn from `conversion_chance`: its hidden propensity, whether it got the treatment it
  needed, and how long it waited for the first action. The draw is seeded per lead, so two
  runs of the same seed give the same deals.
* **At each week's end** the owner retrains the model (`ops.learn.train`), closes outcome windows,
  checks readiness and, once the playbook has earned it, promotes it to `auto` (the promotion
  is audited like any other).

After the last week the clock runs on without new leads until every decision's outcome
window has closed, so each week's success rate is final. The figures per week then come
from `ops.learn.metrics_report(by="week")`, placed by when the triggering event occurred.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from opsloop.core.decision_views import DecisionSummary
from opsloop.core.errors import Conflict
from opsloop.core.periods import iso_week
from opsloop.demo.reviewer import HOT_PROPENSITY, right_option, verdict
from opsloop.demo.run import DemoBusiness, DemoRefused, open_business
from opsloop.demo.simulator import SOURCE, Lead, PlannedEvent, Simulator
from opsloop.service import OpsLoop
from opsloop.settings import Settings

PLAYBOOK = "lead-qualification"
PLAYBOOK_FILE = Path(__file__).with_name("lead-qualification-learning.yaml")
OWNER = "demo owner"
START = datetime(2026, 1, 5, tzinfo=UTC)
"""A Monday, so simulated weeks are ISO weeks, the weeks the metrics report by."""
STEP = timedelta(hours=1)
REVIEW_HOUR = 16
APPROVE_MINUTES = 1
OVERRIDE_MINUTES = 3
TRIGGERS = frozenset({"lead.created", "demo.requested"})
ACTED = frozenset({"auto", "approved", "overridden"})
BATCH = 500

# The conversion model (see `conversion_chance`).
NURTURED_HOT_FIT = 0.5
"""A hot lead that only got the nurture email buys half as often as one handed to sales."""
PUSHED_COLD_FIT = 0.8
"""A sales call too early puts some browsing leads off."""
IGNORED_FIT = 0.25
"""A lead nobody answered before it made up its mind: the wrong treatment, and cold."""
COOLING_DAYS = 1.0
"""Every day of waiting halves what a fast answer adds."""


class SimClock:
    """The service's clock in a simulation: it moves only when the simulation moves it."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True, slots=True)
class WeekReport:
    week: int
    """1 for the first simulated week."""
    starts: date
    leads: int
    """Leads that filled in the form this week."""
    decisions: int
    """Decisions on this week's triggers (a demo request makes a second one)."""
    reviewed: int
    """Of those, reviewed by a person (in `auto`, the sampled ones, after the fact)."""
    overridden: int
    """Of those, overridden or rejected."""
    override_rate: float | None
    settled: int
    """Decisions that acted, with their outcome known (every window has closed)."""
    successes: int
    success_rate: float | None
    median_time_to_action_hours: float | None
    mode: str
    """The mode the week's decisions were made in (at its start)."""
    promoted: bool
    """Promoted to `auto` at the week's end."""
    demoted: bool
    """Dropped back to `recommend` by itself during the week."""
    readiness_lower_bound: float
    """Agreement's Wilson lower bound at the week's end (the promotion gate)."""
    model_version: int | None
    """The champion used from the week's end on."""
    model_auc: float | None
    """The champion's ROC AUC on its held-out rows."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[str, int, int], None]
"""Told (what is happening, simulated days done, days in all)."""


def conversion_chance(propensity: float, *, to_sales: bool | None, wait: timedelta | None) -> float:
    """The chance a lead buys, given what OpsLoop did before it made up its mind.

    `propensity` is the chance it buys when treated right and at once. Treated right means
    handed to sales when the reviewer would call it hot, nurtured otherwise; a hot lead only
    nurtured buys at `NURTURED_HOT_FIT` of that, a cold one pushed to sales at
    `PUSHED_COLD_FIT`. Leads go cold: the first action after `wait` keeps
    `0.5 + 0.5 * 2 ** (-wait_days / COOLING_DAYS)` of the chance (all of it at once, three
    quarters after a day, about half after four). `to_sales=None` means nothing was done
    before it made up its mind."""
    if to_sales is None or wait is None:
        return propensity * IGNORED_FIT
    hot = propensity >= HOT_PROPENSITY
    fit = 1.0 if to_sales == hot else NURTURED_HOT_FIT if hot else PUSHED_COLD_FIT
    days = max(wait.total_seconds(), 0.0) / 86400
    fresh = 0.5 + 0.5 * 2 ** (-days / COOLING_DAYS)
    return propensity * fit * fresh


def open_flywheel(
    settings: Settings, data_dir: Path, *, seed: int
) -> tuple[DemoBusiness, SimClock]:
    """The demo's sinks and a service on a simulated clock, in a fresh SQLite database in
    `data_dir` (whatever database the settings name: the flywheel never writes into one that
    may hold real data). `settings` gives the rest (log level, worker threads …)."""
    if data_dir.exists() and any(data_dir.iterdir()):
        raise DemoRefused(f"{data_dir} is not empty; the flywheel needs a new folder")
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = settings.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": None,
            "playbooks_dir": data_dir / "playbooks",
            "auto_migrate": True,
        }
    )
    clock = SimClock()
    business = open_business(fresh, seed=seed, history_start=START, clock=clock)
    try:
        business.ops.prepare()
    except BaseException:
        business.close()
        raise
    return business, clock


def simulate(
    ops: OpsLoop,
    clock: SimClock,
    *,
    weeks: int = 12,
    seed: int = 7,
    reviewer_minutes: int = 40,
    progress: Progress | None = None,
) -> list[WeekReport]:
    """Run the flywheel on a fresh OpsLoop whose clock is `clock` (set to `START`)."""
    return _Flywheel(ops, clock, Simulator(seed), seed, reviewer_minutes, progress).run(weeks)


class _Flywheel:
    def __init__(
        self,
        ops: OpsLoop,
        clock: SimClock,
        simulator: Simulator,
        seed: int,
        reviewer_minutes: int,
        progress: Progress | None,
    ) -> None:
        self.ops = ops
        self.clock = clock
        self.sim = simulator
        self.seed = seed
        self.reviewer_minutes = reviewer_minutes
        self.progress = progress or (lambda what, done, total: None)
        self.auto = False

    def run(self, weeks: int) -> list[WeekReport]:
        ops, clock = self.ops, self.clock
        if clock.now != START:
            raise ValueError(f"the flywheel starts at {START.isoformat()}, not {clock.now}")
        text = PLAYBOOK_FILE.read_text(encoding="utf-8")
        ops.decide.apply_playbook(text, PLAYBOOK_FILE.name, actor=OWNER)
        outcome = ops.decide.validate_playbook(text, PLAYBOOK_FILE.name).outcome
        assert outcome is not None

        leads = self.sim.leads_between(START, START + timedelta(weeks=weeks))
        journeys = {lead.subject: self.sim.journey(lead) for lead in leads}
        events = sorted(e for j in journeys.values() for e in _what_opsloop_needs(j))
        minds = sorted(
            ((_makes_up_its_mind(lead, journeys[lead.subject]), lead) for lead in leads),
            key=lambda pair: (pair[0], pair[1].number),
        )
        triggers = [e.at for e in events if e.type in TRIGGERS]
        # Run on until the last decision's outcome window has closed.
        finish = _ceil_hour(max(triggers) + outcome.within) + STEP
        total_days = math.ceil((finish - START) / timedelta(days=1))

        # What the first leads did before the simulation began (anonymous visits).
        cursor = _first_at_or_after(events, 0, START)
        self._ingest(events[:cursor])
        modes = [self._mode()]
        ends: list[dict[str, Any]] = []
        deals = 0
        while clock.now < finish:
            clock.now += STEP
            now = clock.now
            later = _first_at_or_after(events, cursor, now)
            due, cursor = events[cursor:later], later
            while deals < len(minds) and minds[deals][0] < now:
                due.append(self._deal(*minds[deals]))
                deals += 1
            self._ingest(due)
            if self.auto and any(e.type in TRIGGERS for e in due):
                ops.run_jobs()  # auto decisions act at once: deliver their actions now
            if now.weekday() < 5 and now.hour == REVIEW_HOUR and self._review_session():
                ops.run_jobs()  # the reviewed decisions' actions
                self.auto = self._mode() == "auto"  # a disagreement may have demoted it
            if now.hour == 0:
                week, day = divmod((now - START).days, 7)
                if day == 0 and 1 <= week <= weeks:
                    ends.append(self._end_of_week(modes[-1]))
                    modes.append(self._mode())
                    self.auto = modes[-1] == "auto"
                doing = f"Week {week + 1} of {weeks}" if week < weeks else "Waiting for outcomes"
                self.progress(doing, (now - START).days, total_days)
        return self._reports(leads, weeks, modes, ends)

    # --- one hour ---------------------------------------------------------------------------

    def _ingest(self, due: list[PlannedEvent]) -> None:
        due.sort()
        for start in range(0, len(due), BATCH):
            body = {"events": [e.as_dict() for e in due[start : start + BATCH]]}
            self.ops.ingest.body(orjson.dumps(body), source=SOURCE)

    def _review_session(self) -> bool:
        """Oldest first, until today's minutes run out."""
        minutes = self.reviewer_minutes
        reviewed = 0
        for decision in self._inbox():
            propensity = self.sim.ground_truth(decision["subject"])
            agrees = decision["choice"] == right_option(propensity)
            cost = APPROVE_MINUTES if agrees else OVERRIDE_MINUTES
            if cost > minutes:
                break
            minutes -= cost
            self.ops.review.verdict(decision["id"], verdict(decision["choice"], propensity))
            reviewed += 1
        return reviewed > 0

    def _inbox(self) -> list[DecisionSummary]:
        found: list[DecisionSummary] = []
        before: int | None = None
        while True:
            page = self.ops.decide.list_decisions(
                status="to_review", playbook=PLAYBOOK, limit=500, before_id=before
            )
            found.extend(page)
            if len(page) < 500:
                break
            before = page[-1]["id"]
        return sorted(found, key=lambda d: int(d["id"]))

    def _deal(self, at: datetime, lead: Lead) -> PlannedEvent:
        """The lead makes up its mind now: its deal, drawn from what OpsLoop did for it."""
        acted = [
            d
            for d in self.ops.decide.list_decisions(
                subject=lead.subject, playbook=PLAYBOOK, limit=50
            )
            if d["status"] in ACTED and d["decided_at"] is not None and d["decided_at"] <= at
        ]
        first = min((d["decided_at"] for d in acted if d["decided_at"] is not None), default=None)
        chance = conversion_chance(
            lead.propensity,
            to_sales=any(d["final_choice"] == "hot" for d in acted) if acted else None,
            wait=first - lead.created_at if first is not None else None,
        )
        rng = random.Random(f"{self.seed}:flywheel:deal:{lead.number}")
        won = rng.random() < chance
        key = f"demo:{lead.subject}:deal"
        if won:
            amount = max(1200, round(lead.traits["budget"] * rng.uniform(0.6, 1.6), -2))
            payload: dict[str, Any] = {"amount": amount, "currency": "EUR"}
            return PlannedEvent(at, key, "deal.won", lead.subject, payload)
        reason = rng.choice(("chose a competitor", "no budget this year", "bad timing"))
        return PlannedEvent(at, key, "deal.lost", lead.subject, {"reason": reason})

    # --- the week's end ---------------------------------------------------------------------

    def _end_of_week(self, mode_during: str) -> dict[str, Any]:
        """What the owner does on Monday morning: retrain, close windows, promote if earned."""
        ops = self.ops
        with contextlib.suppress(Conflict):  # too few reviews yet: the scorecard decides alone
            ops.learn.train(PLAYBOOK, actor=OWNER)
        ops.learn.close_outcome_windows()
        mode = self._mode()
        demoted = mode_during == "auto" and mode != "auto"
        ready = ops.review.readiness(PLAYBOOK)
        promoted = False
        if mode != "auto" and ready["ready"]:
            ops.review.change_mode(PLAYBOOK, "auto", actor=OWNER, reason=ready["why"])
            promoted = True
        champion = _champion(ops)
        return {
            "promoted": promoted,
            "demoted": demoted,
            "readiness_lower_bound": ready["lower_bound"],
            "model_version": champion["version"] if champion else None,
            "model_auc": champion["roc_auc"] if champion else None,
        }

    def _mode(self) -> str:
        return str(self.ops.decide.get_playbook(PLAYBOOK)["mode"])

    def _reports(
        self,
        leads: list[Lead],
        weeks: int,
        modes: list[str],
        flags: list[dict[str, Any]],
    ) -> list[WeekReport]:
        report = self.ops.learn.metrics_report(playbook=PLAYBOOK, by="week")
        [row] = report["playbooks"]
        by_week = {w["week"]: w for w in row["weeks"] or []}
        reports = []
        for index in range(weeks):
            starts = START + timedelta(weeks=index)
            figures: Mapping[str, Any] = by_week.get(iso_week(starts), {})
            wait = figures.get("median_time_to_action_seconds")
            reports.append(
                WeekReport(
                    week=index + 1,
                    starts=starts.date(),
                    leads=sum(1 for lead in leads if _week_of(lead.created_at) == index),
                    decisions=figures.get("total", 0),
                    reviewed=figures.get("reviewed", 0),
                    overridden=figures.get("overridden", 0) + figures.get("rejected", 0),
                    override_rate=figures.get("override_rate"),
                    settled=figures.get("successes", 0) + figures.get("failures", 0),
                    successes=figures.get("successes", 0),
                    success_rate=figures.get("success_rate"),
                    median_time_to_action_hours=round(wait / 3600, 1) if wait is not None else None,
                    mode=modes[index],
                    **flags[index],
                )
            )
        return reports


def _what_opsloop_needs(journey: list[PlannedEvent]) -> list[PlannedEvent]:
    """The journey without the simulator's own deal (here the deal depends on what OpsLoop
    does) and without the visits after the lead's last trigger: no decision ever reads them,
    and leaving them out keeps the simulation quick."""
    last = max(e.at for e in journey if e.type in TRIGGERS)
    return [e for e in journey if not e.type.startswith("deal.") and e.at <= last]


def _makes_up_its_mind(lead: Lead, journey: list[PlannedEvent]) -> datetime:
    """At the simulator's deal; for a lead that went quiet, a day after its last event."""
    for event in journey:
        if event.type.startswith("deal."):
            return event.at
    last = max(event.at for event in journey)
    return max(last + timedelta(days=1), lead.created_at + timedelta(days=5))


def _first_at_or_after(events: list[PlannedEvent], start: int, moment: datetime) -> int:
    """The position of the first of the sorted `events` from `start` on at or after `moment`."""
    position = start
    while position < len(events) and events[position].at < moment:
        position += 1
    return position


def _champion(ops: OpsLoop) -> Mapping[str, Any] | None:
    versions = ops.learn.list_models(PLAYBOOK)["versions"]
    return next((v for v in versions if v["status"] == "champion"), None)


def _week_of(at: datetime) -> int:
    return (at - START) // timedelta(weeks=1)


def _ceil_hour(at: datetime) -> datetime:
    floor = at.replace(minute=0, second=0, microsecond=0)
    return floor if floor == at else floor + STEP
