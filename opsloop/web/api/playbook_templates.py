"""Playbook templates: the built-in playbooks to start from, and installing one in recommend
mode. Served before opsloop/web/api/playbooks.py, whose `/api/playbooks/{name}` would take
`_templates` for a playbook's name (a name cannot start with `_`, so none is hidden)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from opsloop.service import OpsLoop
from opsloop.web.auth import READ, Owner
from opsloop.web.deps import ops
from opsloop.web.responses import Json

router = APIRouter(tags=["playbooks"])
Service = Annotated[OpsLoop, Depends(ops)]

TEMPLATES = "/api/playbooks/_templates"


@router.get(
    TEMPLATES,
    summary="The built-in playbook templates: what each needs and whether it is installed",
    dependencies=[Depends(READ)],
)
def list_templates(service: Service) -> Json:
    return Json({"templates": service.decide.list_templates()})


@router.get(
    TEMPLATES + "/{name}",
    summary="One playbook template with the YAML it installs",
    dependencies=[Depends(READ)],
)
def get_template(name: str, service: Service) -> Json:
    return Json(service.decide.get_template(name))


@router.post(
    TEMPLATES + "/{name}/install",
    summary="Install a template as a new playbook in recommend mode (409 when one has its name)",
    status_code=201,
)
async def install_template(name: str, service: Service, who: Owner) -> Json:
    # Off the event loop: validating and compiling a playbook takes PyYAML some milliseconds.
    applied = await run_in_threadpool(service.decide.install_template, name, actor=who.actor)
    body = {
        "name": applied.name,
        "version": applied.version,
        "mode": applied.mode,
        "warnings": list(applied.warnings),
    }
    return Json(body, status_code=201)
