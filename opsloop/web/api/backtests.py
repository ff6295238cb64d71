"""Backtests: replay a saved playbook or a draft over past events, and read a kept report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from opsloop.service import OpsLoop
from opsloop.web.auth import READ, Reviewer
from opsloop.web.deps import ops
from opsloop.web.ids import DbId
from opsloop.web.request_bodies import body_schema, json_body
from opsloop.web.responses import Json

router = APIRouter(tags=["backtests"])
Service = Annotated[OpsLoop, Depends(ops)]


class BacktestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    playbook: str | None = Field(default=None, description="A saved playbook's name.")
    version: int | None = Field(
        default=None, description="With `playbook`: this saved version instead of the active one."
    )
    source: str | None = Field(
        default=None, description="A draft's YAML text, validated like /api/playbooks/validate."
    )
    file: str = Field(default="draft.yaml", description="The draft's name in error messages.")
    since: str = Field(
        default="90d", description="Start: a duration back from now (`90d`) or an ISO 8601 time."
    )
    until: str | None = Field(default=None, description="End, written the same way; default now.")
    actor: str | None = Field(
        default=None,
        max_length=200,
        description="Who runs the backtest; default: the signed-in person or token.",
    )


@router.post(
    "/api/playbooks/backtest",
    summary="Replay a playbook over past events, with no side effects; the report is kept",
    status_code=201,
    openapi_extra=body_schema(BacktestIn),
)
async def run_backtest(request: Request, service: Service, who: Reviewer) -> Json:
    body = await json_body(request, BacktestIn)
    report = await run_in_threadpool(
        service.learn.backtest,
        playbook=body.playbook,
        version=body.version,
        source=body.source,
        file=body.file,
        since=body.since,
        until=body.until,
        actor=body.actor or who.actor,
    )
    return Json(report, status_code=201)


@router.get(
    "/api/backtests/{backtest_id}",
    summary="A kept backtest report",
    dependencies=[Depends(READ)],
)
def get_backtest(backtest_id: DbId, service: Service) -> Json:
    return Json(service.learn.get_backtest(backtest_id))
