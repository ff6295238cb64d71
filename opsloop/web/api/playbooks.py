"""Playbooks: list, read, validate and apply YAML."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from opsloop.service import OpsLoop
from opsloop.web.auth import READ, Owner
from opsloop.web.deps import ops
from opsloop.web.request_bodies import body_schema, json_body
from opsloop.web.responses import Json

router = APIRouter(tags=["playbooks"])
Service = Annotated[OpsLoop, Depends(ops)]

_YAML_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/yaml": {"schema": {"type": "string"}}},
        "description": "The playbook's YAML text.",
    }
}


@router.get("/api/playbooks", summary="Active playbooks", dependencies=[Depends(READ)])
def list_playbooks(service: Service) -> Json:
    return Json({"playbooks": service.decide.list_playbooks()})


@router.get(
    "/api/playbooks/{name}",
    summary="A playbook: its active source and version history",
    dependencies=[Depends(READ)],
)
def get_playbook(name: str, service: Service) -> Json:
    return Json(service.decide.get_playbook(name))


@router.post(
    "/api/playbooks/validate",
    summary="Check a playbook without applying it",
    openapi_extra=_YAML_BODY,
    dependencies=[Depends(READ)],
)
async def validate_playbook(
    request: Request, service: Service, file: Annotated[str, Query()] = "playbook.yaml"
) -> Json:
    text = (await request.body()).decode("utf-8", errors="replace")
    # Off the event loop: a large file takes PyYAML seconds to read (docs/performance.md).
    playbook = await run_in_threadpool(service.decide.validate_playbook, text, file)
    return Json({"valid": True, "name": playbook.name, "mode": playbook.mode})


@router.post(
    "/api/playbooks",
    summary="Apply a playbook: a new version when its content changed",
    openapi_extra=_YAML_BODY,
)
async def apply_playbook(
    request: Request,
    service: Service,
    who: Owner,
    file: Annotated[str, Query()] = "api",
    actor: Annotated[str | None, Query()] = None,
) -> Json:
    text = (await request.body()).decode("utf-8", errors="replace")
    applied = await run_in_threadpool(
        service.decide.apply_playbook, text, file, actor=actor or who.actor
    )
    body = {
        "name": applied.name,
        "version": applied.version,
        "mode": applied.mode,
        "changed": applied.changed,
        "notice": applied.notice,
    }
    return Json(body, status_code=201 if applied.changed else 200)


@router.get(
    "/api/playbooks/{name}/readiness",
    summary="Has the playbook earned auto? Agreement with reviewers and its Wilson lower bound",
    dependencies=[Depends(READ)],
)
def readiness(name: str, service: Service) -> Json:
    return Json(service.review.readiness(name))


class ModeChange(BaseModel):
    mode: str = Field(description="shadow, recommend or auto")
    actor: str | None = Field(
        default=None,
        description="Who makes the change; it is audited. Default: the signed-in person or token.",
    )
    reason: str | None = None


@router.post(
    "/api/playbooks/{name}/mode",
    summary="Promote to auto (refused with 409 unless ready) or move to shadow/recommend",
    openapi_extra=body_schema(ModeChange),
)
async def change_mode(name: str, request: Request, service: Service, who: Owner) -> Json:
    change = await json_body(request, ModeChange)
    actor = change.actor or who.actor
    moved = await run_in_threadpool(
        service.review.change_mode, name, change.mode, actor=actor, reason=change.reason
    )
    return Json(moved)
