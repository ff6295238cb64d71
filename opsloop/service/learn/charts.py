"""Charts as Vega-Lite specs, made with Altair on the server: the dashboard's browser draws them
with the vendored Vega scripts (web/static/charts.js), and the weekly report renders the very
same specs to PNG with vl-convert (`png`), so both show one chart.

Altair and vl-convert are imported inside `weekly_chart` and `png` only: neither is needed to
start the server (tests/test_startup.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from opsloop.service.learn.views import CsatReport, DashboardPlaybook

Unit = Literal["share", "number", "rating"]
Week = Mapping[str, Any]
MINUTE, HOUR = 60.0, 3600.0


@dataclass(frozen=True, slots=True)
class Point:
    """One week's value of one series (a playbook, or customers for CSAT)."""

    week: str
    """The ISO week, `2026-W10`."""
    starts: str
    """Its Monday, `2026-03-02`."""
    series: str
    value: float
    so_far: bool = False
    """The week is not over: drawn as a hollow point, not joined to the line."""


def weekly_chart(points: list[Point], *, title: str, unit: Unit) -> dict[str, Any]:
    """A line per series over ISO weeks, with a dot on each week that has a value; a week not
    over yet is a hollow dot off the line, its tooltip saying "so far"."""
    import altair as alt  # lazily: see the module docstring

    y_axis: dict[str, Any] = {"title": None}
    scale: dict[str, Any] = {"zero": True}
    value_format = ".1f"
    if unit == "share":
        y_axis["format"] = ".0%"
        scale = {"domain": [0, 1]}
        value_format = ".0%"
    elif unit == "rating":
        scale = {"domain": [1, 5]}
        value_format = ".2f"
    rows = [
        {
            "week": p.week,
            "label": f"{p.week}, so far (the week is not over)" if p.so_far else p.week,
            "starts": p.starts,
            "series": p.series,
            "value": p.value,
            "so_far": p.so_far,
        }
        for p in points
    ]
    several = len({p.series for p in points}) > 1
    base = alt.Chart(alt.InlineData(values=rows)).encode(
        # Mondays are dates in UTC (ISO weeks): label them in UTC, whatever the browser's zone.
        x=alt.X(
            "starts:T",
            title="week starting",
            scale=alt.Scale(type="utc"),
            axis=alt.Axis(format="%d %b", tickCount="week"),
        ),
        y=alt.Y("value:Q", axis=alt.Axis(**y_axis), scale=alt.Scale(**scale)),
        tooltip=[
            alt.Tooltip("label:N", title="week"),
            alt.Tooltip("series:N", title="for"),
            alt.Tooltip("value:Q", title=title, format=value_format),
        ],
    )
    if several:
        legend = alt.Legend(orient="bottom")
        base = base.encode(color=alt.Color("series:N", title=None, legend=legend))
    # A layer only for what there is: a layer left without data makes Vega warn on the console.
    layers: list[Any] = []
    if not all(p.so_far for p in points):
        whole = base.transform_filter(alt.FieldEqualPredicate(field="so_far", equal=False))
        layers += [whole.mark_line(), whole.mark_point(filled=True, size=40)]
    if any(p.so_far for p in points):
        so_far = base.transform_filter(alt.FieldEqualPredicate(field="so_far", equal=True))
        layers.append(so_far.mark_point(filled=False, size=40, strokeWidth=1.5))
    chart = alt.layer(*layers).properties(
        width="container", height=180, description=f"{title}, week by week"
    )
    spec: dict[str, Any] = chart.configure_view(stroke=None).to_dict()
    return spec


def png(spec: dict[str, Any], *, width: int = 560, scale: float = 2.0) -> bytes:
    """The spec drawn as a PNG on the server (vl-convert's bundled Vega: nothing is fetched).
    A `container` width (the page's) becomes `width` pixels."""
    import vl_convert  # lazily: see the module docstring

    fixed = {**spec, "width": width} if spec.get("width") == "container" else spec
    drawn: bytes = vl_convert.vegalite_to_png(fixed, scale=scale)
    return drawn


@dataclass(frozen=True, slots=True)
class WeeklySeries:
    """One of the four weekly charts, as points: the dashboard and the weekly report add their
    own words around it."""

    id: str
    title: str
    points: list[Point]
    unit: Unit
    empty: str
    """What to say when no week has a value."""

    def spec(self) -> dict[str, Any] | None:
        return weekly_chart(self.points, title=self.title, unit=self.unit) if self.points else None


def four_series(
    rows: Sequence[DashboardPlaybook],
    csat: CsatReport,
    keep: Callable[[Week], bool] = lambda week: True,
) -> list[WeeklySeries]:
    """Success rate, override rate, time to action and satisfaction, week by week, over the
    weeks `keep` lets through. A first week the data covers only in part is always left out (a
    few days' numbers spike every chart); a week not over yet is a hollow point (`so_far`)."""

    def shown(week: Week) -> bool:
        return week["partial"] != "first" and keep(week)

    def points(field: str, scale: float = 1.0) -> list[Point]:
        found: list[Point] = []
        for row in rows:
            weeks: Sequence[Week] = row["weeks"] or []
            found += [
                _point(week, row["playbook"], week[field] / scale)
                for week in weeks
                if week[field] is not None and shown(week)
            ]
        return found

    waits = points("median_time_to_action_seconds")
    scale, unit = (
        (HOUR, "hours") if any(p.value >= 2 * HOUR for p in waits) else (MINUTE, "minutes")
    )
    rated = [
        _point(week, "customers", week["mean_rating"])
        for week in csat["weeks"] or []
        if week["mean_rating"] is not None and shown(week)
    ]
    return [
        WeeklySeries("success-rate", "Decision success rate", points("success_rate"), "share",
                     "No week has a closed outcome window yet."),
        WeeklySeries("override-rate", "Human override rate", points("override_rate"), "share",
                     "No decision has been reviewed yet."),
        WeeklySeries("time-to-action", f"Time to action ({unit})",
                     points("median_time_to_action_seconds", scale), "number",
                     "No action has been delivered yet."),
        WeeklySeries("csat", "Customer satisfaction (1–5)", rated, "rating",
                     "No customer satisfaction answers yet."),
    ]  # fmt: skip


def _point(week: Week, series: str, value: float) -> Point:
    return Point(
        week["week"], str(week["starts"]), series, value, so_far=week["partial"] == "current"
    )
