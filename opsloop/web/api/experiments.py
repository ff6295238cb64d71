"""Message experiments of a playbook: how each variant is doing, and ending one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from opsloop.service import OpsLoop
from opsloop.web.auth import READ, Owner
from opsloop.web.deps import ops
from opsloop.web.request_bodies import body_schema, json_body
from opsloop.web.responses import Json

router = APIRouter(tags=["experiments"])
Service = Annotated[OpsLoop, Depends(ops)]


class EndExperiment(BaseModel):
    option: str = Field(description="The option whose action has the variants.")
    action: int = Field(ge=0, description="The action's position in the option, from 0.")
    keep: str = Field(description="The variant to keep: from now on only it is sent.")


@router.get(
    "/api/playbooks/{name}/experiments",
    summary="Each variant's sends, success rate with interval and probability of being best; "
    "the expected loss of stopping now and the winner or none yet",
    dependencies=[Depends(READ)],
)
def list_experiments(name: str, service: Service) -> Json:
    return Json(service.learn.experiments(name))


@router.post(
    "/api/playbooks/{name}/experiments/end",
    summary="End an experiment keeping one variant (audited); only it is sent from now on",
    openapi_extra=body_schema(EndExperiment),
)
async def end_experiment(name: str, request: Request, service: Service, who: Owner) -> Json:
    body = await json_body(request, EndExperiment)
    ended = await run_in_threadpool(
        service.learn.end_experiment,
        name,
        option=body.option,
        action=body.action,
        keep=body.keep,
        actor=who.actor,
    )
    return Json(ended)
