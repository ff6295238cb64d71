"""The forecast report of a playbook with a `forecast` feature (the restock templates)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from opsloop.service import OpsLoop
from opsloop.web.auth import READ
from opsloop.web.deps import ops
from opsloop.web.responses import Json

router = APIRouter(tags=["forecasts"])
Service = Annotated[OpsLoop, Depends(ops)]


@router.get(
    "/api/playbooks/{name}/forecasts",
    summary="Each product's demand forecast, stock, days of cover and reorder point, and a "
    "backtest of the last weeks: forecast error against last week repeated, the reorder "
    "policy against a min/max rule",
    dependencies=[Depends(READ)],
)
async def forecast_report(
    name: str,
    service: Service,
    weeks: Annotated[int, Query(ge=1, le=26, description="Weeks to backtest.")] = 8,
) -> Json:
    # Each backtest week refits every product's model: off the event loop.
    return Json(await run_in_threadpool(service.learn.forecast_report, name, weeks=weeks))
