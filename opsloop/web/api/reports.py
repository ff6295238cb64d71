"""The weekly report as JSON (`GET /api/reports/{week}`): what `opsloop report --json` prints
and the Reports page shows (opsloop/service/learn/reports.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from opsloop.service import OpsLoop
from opsloop.web.auth import READ
from opsloop.web.deps import ops
from opsloop.web.responses import Json

router = APIRouter()
Service = Annotated[OpsLoop, Depends(ops)]


@router.get(
    "/api/reports/{week}",
    summary="One ISO week's report: the four numbers against the week before, what the "
    "playbooks decided, what waits, failed deliveries, the charts' Vega-Lite specs",
    tags=["metrics"],
    dependencies=[Depends(READ)],
)
async def get_report(
    service: Service,
    week: str,
    playbook: Annotated[str | None, Query(description="Only this playbook")] = None,
) -> Json:
    return Json(await run_in_threadpool(service.learn.weekly_report, week, playbook=playbook))
