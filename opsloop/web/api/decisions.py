"""Decisions and their review; actions (the outbox) and tasks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from opsloop.core.decisions import ACTION_STATUSES, DECISION_STATUSES, ReviewRequest
from opsloop.core.errors import InvalidInput
from opsloop.service import OpsLoop
from opsloop.web.auth import READ, Reviewer
from opsloop.web.deps import ops
from opsloop.web.ids import BeforeId, DbId
from opsloop.web.request_bodies import body_schema, json_body
from opsloop.web.responses import Json
from opsloop.web.schemas import ActorIn, AssignIn, ReviewIn, StopIn

router = APIRouter(tags=["decisions"])

Service = Annotated[OpsLoop, Depends(ops)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/api/decisions", summary="List decisions, newest first", dependencies=[Depends(READ)])
def list_decisions(
    service: Service,
    status: Annotated[
        str | None,
        Query(
            description=f"One of {', '.join(DECISION_STATUSES)}, or `to_review`: pending "
            "decisions plus the sampled `auto` decisions nobody has reviewed yet"
        ),
    ] = None,
    playbook: str | None = None,
    subject: str | None = None,
    limit: Limit = 50,
    before_id: BeforeId = None,
) -> Json:
    if status is not None and status not in (*DECISION_STATUSES, "to_review"):
        raise InvalidInput.single(
            "status", f"must be one of {', '.join(DECISION_STATUSES)} or to_review"
        )
    found = service.decide.list_decisions(
        status=status, playbook=playbook, subject=subject, limit=limit, before_id=before_id
    )
    next_page = found[-1]["id"] if len(found) == limit else None
    return Json({"decisions": found, "next_before_id": next_page})


@router.get(
    "/api/decisions/{decision_id}",
    summary="One decision with its full explanation",
    dependencies=[Depends(READ)],
)
def get_decision(decision_id: DbId, service: Service) -> Json:
    return Json(service.decide.decision_detail(decision_id))


@router.post(
    "/api/decisions/{decision_id}/review",
    summary="Approve, override or reject a pending decision",
    openapi_extra=body_schema(ReviewIn),
)
async def review_decision(
    decision_id: DbId, request: Request, service: Service, who: Reviewer
) -> Json:
    review = await json_body(request, ReviewIn)
    verdict = ReviewRequest(
        verdict=review.verdict,
        reviewer=review.reviewer or who.actor,
        option=review.option,
        reason=review.reason,
        draft=review.draft,
    )
    await run_in_threadpool(service.review.verdict, decision_id, verdict)
    return Json(await run_in_threadpool(service.decide.decision_detail, decision_id))


@router.get(
    "/api/actions",
    summary="The outbox: actions and their delivery status",
    tags=["actions"],
    dependencies=[Depends(READ)],
)
def list_actions(
    service: Service,
    status: Annotated[str | None, Query(description=f"One of {', '.join(ACTION_STATUSES)}")] = None,
    limit: Limit = 50,
    before_id: BeforeId = None,
) -> Json:
    found = service.deliver.list_actions(status=status, limit=limit, before_id=before_id)
    return Json(
        {"actions": found, "next_before_id": found[-1]["id"] if len(found) == limit else None}
    )


@router.get(
    "/api/actions/{action_id}",
    summary="One action with every delivery attempt",
    tags=["actions"],
    dependencies=[Depends(READ)],
)
def get_action(action_id: DbId, service: Service) -> Json:
    return Json(service.deliver.get_action(action_id))


@router.post(
    "/api/actions/{action_id}/retry",
    summary="One more attempt at a dead-lettered action",
    tags=["actions"],
)
async def retry_action(action_id: DbId, request: Request, service: Service, who: Reviewer) -> Json:
    body = await json_body(request, ActorIn, optional=True)
    actor = body.actor or who.actor
    return Json(
        await run_in_threadpool(service.deliver.retry_action, action_id, actor=actor),
        status_code=202,
    )


@router.post(
    "/api/actions/{action_id}/cancel",
    summary="Stop a pending or retrying action for good",
    tags=["actions"],
)
async def cancel_action(action_id: DbId, request: Request, service: Service, who: Reviewer) -> Json:
    body = await json_body(request, ActorIn, optional=True)
    actor = body.actor or who.actor
    return Json(await run_in_threadpool(service.deliver.cancel_action, action_id, actor=actor))


SEQUENCE_STATUSES = ("open", "active", "waiting", "completed", "stopped", "skipped")


@router.get(
    "/api/sequences",
    summary="Sequences: who is at which step, the next step and when",
    tags=["sequences"],
    dependencies=[Depends(READ)],
)
def list_sequences(
    service: Service,
    status: Annotated[
        str | None,
        Query(description=f"One of {', '.join(SEQUENCE_STATUSES)}; `open` is active or waiting"),
    ] = None,
    playbook: str | None = None,
    subject: str | None = None,
    limit: Limit = 100,
) -> Json:
    if status is not None and status not in SEQUENCE_STATUSES:
        raise InvalidInput.single("status", f"must be one of {', '.join(SEQUENCE_STATUSES)}")
    found = service.deliver.list_sequences(
        status=status, playbook=playbook, subject=subject, limit=limit
    )
    return Json({"sequences": found, "counts": service.deliver.sequence_counts(playbook)})


@router.post(
    "/api/sequences/{sequence_id}/stop",
    summary="Stop one open sequence: no further step runs",
    tags=["sequences"],
    openapi_extra=body_schema(StopIn),
)
async def stop_sequence(
    sequence_id: DbId, request: Request, service: Service, who: Reviewer
) -> Json:
    body = await json_body(request, StopIn)
    actor = body.actor or who.actor
    stopped = await run_in_threadpool(
        service.deliver.stop_sequence, sequence_id, who=actor, reason=body.reason
    )
    return Json({"stopped": 1 if stopped else 0})


@router.post(
    "/api/sequences/stop",
    summary="Stop every open sequence, or those of one playbook or one subject",
    tags=["sequences"],
    openapi_extra=body_schema(StopIn),
)
async def stop_sequences(request: Request, service: Service, who: Reviewer) -> Json:
    body = await json_body(request, StopIn)
    actor = body.actor or who.actor
    stopped = await run_in_threadpool(
        service.deliver.stop_sequences,
        who=actor,
        reason=body.reason,
        playbook=body.playbook,
        subject=body.subject,
    )
    return Json({"stopped": stopped})


@router.get(
    "/api/tasks",
    summary="Follow-up tasks created by actions",
    tags=["actions"],
    dependencies=[Depends(READ)],
)
def list_tasks(
    service: Service,
    status: Annotated[str | None, Query(pattern="^(open|done)$")] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    overdue: Annotated[bool, Query(description="Only open tasks past their due time")] = False,
    limit: Limit = 50,
) -> Json:
    found = service.deliver.list_tasks(
        status=status, assignee=assignee, overdue=overdue, limit=limit
    )
    return Json({"tasks": found})


@router.post(
    "/api/tasks/{task_id}/assign",
    summary="Give an open task to someone else",
    tags=["actions"],
    openapi_extra=body_schema(AssignIn),
)
async def assign_task(task_id: DbId, request: Request, service: Service, who: Reviewer) -> Json:
    body = await json_body(request, AssignIn)
    by = body.actor or who.actor
    return Json(
        await run_in_threadpool(service.deliver.reassign_task, task_id, body.assignee, by=by)
    )


@router.post("/api/tasks/{task_id}/complete", summary="Mark a task done", tags=["actions"])
async def complete_task(task_id: DbId, request: Request, service: Service, who: Reviewer) -> Json:
    body = await json_body(request, ActorIn, optional=True)
    by = body.actor or who.actor
    return Json(await run_in_threadpool(service.deliver.complete_task, task_id, by=by))
