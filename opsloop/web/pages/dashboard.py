"""The dashboard: is OpsLoop helping? The seed metrics per playbook against their baseline,
week by week as charts, and what waits for someone (reviews, failed deliveries).

The numbers come from `service.learn.dashboard()` (the metrics report of GET /api/metrics, with time
saved added); this module only words and formats them, and builds the charts' specs.

Where two numbers could seem to disagree, the page says why in words: a comparison with no
recent value says what it waits for (the baseline period, outcome windows still open, nothing
reviewed, timed or done yet); the success chart says why it ends before the others; weeks the
data covers only in part are left out of the charts (the first, when the data starts after its
Monday) or drawn apart (the current one, as a hollow point off the line).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from opsloop.core.durations import in_words
from opsloop.core.errors import NotFound
from opsloop.service import OpsLoop
from opsloop.web.auth import walk_routes
from opsloop.web.deps import ops
from opsloop.web.pages.charts import four_series
from opsloop.web.pages.ui import PageReader, page_router, render

if TYPE_CHECKING:
    from opsloop.service import Change, CsatReport, DashboardPlaybook, DecisionsVersusBaseline

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

Better = Literal["higher", "lower"]
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


@dataclass(frozen=True, slots=True)
class Metric:
    """One number on the dashboard, worded: its value now, and baseline → recent with change."""

    key: str
    label: str
    value: str
    meaning: str
    baseline: str | None = None
    recent: str | None = None
    change: str | None = None
    tone: Literal["good", "bad", "same", ""] = ""
    """Whether the change is for the better, so the page can colour it."""
    note: str | None = None
    """Why baseline or recent has no value, when one of them has none."""


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    meaning: str
    spec: dict[str, Any] | None
    """None when no week has a value yet."""
    empty: str
    note: str | None = None
    """Why the chart ends before the others, when it does."""


@router.get("/dashboard", summary="The dashboard: the seed metrics, week by week")
def dashboard(
    request: Request, service: Service, who: PageReader, playbook: str | None = None
) -> HTMLResponse:
    chosen = playbook or None  # the selector's "All playbooks" sends playbook=
    described = {p["name"]: p["description"] for p in service.decide.list_playbooks()}
    names = sorted(described)
    try:
        data = service.learn.dashboard(playbook=chosen)
    except NotFound as exc:
        return render(
            request,
            "dashboard_error.html",
            {"message": _sentence(str(exc)), "names": names},
            status_code=404,
            active="/dashboard",
        )
    rows = data["playbooks"]
    if chosen and chosen not in names:
        names = sorted([*names, chosen])
    context = {
        "chosen": chosen,
        "names": names,
        "descriptions": described,
        "empty": data["decisions"] == 0,
        "pending_reviews": data["pending_reviews"],
        "failed_deliveries": data["failed_deliveries"],
        "retrying_deliveries": data["retrying_deliveries"],
        "time_saved": _saved(data["time_saved_seconds"]),
        "time_saved_hint": _saved_hint(data["time_saved_seconds"], len(rows)),
        "inbox_url": _page_url(request.app, "/inbox"),
        "actions_url": _page_url(request.app, "/actions"),
        "baseline": _baseline_words(data["baseline"]),
        "playbooks": [
            {"row": row, "metrics": _playbook_metrics(row), "periods": _periods(row)}
            for row in rows
        ],
        "csat": _csat_metric(data["csat"]),
        "csat_event": data["csat"]["event"],
        "charts": _charts(rows, data["csat"]),
        "partial_weeks": _partial_weeks(rows, data["csat"]),
        "completions": [
            service.learn.completion(name)
            for name in service.learn.completion_playbooks()
            if chosen is None or name == chosen
        ],
    }
    return render(request, "dashboard.html", context, active="/dashboard")


# --- wording -----------------------------------------------------------------------------


def _playbook_metrics(row: DashboardPlaybook) -> list[Metric]:
    success = Metric(
        "success_rate",
        "Decision success rate",
        _share(row["success_rate"]),
        (
            f"{row['successes']} of {row['successes'] + row['failures']} decisions that acted "
            "were followed by the playbook's success event in time"
            if row["successes"] + row["failures"]
            else "no decision that acted has come to the end of its outcome window yet"
        )
        + (f"; {row['open_windows']} still within their window" if row["open_windows"] else ""),
        **_compare(row, "success_rate", _share, "higher"),
    )
    override = Metric(
        "override_rate",
        "Human override rate",
        _share(row["override_rate"]),
        f"{row['overridden'] + row['rejected']} of {row['reviewed']} reviewed decisions were "
        "overridden or rejected by a person",
        **_compare(row, "override_rate", _share, "lower"),
    )
    waited = Metric(
        "time_to_action",
        "Time to action",
        _duration(row["median_time_to_action_seconds"]),
        f"median, from the triggering event to the first action, over {row['actions_timed']} "
        "decisions that acted (waiting for review counts)",
        **_compare(row, "median_time_to_action_seconds", _duration, "lower"),
    )
    metrics = [success, override, waited, _time_saved(row)]
    if row["tasks_done"] or row["tasks_open"]:
        metrics.append(_task_completion(row))
    return metrics


Compared = Literal[
    "success_rate",
    "override_rate",
    "median_time_to_action_seconds",
    "median_task_completion_seconds",
]


def _compare(row: DashboardPlaybook, key: Compared, show: Any, better: Better) -> dict[str, Any]:
    """Baseline → recent of one number, with why a side has no value when one has none."""
    versus = row["vs_baseline"]
    if versus is None:
        return {}
    return _versus(versus[key], show, better, _missing(versus, key, row["outcome_within_seconds"]))


def _time_saved(row: DashboardPlaybook) -> Metric:
    """Time saved, worded from the same two medians the time-to-action comparison shows, so
    the two always agree (service/learn/dashboard.py)."""
    saved = row["time_saved_seconds"]
    versus = row["vs_baseline"]
    if saved is None or versus is None or versus["recent"] is None:
        if versus is not None and versus["recent"] is None:
            why = f"shown once the baseline period is over, on {_day(versus['baseline']['until'])}"
        else:
            why = (
                "shown once the baseline and recent periods both have delivered actions to compare"
            )
        return Metric("time_saved", "Time saved", "—", why)
    medians = versus["median_time_to_action_seconds"]
    before, after = medians["baseline"] or 0.0, medians["recent"] or 0.0
    count = versus["recent"]["actions_timed"]
    compared = f"median {_duration(before)} → {_duration(after)}"
    if saved > 0:
        return Metric(
            "time_saved",
            "Time saved",
            _duration(saved),
            f"the recent period's {count} actions came {_duration(before - after)} sooner each "
            f"than in the baseline ({compared}): waiting time saved for your customers, an "
            "estimate, not staff hours",
            tone="good",
        )
    if saved == 0:
        return Metric(
            "time_saved",
            "Time saved",
            "none",
            f"actions come as soon as in the baseline ({compared})",
        )
    return Metric(
        "time_saved",
        "Time saved",
        "none",
        f"the recent period's actions came {_duration(after - before)} later than in the "
        f"baseline ({compared}, as Time to action shows), so nothing was saved; reviewing "
        "sooner, or a playbook that earns auto, saves time",
        tone="bad",
    )


def _task_completion(row: DashboardPlaybook) -> Metric:
    done, still_open = row["tasks_done"], row["tasks_open"]
    return Metric(
        "task_completion",
        "Task completion time",
        _duration(row["median_task_completion_seconds"]),
        (
            f"median, from a task's creation to someone marking it done, over {done} "
            f"task{'s' if done != 1 else ''} done"
            if done
            else "no task this playbook created has been marked done yet"
        )
        + (f"; {still_open} still open" if still_open else ""),
        **_compare(row, "median_task_completion_seconds", _duration, "lower"),
    )


def _missing(versus: DecisionsVersusBaseline, key: Compared, window: float | None) -> str | None:
    """Why the baseline or the recent period has no value for `key`, in words."""
    recent = versus["recent"]
    if recent is None:
        return f"the baseline period runs until {_day(versus['baseline']['until'])}"
    compared = versus[key]
    sides = [
        (side, period)
        for side, period, value in (
            ("recent", recent, compared["recent"]),
            ("baseline", versus["baseline"], compared["baseline"]),
        )
        if value is None
    ]
    if not sides:
        return None
    side, period = sides[0]
    where = "in either period" if len(sides) == 2 else f"in the {side} period"
    if not period["total"]:
        return f"no decision {where}"
    if key == "success_rate":
        if period["open_windows"] and window and len(sides) == 1:
            return (
                f"the {period['open_windows']} decisions that acted {where} are still within "
                f"their outcome window: success is known up to {_window(window)} after the "
                "trigger"
            )
        return f"no decision that acted {where} has come to the end of its outcome window"
    if key == "override_rate":
        return f"no decision reviewed {where}"
    if key == "median_task_completion_seconds":
        return f"no task done {where}"
    return f"no action delivered {where}"


def _periods(row: DashboardPlaybook) -> str | None:
    """The baseline and recent periods of a playbook's comparisons, as dates."""
    versus = row["vs_baseline"]
    if versus is None:
        return None
    baseline, recent = versus["baseline"], versus["recent"]
    span = f"Baseline {_span(baseline['since'], baseline['until'])}"
    if recent is None:
        return f"{span}, still running: the recent numbers start when it ends."
    length = recent["until"] - recent["since"]
    after = (
        "the same length of time up to now"
        if length >= baseline["until"] - baseline["since"] - timedelta(seconds=1)
        else "since the baseline ended (there is not yet a full baseline's length of data after it)"
    )
    return f"{span}; recent {_span(recent['since'], recent['until'])}, {after}."


