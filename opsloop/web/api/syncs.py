"""Pulled sources in the JSON API: sync or backfill one now, and read its runs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from opsloop.service import OpsLoop
from opsloop.web.auth import READ, Owner
from opsloop.web.deps import ops
from opsloop.web.responses import Json

router = APIRouter(tags=["sources"])
Service = Annotated[OpsLoop, Depends(ops)]


@router.post(
    "/api/sources/{name}/sync",
    summary="Sync a pulled source now (or backfill it) and return the finished run",
    description="Answers when the run has ended, with its counts; a run that failed is "
    "returned with `status: failed` and its `error`. 409 while another run of the source is "
    "under way, or when the source is disabled; 422 for a source that is not pulled.",
)
async def sync_source(
    name: str,
    service: Service,
    who: Owner,
    mode: Annotated[
        Literal["sync", "backfill"],
        Query(description="`backfill`: read from the beginning and store it as history."),
    ] = "sync",
) -> Json:
    # In a worker thread: a sync waits on the network and the database for as long as it runs.
    run = await run_in_threadpool(service.ingest.sync_source, name, mode=mode, actor=who.actor)
    return Json(run.as_dict())


@router.get(
    "/api/sources/{name}/runs",
    summary="A pulled source's latest sync and backfill runs, newest first",
    dependencies=[Depends(READ)],
)
def source_runs(
    name: str,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=500, description="How many runs.")] = 20,
) -> Json:
    return Json([run.as_dict() for run in service.ingest.source_runs(name, limit=limit)])
