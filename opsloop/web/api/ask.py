"""The operations chat as JSON: `POST /api/ask` answers a question about the business from the
ledger as the caller sees it, citing the records used (what the /ask page and `opsloop ask`
do), and `GET /api/questions` lists the chat's log (docs/ask.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from opsloop.core.errors import Forbidden
from opsloop.service import OpsLoop
from opsloop.web.auth import Reader
from opsloop.web.deps import ops
from opsloop.web.request_bodies import body_schema, json_body
from opsloop.web.responses import Json

router = APIRouter()
Service = Annotated[OpsLoop, Depends(ops)]


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        max_length=1000,
        description="A question about the business: `What happened to order 1042?`",
    )


@router.post(
    "/api/ask",
    summary="Answer a question about the business from the ledger, citing the records used "
    "(read-only; logged)",
    tags=["ask"],
    openapi_extra=body_schema(AskIn),
)
async def ask(request: Request, service: Service, who: Reader) -> Json:
    body = await json_body(request, AskIn)
    return Json(await run_in_threadpool(service.ask.ask, body.question, principal=who))


@router.get(
    "/api/questions",
    summary="The operations chat's log, newest first: your questions (everyone's for owners "
    "with everyone=true)",
    tags=["ask"],
)
async def questions(
    service: Service,
    who: Reader,
    everyone: Annotated[bool, Query(description="Everyone's questions (owners)")] = False,
    limit: Annotated[int, Query(ge=1, le=200, description="How many")] = 20,
) -> Json:
    if everyone and not who.may("admin"):
        raise Forbidden("only an owner sees everyone's questions; you have " + who.grant)
    asked_by = None if everyone else who.actor
    found = await run_in_threadpool(service.ask.questions, asked_by=asked_by, limit=limit)
    return Json({"questions": found})
