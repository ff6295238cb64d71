"""The dashboard: is OpsLoop helping? The seed metrics per playbook against their baseline,
week by week as charts, and what waits for someone (reviews, failed deliveries).

The numbers come from `service.learn.dashboard()` (the metrics report of GET /api/metrics, with time
saved added); this module only words and formats them, and builds the charts' specs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from opsloop.core.errors import NotFound
from opsloop.service import OpsLoop
from opsloop.web.auth import walk_routes
from opsloop.web.deps import ops
from opsloop.web.pages.charts import Point, Unit, weekly_chart
from opsloop.web.pages.ui import PageReader, page_router, render

if TYPE_CHECKING:
    from opsloop.service import Change, CsatReport, DashboardPlaybook

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


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    meaning: str
    spec: dict[str, Any] | None
    """None when no week has a value yet."""
    empty: str


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
        "inbox_url": _page_url(request.app, "/inbox"),
        "actions_url": _page_url(request.app, "/actions"),
        "baseline": _baseline_words(data["baseline"]),
        "playbooks": [{"row": row, "metrics": _playbook_metrics(row)} for row in rows],
        "csat": _csat_metric(data["csat"]),
        "csat_event": data["csat"]["event"],
        "charts": _charts(rows, data["csat"]),
        "completions": [
            service.learn.completion(name)
            for name in service.learn.completion_playbooks()
            if chosen is None or name == chosen
        ],
    }
    return render(request, "dashboard.html", context, active="/dashboard")


# --- wording -----------------------------------------------------------------------------


def _playbook_metrics(row: DashboardPlaybook) -> list[Metric]:
    versus = row["vs_baseline"]
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
        **_versus(versus["success_rate"] if versus else None, _share, "higher"),
    )
    override = Metric(
        "override_rate",
        "Human override rate",
        _share(row["override_rate"]),
        f"{row['overridden'] + row['rejected']} of {row['reviewed']} reviewed decisions were "
        "overridden or rejected by a person",
        **_versus(versus["override_rate"] if versus else None, _share, "lower"),
    )
    waited = Metric(
        "time_to_action",
        "Time to action",
        _duration(row["median_time_to_action_seconds"]),
        f"median, from the triggering event to the first action, over {row['actions_timed']} "
        "decisions that acted (waiting for review counts)",
        **_versus(versus["median_time_to_action_seconds"] if versus else None, _duration, "lower"),
    )
    saved = row["time_saved_seconds"]
    time_saved = Metric(
        "time_saved",
        "Time saved",
        _saved(saved),
        "since the baseline: each week's actions times how much sooner they came than in the "
        "baseline (an estimate)"
        if saved and saved > 0
        else "actions come no sooner than in the baseline yet; reviewing sooner, or a playbook "
        "that earns auto, saves time"
        if saved is not None
        else "shown once the baseline period is over and actions were timed in it",
        tone="good" if saved and saved > 0 else "",
    )
    return [success, override, waited, time_saved]


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


def _versus(compared: Change | None, show: Any, better: Better) -> dict[str, Any]:
    if not compared or (compared["baseline"] is None and compared["recent"] is None):
        return {}
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
        return "none yet"
    return _duration(seconds)


def _baseline_words(text: str) -> str:
    """`30d` → `the first 30 days of data`; dates stay as they are."""
    days = re.fullmatch(r"(\d+)d", text)
    if days:
        return f"the first {days[1]} days of data"
    return f"the dates {text}"


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."


# --- charts ------------------------------------------------------------------------------


def _charts(rows: Sequence[Mapping[str, Any]], csat: CsatReport) -> list[Chart]:
    def points(field: str, scale: float = 1.0) -> list[Point]:
        return [
            Point(week["week"], str(week["starts"]), row["playbook"], week[field] / scale)
            for row in rows
            for week in row["weeks"] or []
            if week[field] is not None
        ]

    waits = points("median_time_to_action_seconds")
    in_hours = any(p.value >= 2 * HOUR for p in waits)
    scale = HOUR if in_hours else MINUTE
    unit = "hours" if in_hours else "minutes"
    rated = [
        Point(week["week"], str(week["starts"]), "customers", week["mean_rating"])
        for week in csat["weeks"] or []
        if week["mean_rating"] is not None
    ]
    made: list[tuple[str, str, str, list[Point], Unit, str]] = [
        ("success-rate", "Decision success rate", "share of decisions that acted whose outcome "
         "window closed with a success", points("success_rate"), "share",
         "No week has a closed outcome window yet."),
        ("override-rate", "Human override rate", "share of reviewed decisions a person "
         "overrode or rejected", points("override_rate"), "share",
         "No decision has been reviewed yet."),
        ("time-to-action", f"Time to action ({unit})", f"median {unit} from the triggering "
         "event to the first action", points("median_time_to_action_seconds", scale), "number",
         "No action has been delivered yet."),
        ("csat", "Customer satisfaction (1–5)", "mean rating of the week's answers", rated,
         "rating", "No customer satisfaction answers yet."),
    ]  # fmt: skip
    return [
        Chart(
            chart_id,
            title,
            meaning,
            weekly_chart(found, title=title, unit=kind) if found else None,
            empty,
        )
        for chart_id, title, meaning, found, kind, empty in made
    ]


def _page_url(app: FastAPI, path: str) -> str | None:
    """`path` when this app serves that page (not every page exists in every version)."""
    found = any(getattr(route, "path", None) == path for route in walk_routes(app))
    return path if found else None
