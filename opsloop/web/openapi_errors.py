"""The error answers each operation really gives, written into the OpenAPI schema.

FastAPI documents only the success answer and a 422 whose body we never send. The answers
below follow from how a route is declared: its access rule (401, 403), its path parameters
(404), its parameters and body (413, 422) and whether it changes state (409). A few routes
give more, listed in EXTRA. Every error body has the shape opsloop/web/errors.py writes; the
suite's schemathesis run (tests/web/test_api_contract.py) checks that no route answers with a
status it does not document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from opsloop.web.auth import route_access, walk_routes

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "A stable code: invalid_input, not_found, ..."},
        "message": {"type": "string", "description": "What went wrong, for a person"},
        "errors": {
            "type": "array",
            "description": "One entry per bad field (invalid_input, too_large)",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "problems": {
            "type": "array",
            "description": "invalid_playbook: each problem with its file and line",
            "items": {
                "type": "object",
                "properties": {
                    "file": {"type": "string"},
                    "line": {"type": ["integer", "null"]},
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
        "quarantine_id": {"type": "integer", "description": "Where refused input was kept"},
        "retry_after": {"type": "integer"},
        "retryable": {"type": "boolean"},
    },
}

DESCRIPTIONS = {
    "400": "Refused: the body is not what this endpoint takes",
    "401": "No valid API token or session (or, for a webhook, no valid signature)",
    "403": "The token's scope or the person's role does not allow this, or a CSRF token is missing",
    "404": "No such thing",
    "409": "The request clashes with the current state",
    "413": "The body is over the size limit",
    "422": "A bad field, parameter or body; `errors` names each one",
    "429": "Too many attempts; `Retry-After` says when to try again",
    "502": "A service outside OpsLoop (the language model) failed",
    "503": "Not ready",
}

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

EXTRA: dict[tuple[str, str], tuple[str, ...]] = {
    # Segment's libraries read a 400 for a refused call (opsloop/web/api/tracking.py).
    ("POST", "/v1/{call}"): ("400", "401"),
    # Public, but each delivery must carry its source's signature.
    ("POST", "/hooks/{source}"): ("401",),
    ("POST", "/api/decisions/{decision_id}/review"): ("502",),
    # The body names a playbook (or a version of it) that may not exist.
    ("POST", "/api/playbooks/backtest"): ("404", "502"),
    ("GET", "/readyz"): ("503",),
    # The query names a playbook that may not exist, or has no steps or outcome.
    ("GET", "/api/metrics/completion"): ("404",),
}
"""Answers a route gives beyond what its declaration implies."""


def install(app: FastAPI) -> None:
    """Make `app.openapi()` document every route's error answers."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        document.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for route in walk_routes(app):
            if isinstance(route, APIRoute) and route.include_in_schema:
                for method in route.methods or ():
                    operation = document["paths"].get(route.path_format, {}).get(method.lower())
                    if operation is not None:
                        _document_errors(operation, route, method)
        for name in ("HTTPValidationError", "ValidationError"):
            document["components"]["schemas"].pop(name, None)
        app.openapi_schema = document
        return document

    app.openapi = schema  # type: ignore[method-assign]


def error_statuses(route: APIRoute, method: str) -> list[str]:
    """The error statuses a route can answer with, from its declaration."""
    statuses: set[str] = set()
    public = all(rule.needed is None for rule in route_access(route))
    if not public:
        statuses |= {"401", "403"}
    if route.dependant.path_params:
        statuses.add("404")
    takes_input = bool(
        route.dependant.path_params or route.dependant.query_params or route.dependant.body_params
    )
    if method in STATE_CHANGING:
        statuses |= {"413", "422"}
        if not public:
            statuses.add("409")
    elif takes_input:
        statuses.add("422")
    statuses.update(EXTRA.get((method, route.path_format), ()))
    return sorted(statuses)


def _document_errors(operation: dict[str, Any], route: APIRoute, method: str) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's, with a body shape OpsLoop never sends
    for status in error_statuses(route, method):
        responses.setdefault(
            status,
            {
                "description": DESCRIPTIONS[status],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
