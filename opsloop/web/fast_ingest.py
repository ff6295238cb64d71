"""The hot path of `POST /api/events`: a sender with an API token posting events, no query.

Every request otherwise passes about fifteen ASGI layers (error and telemetry wrappers, the
three middlewares of opsloop/web/middleware.py, FastAPI's exception and exit-stack layers, the
router, dependency solving) before the route runs; for a one-event ingest that was half the
server's CPU, as much as storing and deciding the event (docs/performance.md#before-merging).
This middleware, the outermost of the app's own, answers that one common request itself with
the route's own parts, in the same order and with the same answers:

- the route's access rule (`REVIEW`), through the same `Access` object;
- the body read with the same limit, an oversized one refused and quarantined the same way;
- `service.ingest.body_async`, and the route's answer;
- an error answered by the app's own exception handlers, so every error body is the one the
  full stack gives;
- the headers `SecurityHeaders` adds: `nosniff` on JSON, `no-store` on a route that needs a
  token.

It also answers the webhook → score → respond call, `?wait=decision` (with `&timeout=N`, N a
whole number of seconds from 1 to 30), as the route does. Anything else — another path or
method, any other query string (a value the route would refuse is refused there, with its
own message), a session cookie instead of a token (CSRF is checked on the full path) — goes
through the full stack untouched. `tests/web/test_fast_ingest.py` sends the same requests both
ways and compares the answers.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Literal

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from opsloop.web.api.ingest import DEFAULT_WAIT, PATH, answer, read_body
from opsloop.web.auth import REVIEW


class FastIngest:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wait = _takes(scope)
        if wait is False:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            await REVIEW(request)
            service = request.app.state.ops
            body = await read_body(request, service, "api")
            accepted = await service.ingest.body_async(
                body, source="api", content_type=request.headers.get("content-type")
            )
            if wait is None:
                response = answer(accepted)
            else:
                ids = [a.id for a in accepted.accepted]
                response = answer(accepted, await service.decide.await_decisions(ids, timeout=wait))
        except Exception as exc:
            handler = _handler(request.app.exception_handlers, exc)
            if handler is None:
                raise  # no handler: a 500 from the outer error middleware, as on the full path
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        # What SecurityHeaders adds to this route's answers: JSON, behind a token.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        await response(scope, receive, send)


def _takes(scope: Scope) -> float | Literal[False] | None:
    """False: not a request this path answers. Otherwise `POST /api/events` with
    `Authorization: Bearer …`, and its wait (`_wait`: None, or seconds)."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
        return False
    if scope.get("root_path"):
        return False
    for name, value in scope["headers"]:
        if name == b"authorization":
            if bytes(value[:7]).lower() != b"bearer ":
                return False
            return _wait(scope.get("query_string", b""))
    return False


_WAIT = re.compile(rb"wait=decision(?:&timeout=([1-9]|[12][0-9]|30))?")


def _wait(query: bytes) -> float | Literal[False] | None:
    """None: no query; a number: `?wait=decision` with that timeout; False: any other query,
    which the full stack reads (and refuses, when the route would)."""
    if not query:
        return None
    found = _WAIT.fullmatch(query)
    if found is None:
        return False
    return float(found.group(1)) if found.group(1) else DEFAULT_WAIT


def _handler(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The app's handler for `exc`, looked up by its class's ancestry as Starlette does."""
    for kind in type(exc).__mro__:
        if kind in handlers:
            return handlers[kind]
    return None
