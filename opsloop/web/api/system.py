"""Reading the ledger (events, entities, quarantine), replaying a quarantined item, metrics,
health and Prometheus."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from opsloop.core.durations import parse_duration
from opsloop.core.errors import InvalidInput
from opsloop.core.periods import DEFAULT_BASELINE, parse_baseline
from opsloop.service import CSAT_EVENT, CSAT_FIELD, OpsLoop
from opsloop.web.auth import PUBLIC, READ, Owner
from opsloop.web.deps import ops
from opsloop.web.ids import BeforeId, DbId
from opsloop.web.prometheus import render_prometheus
from opsloop.web.request_bodies import json_body
from opsloop.web.responses import Json
from opsloop.web.schemas import ActorIn

router = APIRouter()
Service = Annotated[OpsLoop, Depends(ops)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get(
    "/api/events",
    summary="Stored events, newest first",
    tags=["events"],
    dependencies=[Depends(READ)],
)
def list_events(
    service: Service,
    subject: str | None = None,
    type: str | None = None,
    limit: Limit = 50,
    before_id: BeforeId = None,
) -> Json:
    found = service.ingest.list_events(subject=subject, type=type, limit=limit, before_id=before_id)
    return Json(
        {"events": found, "next_before_id": found[-1]["id"] if len(found) == limit else None}
    )


@router.get(
    "/api/events/{event_id}",
    summary="One stored event",
    tags=["events"],
    dependencies=[Depends(READ)],
)
def get_event(event_id: DbId, service: Service) -> Json:
    return Json(service.ingest.get_event(event_id))


@router.get(
    "/api/entities/{subject}",
    summary="A subject's profile (merged traits)",
    tags=["events"],
    dependencies=[Depends(READ)],
)
def get_entity(subject: str, service: Service) -> Json:
    return Json(service.ingest.get_entity(subject))


@router.get(
    "/api/quarantine",
    summary="Refused input with the reason for each",
    tags=["events"],
    dependencies=[Depends(READ)],
)
def list_quarantine(
    service: Service, source: str | None = None, limit: Limit = 50, before_id: BeforeId = None
) -> Json:
    found = service.ingest.list_quarantine(source=source, limit=limit, before_id=before_id)
    return Json(
        {"items": found, "next_before_id": found[-1]["id"] if len(found) == limit else None}
    )


@router.get(
    "/api/quarantine/{item_id}",
    summary="One quarantined item",
    tags=["events"],
    dependencies=[Depends(READ)],
)
def get_quarantined(item_id: DbId, service: Service) -> Json:
    return Json(service.ingest.get_quarantined(item_id))


@router.post(
    "/api/quarantine/{item_id}/replay",
    summary="Run a held item's body through its ingest path again",
    description="200 when the replay ran: `ok` true with the `event_ids` it became, or `ok` "
    "false with the `reason` it was refused again (the item stays held). 409 when the item was "
    "already replayed or cannot be replayed (the message says why); 404 when there is none.",
    tags=["events"],
)
async def replay_quarantined(item_id: DbId, request: Request, service: Service, who: Owner) -> Json:
    body = await json_body(request, ActorIn, optional=True)
    actor = body.actor or who.actor
    done = await run_in_threadpool(service.ingest.replay_quarantined, item_id, actor=actor)
    return Json({**asdict(done), "status": "replayed" if done.ok else "held"})


@router.get(
    "/api/metrics/completion",
    summary="Completion speed of a sequence playbook per weekly cohort, before and after it "
    "went live, and its step funnel",
    tags=["metrics"],
    dependencies=[Depends(READ)],
)
def get_completion(
    service: Service,
    playbook: Annotated[str, Query(description="An active playbook with steps and an outcome")],
    weeks: Annotated[int, Query(ge=1, le=104, description="Weekly cohorts to show")] = 12,
) -> Json:
    return Json(service.learn.completion(playbook, weeks=weeks))


@router.get(
    "/api/metrics",
    summary="Per playbook and week: decisions, success and override rates, time to action, "
    "task completion, against a baseline; customer satisfaction",
    tags=["metrics"],
    dependencies=[Depends(READ)],
)
def get_metrics(
    service: Service,
    since: Annotated[
        str | None, Query(description="Only decisions made in this window, e.g. 7d")
    ] = None,
    playbook: str | None = None,
    by: Annotated[str | None, Query(description="`week`: add each ISO week's numbers")] = None,
    baseline: Annotated[
        str,
        Query(description="The first N days of data (`30d`) or dates `2026-01-01..2026-01-31`"),
    ] = DEFAULT_BASELINE,
    csat_event: Annotated[
        str, Query(description="The event type of customer satisfaction answers")
    ] = CSAT_EVENT,
    csat_field: Annotated[
        str, Query(description="The payload field holding the 1-5 rating")
    ] = CSAT_FIELD,
) -> Json:
    window = None
    if since:
        try:
            window = parse_duration(since)
        except ValueError as exc:
            raise InvalidInput.single("since", str(exc)) from None
    if by not in (None, "week"):
        raise InvalidInput.single("by", "must be `week` (or left out)")
    try:
        period = parse_baseline(baseline)
    except ValueError as exc:
        raise InvalidInput.single("baseline", str(exc)) from None
    return Json(
        service.learn.metrics_report(
            since=window,
            playbook=playbook,
            by="week" if by else None,
            baseline=period,
            csat_event=csat_event,
            csat_field=csat_field,
        )
    )


@router.get(
    "/healthz", summary="The process is up", tags=["health"], dependencies=[Depends(PUBLIC)]
)
def healthz() -> Json:
    return Json({"status": "ok"})


@router.get(
    "/readyz",
    summary="The database answers and its schema is current",
    tags=["health"],
    dependencies=[Depends(PUBLIC)],
)
async def readyz(service: Service) -> Json:
    try:
        status = await run_in_threadpool(service.database_status)
    except Exception as exc:
        return Json(
            {"status": "unavailable", "reason": f"database: {type(exc).__name__}"}, status_code=503
        )
    if not status.current:
        return Json(
            {"status": "unavailable", "reason": "database schema is behind; run `opsloop migrate`"},
            status_code=503,
        )
    return Json({"status": "ready", "database": status.backend})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    tags=["health"],
    response_class=PlainTextResponse,
    dependencies=[Depends(READ)],
)
async def prometheus(service: Service) -> PlainTextResponse:
    text, content_type = await run_in_threadpool(render_prometheus, service)
    return PlainTextResponse(text, media_type=content_type)


@router.get("/openapi.json", include_in_schema=False, dependencies=[Depends(READ)])
def openapi(request: Request) -> Json:
    """The OpenAPI schema, for signed-in people and tokens of any scope."""
    return Json(request.app.openapi())
