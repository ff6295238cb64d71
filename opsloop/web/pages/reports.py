"""The Reports page: the weekly reports, one per ISO week (`/reports`), and one week's report
with its charts (`/reports/{week}`), the same report and the same PNG charts the owners get by
email each Monday (opsloop/service/learn/reports.py)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from opsloop.core.errors import InvalidInput, NotFound
from opsloop.service import OpsLoop
from opsloop.web.deps import ops
from opsloop.web.pages.admin_common import TIME_HELPERS
from opsloop.web.pages.ui import PageReader, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

REPORTS = "/reports"
LISTED_WEEKS = 12
"""The list offers the last ended week and the eleven before it, sent or not."""


@router.get(REPORTS, summary="The weekly reports, newest first")
def reports_page(request: Request, service: Service, who: PageReader) -> HTMLResponse:
    latest = service.learn.last_ended_week()
    sent = {s["week"]: s for s in service.learn.sent_reports()}
    weeks = sorted({*_weeks_before(latest, LISTED_WEEKS), *sent}, reverse=True)
    context = {
        "weeks": [{"week": week, "sent": sent.get(week)} for week in weeks],
        "latest": latest,
        **TIME_HELPERS,
    }
    return render(request, "reports.html", context, active=REPORTS)


@router.get(REPORTS + "/{week}", summary="One week's report, with its charts")
async def report_page(
    request: Request, service: Service, who: PageReader, week: str, playbook: str | None = None
) -> HTMLResponse:
    try:
        report = await run_in_threadpool(
            service.learn.weekly_report, week, playbook=playbook or None
        )
    except (InvalidInput, NotFound) as exc:
        message = {"message": str(exc)}
        return render(request, "report_missing.html", message, status_code=404, active=REPORTS)
    images = await run_in_threadpool(service.learn.report_chart_images, report)
    names = sorted(p["name"] for p in service.decide.list_playbooks())
    context: dict[str, Any] = {"report": report, "images": images, "names": names}
    return render(request, "report.html", context, active=REPORTS)


def _weeks_before(week: str, count: int) -> list[str]:
    year, number = week.split("-W")
    monday = date.fromisocalendar(int(year), int(number), 1)
    found = []
    for back in range(count):
        iso = (monday - timedelta(weeks=back)).isocalendar()
        found.append(f"{iso.year}-W{iso.week:02d}")
    return found
