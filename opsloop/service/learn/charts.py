"""Charts as Vega-Lite specs, made with Altair on the server: the dashboard's browser draws them
with the vendored Vega scripts (web/static/charts.js), and the weekly report renders the very
same specs to PNG with vl-convert (`png`), so both show one chart.

Altair and vl-convert are imported inside `weekly_chart` and `png` only: neither is needed to
start the server (tests/test_startup.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Unit = Literal["share", "number", "rating"]


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
