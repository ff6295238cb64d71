"""Charts as Vega-Lite specs: made in the service (opsloop/service/learn/charts.py), so the
dashboard and the weekly report draw the same chart; the browser draws them with the vendored
Vega scripts (static/vendor/, embedded by static/charts.js)."""

from __future__ import annotations

from opsloop.service import Point, Unit, four_series, weekly_chart

__all__ = ["Point", "Unit", "four_series", "weekly_chart"]
