"""The weekly report as an email: a plain-text body and an HTML body from the Jinja2 templates
beside this module (report_templates/), and the charts as PNGs drawn on the server from the
dashboard's Vega-Lite specs (`charts.png`, vl-convert: nothing fetched from the internet),
which the HTML shows inline by `cid:`."""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from opsloop.service.context import Context
from opsloop.service.learn import charts
from opsloop.service.learn.views import RenderedReport, WeeklyReport

TEMPLATES = Path(__file__).with_name("report_templates")


@cache
def _environment(*, html: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def subject(report: WeeklyReport) -> str:
    about = f" — {report['playbook']}" if report["playbook"] else ""
    return f"OpsLoop weekly report, {report['week']}{about}"


def pngs(report: WeeklyReport) -> dict[str, bytes]:
    """Each chart that has a spec, drawn as a PNG, by its id."""
    return {
        chart["id"]: charts.png(chart["spec"])
        for chart in report["charts"]
        if chart["spec"] is not None
    }


def email(ctx: Context, report: WeeklyReport) -> RenderedReport:
    images = pngs(report)
    context = _context(ctx, report, {name: f"cid:{name}" for name in images})
    return {
        "subject": subject(report),
        "text": _environment(html=False).get_template("report.txt").render(context),
        "html": _environment(html=True).get_template("report.html").render(context),
        "images": images,
    }


def text(ctx: Context, report: WeeklyReport) -> str:
    """The plain-text body alone (no charts drawn): `opsloop report`."""
    return _environment(html=False).get_template("report.txt").render(_context(ctx, report, {}))


def page_images(report: WeeklyReport) -> dict[str, str]:
    """The charts as `data:` URIs, for the Reports page (the same PNGs as the email)."""
    return {
        name: "data:image/png;base64," + base64.b64encode(data).decode()
        for name, data in pngs(report).items()
    }


def _context(ctx: Context, report: WeeklyReport, sources: dict[str, str]) -> dict[str, Any]:
    base = ctx.settings.link_base
    return {
        "report": report,
        "base": base,
        "subject": subject(report),
        "images": sources,
        "link": f"{base}/reports/{report['week']}",
        "inbox": f"{base}/inbox?order=urgent",
        "actions": f"{base}/actions?status=dead",
    }
