"""Domain errors become HTTP answers here, and only here.

Every error body has the same shape: `{"error": code, "message": text, "errors": [{"field",
"message"}], ...}`; a refused signal also carries `quarantine_id`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from opsloop.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OpsLoopError,
    PlaybookInvalid,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from opsloop.core.events import join_path
from opsloop.web.responses import Json

log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    app.add_exception_handler(OpsLoopError, _domain)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _request_validation)  # type: ignore[arg-type]


def error_body(exc: OpsLoopError) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"message": str(exc)}
    if isinstance(exc, TooLarge):
        status, body["error"] = 413, "too_large"
    elif isinstance(exc, InvalidInput):
        status, body["error"] = 422, "invalid_input"
    elif isinstance(exc, PlaybookInvalid):
        status, body["error"] = 422, "invalid_playbook"
        body["problems"] = [
            {"file": p.file, "line": p.line, "field": p.field, "message": p.message}
            for p in exc.problems
        ]
    elif isinstance(exc, Unauthorized):
        status, body["error"] = 401, "unauthorized"
    elif isinstance(exc, Forbidden):
        status, body["error"] = 403, "forbidden"
    elif isinstance(exc, RateLimited):
        status, body["error"] = 429, "rate_limited"
        body["retry_after"] = exc.retry_after
    elif isinstance(exc, NotFound):
        status, body["error"] = 404, "not_found"
    elif isinstance(exc, Conflict):
        status, body["error"] = 409, "conflict"
    elif isinstance(exc, Unavailable):
        status, body["error"] = 502, "upstream_failed"
        body["retryable"] = exc.retryable
    else:
        status, body["error"] = 400, "error"
    if isinstance(exc, InvalidInput):
        body["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    quarantine_id = getattr(exc, "quarantine_id", None)
    if quarantine_id is not None:
        body["quarantine_id"] = quarantine_id
    return status, body


async def _domain(request: Request, exc: OpsLoopError) -> Json:
    status, body = error_body(exc)
    headers = {}
    if isinstance(exc, Unauthorized) and exc.challenge:
        headers["WWW-Authenticate"] = exc.challenge
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return Json(body, status_code=status, headers=headers)


async def _request_validation(request: Request, exc: RequestValidationError) -> Json:
    errors = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part not in ("body", "query", "path"))
        errors.append({"field": join_path("", loc) or "body", "message": error["msg"]})
    message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Json({"error": "invalid_input", "message": message, "errors": errors}, status_code=422)