def _span(since: datetime, until: datetime) -> str:
    """`7 Sep to 6 Oct 2026` (with an en dash): both days included, `until` is not."""
    last = until - timedelta(microseconds=1)
    first = f"{since.day} {since:%b}" + ("" if since.year == last.year else f" {since.year}")
    return f"{first} – {_day(last)}"


def _window(seconds: float) -> str:
    return in_words(timedelta(seconds=seconds))


def _day(value: date | datetime) -> str:
    return f"{value.day} {value:%b %Y}"


def _csat_metric(csat: CsatReport) -> Metric:
    rated = csat["responses"]
    mean = csat["mean_rating"]
    return Metric(
        "csat",
        "Customer satisfaction",
        "—" if mean is None else f"{mean:.2f} / 5",
        f"mean rating of {rated} answers (event {csat['event']}, 1 to 5); "
        f"{_share(csat['satisfied_share'])} rated 4 or 5"
        if rated
        else f"no answers yet: send {csat['event']} events with a 1 to 5 "
        f"`{csat['field']}` in their payload",
        **_versus(
            csat["vs_baseline"]["mean_rating"] if csat["vs_baseline"] else None,
            lambda v: "—" if v is None else f"{v:.2f}",
            "higher",
        ),
    )


def _versus(
    compared: Change | None, show: Any, better: Better, note: str | None = None
) -> dict[str, Any]:
    if not compared or (compared["baseline"] is None and compared["recent"] is None):
        return {"note": note} if note and compared else {}
    change = compared["change"]
    tone = ""
    if change is not None:
        up = change > 0
        tone = "same" if change == 0 else "good" if up == (better == "higher") else "bad"
    return {
        "baseline": show(compared["baseline"]),
        "recent": show(compared["recent"]) if compared["recent"] is not None else None,
        "change": None if change is None else f"{change:+.0%}".replace("-", "−"),
        "tone": tone,
        "note": note if compared["recent"] is None or compared["baseline"] is None else None,
    }


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < MINUTE:
        return f"{seconds:.0f} s"
    if seconds < HOUR:
        return f"{seconds / MINUTE:.0f} min"
    if seconds < 2 * DAY:
        return f"{seconds / HOUR:.1f} h"
    return f"{seconds / DAY:.1f} days"


