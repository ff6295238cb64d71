"""Declared sources in the JSON API: list, show, add or replace from YAML, remove, quality."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from opsloop.service import OpsLoop
from opsloop.web.auth import READ, Owner
from opsloop.web.deps import ops
from opsloop.web.responses import Json

router = APIRouter(tags=["sources"])
Service = Annotated[OpsLoop, Depends(ops)]

_YAML_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/yaml": {"schema": {"type": "string"}}},
        "description": "The source's YAML definition (docs/sources.md). A `secret:` key in it "
        "is stored apart and never shown again.",
    }
}


@router.get(
    "/api/sources",
    summary="Declared sources, without their secrets",
    dependencies=[Depends(READ)],
)
def list_sources(service: Service) -> Json:
    return Json([source.public() for source in service.ingest.list_sources()])


@router.get(
    "/api/sources/{name}",
    summary="One declared source, without its secret",
    dependencies=[Depends(READ)],
)
def get_source(name: str, service: Service) -> Json:
    return Json(service.ingest.get_source(name).public())


@router.put(
    "/api/sources/{name}",
    summary="Add or replace a source from its YAML definition",
    description="201 when added, 200 when replaced (its checkpoint, and its secret unless the "
    "YAML gives a new one, are kept). 422 names the line and field of every problem.",
    openapi_extra=_YAML_BODY,
)
async def put_source(name: str, request: Request, service: Service, who: Owner) -> Json:
    # Read as text whatever the content type: `curl -d @stripe.yaml` sends a form type, and
    # FastAPI's own parsing would read a JSON-typed body as JSON.
    text = (await request.body()).decode("utf-8", errors="replace")
    added = await run_in_threadpool(
        service.ingest.add_source, text, f"{name}.yaml", actor=who.actor, replace=True, name=name
    )
    body = service.ingest.get_source(added.name).public()
    return Json(body, status_code=201 if added.created else 200)


@router.delete(
    "/api/sources/{name}",
    summary="Forget a source's definition and secret (its events stay)",
    status_code=200,
)
def delete_source(name: str, service: Service, who: Owner) -> Json:
    service.ingest.remove_source(name, actor=who.actor)
    return Json({"name": name, "removed": True})


@router.get(
    "/api/sources/{name}/quality",
    summary="The source's data quality: valid share, late, duplicates, top violations",
    dependencies=[Depends(READ)],
)
def source_quality(
    name: str,
    service: Service,
    days: Annotated[int, Query(ge=1, le=366, description="Days, today included.")] = 7,
) -> Json:
    return Json(service.ingest.source_quality(name, days=days).as_dict())
