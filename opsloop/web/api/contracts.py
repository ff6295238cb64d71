"""Data contracts: list, read, apply YAML, and remove."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from opsloop.service import OpsLoop
from opsloop.web.auth import READ, Owner
from opsloop.web.deps import ops
from opsloop.web.responses import Json

router = APIRouter(tags=["contracts"])
Service = Annotated[OpsLoop, Depends(ops)]

_YAML_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/yaml": {"schema": {"type": "string"}}},
        "description": "A contracts file: `contracts:` with one key per event type.",
    }
}


@router.get(
    "/api/contracts",
    summary="Contracts in force: applied ones and built-in ones",
    dependencies=[Depends(READ)],
)
def list_contracts(service: Service) -> Json:
    return Json({"contracts": service.ingest.list_contracts()})


@router.get(
    "/api/contracts/{name}",
    summary="One event type's contract (`name` is the event type): its YAML, rules and versions",
    dependencies=[Depends(READ)],
)
def get_contract(name: str, service: Service) -> Json:
    return Json(service.ingest.get_contract(name))


@router.put(
    "/api/contracts",
    summary="Apply a contracts file: a new version for each event type whose rules changed",
    openapi_extra=_YAML_BODY,
)
async def apply_contracts(
    request: Request,
    service: Service,
    who: Owner,
    file: Annotated[str, Query(description="A name for the file, shown in errors.")] = "api",
) -> Json:
    text = (await request.body()).decode("utf-8", errors="replace")
    applied = await run_in_threadpool(service.ingest.apply_contracts, text, file, actor=who.actor)
    body = {
        "contracts": [
            {"event_type": item.event_type, "version": item.version, "status": item.status}
            for item in applied
        ]
    }
    changed = any(item.status != "unchanged" for item in applied)
    return Json(body, status_code=201 if changed else 200)


@router.delete(
    "/api/contracts/{name}",
    summary="Remove an event type's applied contract (`name`): its versions stay in the history",
    status_code=200,
)
def remove_contract(name: str, service: Service, who: Owner) -> Json:
    version = service.ingest.remove_contract(name, actor=who.actor)
    return Json({"event_type": name, "version": version, "removed": True})