def _saved(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds <= 0:
        # Slower than the baseline: Time to action shows by how much, in red.
        return "none"
    return _duration(seconds)


def _saved_hint(seconds: float | None, playbooks: int) -> str:
    together = ", all playbooks together" if playbooks > 1 else ""
    if seconds is None:
        return "how much sooner actions came than in the baseline, once its period is over"
    if seconds <= 0:
        return f"actions came no sooner than in the baseline{together}: see Time to action below"
    return (
        f"waiting time the recent period's actions saved against the baseline{together} "
        "(an estimate)"
    )


def _baseline_words(text: str) -> str:
    """`30d` → `the first 30 days of data`; dates stay as they are."""
    days = re.fullmatch(r"(\d+)d", text)
    if days:
        return f"the first {days[1]} days of data"
    return f"the dates {text}"


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."


# --- charts ------------------------------------------------------------------------------


MEANINGS = {
    "success-rate": "share of decisions that acted whose outcome window closed with a success",
    "override-rate": "share of reviewed decisions a person overrode or rejected",
    "time-to-action": "median time from the triggering event to the first action",
    "csat": "mean rating of the week's answers",
}


def _charts(rows: Sequence[DashboardPlaybook], csat: CsatReport) -> list[Chart]:
    """The four weekly charts (made in the service, as the weekly report's are), with what each
    means and, for success, why its line ends before the others."""
    notes = {"success-rate": _success_note(rows)}
    return [
        Chart(s.id, s.title, MEANINGS[s.id], s.spec(), s.empty, notes.get(s.id))
        for s in four_series(rows, csat)
    ]


def _success_note(rows: Sequence[DashboardPlaybook]) -> str | None:
    """Why the success line stops weeks before the others: a decision's success is known only
    when its outcome window closes, so the latest weeks have no success rate yet."""
    notes = []
    several = sum(1 for row in rows if row["total"]) > 1
    for row in rows:
        window = row["outcome_within_seconds"]
        weeks = [w for w in row["weeks"] or [] if w["partial"] != "first"]
        waiting = [w for w in weeks if w["success_rate"] is None and w["open_windows"]]
        if not window or not waiting:
            continue
        first_open = min(w["starts"] for w in waiting)
        still_open = sum(w["open_windows"] for w in waiting)
        success = f"For {row['playbook']}, success" if several else "Success"
        note = (
            f"{success} is known up to {_window(window)} after the triggering event (the "
            f"playbook's outcome window), so the weeks from {_day(first_open)} on are still "
            f"open ({still_open} decisions waiting for their outcome) and have no point yet"
        )
        last = max(
            (w for w in weeks if w["success_rate"] is not None and w["starts"] < first_open),
            key=lambda w: w["starts"],
            default=None,
        )
        if last is not None and last["open_windows"]:
            closed = last["successes"] + last["failures"]
            note += (
                f"; the week of {_day(last['starts'])} counts the {closed} decisions whose "
                f"window has closed ({last['open_windows']} still open)"
            )
        notes.append(note + ".")
    return " ".join(notes) or None


def _partial_weeks(rows: Sequence[DashboardPlaybook], csat: CsatReport) -> list[str]:
    """What the charts do with the weeks the data covers only in part, in sentences."""
    firsts: list[str] = []
    current = False
    series: list[tuple[str, Sequence[Mapping[str, Any]]]] = [
        (row["playbook"], row["weeks"] or []) for row in rows
    ]
    series.append(("satisfaction", csat["weeks"] or []))
    for name, weeks in series:
        for week in weeks:
            if week["partial"] == "first":
                firsts.append(f"{name}, week of {_day(week['starts'])}")
            current = current or week["partial"] == "current"
    said = []
    if firsts:
        said.append(
            "A first week the data starts after its Monday covers only part of the week, so it is "
            f"left out of the charts ({'; '.join(firsts)}); the numbers above still count it."
        )
    if current:
        said.append(
            "This week is not over: its point is hollow and not joined to the line, because its "
            "numbers will still move (decisions waiting for review are timed once they act)."
        )
    return said


def _page_url(app: FastAPI, path: str) -> str | None:
    """`path` when this app serves that page (not every page exists in every version)."""
    found = any(getattr(route, "path", None) == path for route in walk_routes(app))
    return path if found else None
