"""Accounts over the JSON API: who am I, API tokens, and people (owners only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from opsloop.core.access import Role, Scope
from opsloop.service import OpsLoop
from opsloop.web.auth import ADMIN, Owner, Reader
from opsloop.web.deps import ops
from opsloop.web.ids import DbId
from opsloop.web.request_bodies import body_schema, json_body
from opsloop.web.responses import Json

router = APIRouter(tags=["accounts"])
Service = Annotated[OpsLoop, Depends(ops)]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="What the token is for.")
    scope: Scope = Field(description="read, review or admin")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password: str = Field(description="At least 8 characters.")
    role: Role = Field(description="owner, reviewer or viewer")


@router.get("/api/me", summary="Who this request is authenticated as")
def me(who: Reader) -> Json:
    body: dict[str, Any] = {
        "kind": who.kind,
        "name": who.name,
        "role": who.role,
        "scope": who.permission if who.kind == "token" else None,
        "permission": who.permission,
    }
    if who.csrf_token is not None:
        body["csrf_token"] = who.csrf_token
    return Json(body)


@router.get("/api/tokens", summary="API tokens (never the tokens themselves)")
def list_tokens(service: Service, who: Owner) -> Json:
    return Json({"tokens": service.accounts.list_tokens()})


@router.post(
    "/api/tokens",
    summary="Create an API token; the answer is the only time it is shown",
    status_code=201,
    openapi_extra=body_schema(TokenIn),
)
async def create_token(request: Request, service: Service, who: Owner) -> Json:
    body = await json_body(request, TokenIn)
    made = await run_in_threadpool(
        service.accounts.create_token, body.name, body.scope, actor=who.actor
    )
    return Json({**made.row, "token": made.token}, status_code=201)


@router.delete("/api/tokens/{token_id}", summary="Revoke an API token")
def revoke_token(token_id: DbId, service: Service, who: Owner) -> Json:
    return Json(service.accounts.revoke_token(token_id, actor=who.actor))


@router.get("/api/users", summary="People with an account", dependencies=[Depends(ADMIN)])
def list_users(service: Service) -> Json:
    return Json({"users": service.accounts.list_users()})


@router.post(
    "/api/users",
    summary="Create an account",
    status_code=201,
    openapi_extra=body_schema(UserIn),
)
async def create_user(request: Request, service: Service, who: Owner) -> Json:
    body = await json_body(request, UserIn)
    user = await run_in_threadpool(
        service.accounts.create_user, body.email, body.password, body.role, actor=who.actor
    )
    return Json(user, status_code=201)


@router.post("/api/users/{email}/disable", summary="Disable an account and end its sessions")
def disable_user(email: str, service: Service, who: Owner) -> Json:
    return Json(service.accounts.disable_user(email, actor=who.actor))
