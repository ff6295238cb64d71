"""Three pure-ASGI middlewares every request passes: a size limit on request bodies, a refusal
of NUL characters, and the headers that keep answers from being sniffed or cached.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`: they look at the raw messages, so a
body over the limit is refused without being held in memory, and a streamed answer streams.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsloop.web.auth import route_access
from opsloop.web.responses import Json

INGEST_PATHS = ("/api/events", "/hooks/", "/v1/")
"""Where signals arrive: these routes read their own bodies with `max_body_bytes`, keeping the
first bytes of a refused one in quarantine, so `BodyLimit` leaves them alone."""


def is_ingest(path: str) -> bool:
    return path == INGEST_PATHS[0] or path.startswith(INGEST_PATHS[1:])


UPLOAD_PATHS = ("/api/documents", "/documents/upload")
"""Where documents are uploaded: binary files (a PDF has NUL bytes) up to `MAX_UPLOAD_BYTES`,
read by the route; the service refuses a NUL in a name or in text it stores."""
MAX_UPLOAD_BYTES = 21 * 1024 * 1024
"""A document's 20 MiB (opsloop/service/ask/documents.py) and a form's fields around it."""


def is_upload(path: str) -> bool:
    return path in UPLOAD_PATHS


def is_ingest_or_upload(path: str) -> bool:
    return is_ingest(path) or is_upload(path)


class _BodyRefused(Exception):
    """Raised into the app from `receive` when a body chunk fails the middleware's check."""


async def _run_checking_body(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, check: Callable[[bytes], bool]
) -> bool:
    """Run `app`, showing `check` each chunk of the request body as the app reads it. False
    when `check` refused a chunk before the app began its answer: the caller answers instead.
    Every route reads its body before answering, so a refusal after that cannot happen; it
    would be raised as it is."""
    started = False
    refusal = _BodyRefused()  # this call's own: another middleware's refusal passes through

    async def checked_receive() -> Message:
        message = await receive()
        if message["type"] == "http.request" and not check(message.get("body", b"")):
            raise refusal
        return message

    async def watched_send(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, checked_receive, watched_send)
    except _BodyRefused as exc:
        if exc is not refusal or started:
            raise
        return False
    except ExceptionGroup as group:  # a task group in between wraps what it raised
        matched, rest = group.split(lambda exc: exc is refusal)
        if matched is None or rest is not None or started:
            raise
        return False
    return True


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413 `too_large`, before any of it is
    parsed: at once when `Content-Length` says so (the body is never read), otherwise as soon
    as the bytes received pass the limit (a chunked body)."""

    def __init__(
        self, app: ASGIApp, *, limit: int, exempt: Callable[[str], bool] = is_ingest
    ) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send, f"is {int(declared)} bytes")
            return
        received = 0

        def within_limit(chunk: bytes) -> bool:
            nonlocal received
            received += len(chunk)
            return received <= self.limit

        if not await _run_checking_body(self.app, scope, receive, send, within_limit):
            await self._refuse(scope, receive, send, f"is over {self.limit} bytes")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: str) -> None:
        message = f"the body {size}; the limit is {self.limit} bytes (OPSLOOP_MAX_REQUEST_BYTES)"
        body = {
            "error": "too_large",
            "message": f"body: {message}",
            "errors": [{"field": "body", "message": message}],
        }
        # The client may still be sending: tell it the connection will not be reused.
        answer = Json(body, status_code=413, headers={"Connection": "close"})
        await answer(scope, receive, send)


FORM_TYPE = "application/x-www-form-urlencoded"
NUL_MESSAGE = "contains a NUL character (\\u0000), which cannot be stored; remove it"


class NoNul:
    """Refuse a NUL character in a request's path, query or body with 422 `invalid_input`
    naming where it is. PostgreSQL cannot store one in text, so it would otherwise surface as
    a 500 from the database wherever the value reaches a query (`?subject=%00`, a review's
    reason, a sign-in email). Ingest bodies are checked where they are parsed
    (opsloop/perception/ingest_bodies.py), which keeps the refused body in quarantine.

    A body is checked as it streams in, for the forms a NUL takes on the wire: the byte
    itself, `\\u0000` in JSON, `%00` in a URL-encoded form. (The text `\\\\u0000` in JSON
    is a false alarm: nobody writes it.)"""

    def __init__(self, app: ASGIApp, *, exempt: Callable[[str], bool] = is_ingest) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = _nul_in_url(scope)
        if where is not None:
            await _invalid(scope, receive, send, where)
            return
        if self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        form = Headers(scope=scope).get("content-type", "").startswith(FORM_TYPE)
        signs = (b"\x00", b"\\u0000", b"%00") if form else (b"\x00", b"\\u0000")
        tail = b""

        def clean(chunk: bytes) -> bool:
            nonlocal tail
            # The last bytes of the previous chunk, so a `%00` cut in two is still seen.
            seen = tail + chunk
            tail = seen[-5:]
            return not any(sign in seen for sign in signs)

        if not await _run_checking_body(self.app, scope, receive, send, clean):
            await _invalid(scope, receive, send, "body")


def _nul_in_url(scope: Scope) -> str | None:
    """Where a NUL is in the request's address: `path`, a query parameter's name, or None."""
    if "\x00" in scope["path"]:
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return "query"


async def _invalid(scope: Scope, receive: Receive, send: Send, field: str) -> None:
    body = {
        "error": "invalid_input",
        "message": f"{field}: {NUL_MESSAGE}",
        "errors": [{"field": field, "message": NUL_MESSAGE}],
    }
    await Json(body, status_code=422)(scope, receive, send)


class SecurityHeaders:
    """`X-Content-Type-Options: nosniff` on every JSON answer, so a browser never runs one as
    a script or page; `Cache-Control: no-store` on every answer of a route that needs a token
    or a session, so no shared cache or browser history keeps private data. An answer that
    sets its own `Cache-Control` keeps it (e.g. `/t.js`, which is public anyway)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._public: dict[int, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                kind = headers.get("content-type", "").split(";")[0].strip().lower()
                if kind == "application/json" or kind.endswith("+json"):
                    headers.setdefault("X-Content-Type-Options", "nosniff")
                if self._private(scope):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)

    def _private(self, scope: Scope) -> bool:
        """Does the route that answered need a token or a session? The router leaves the
        route in the scope; no route (a 404, a static file) is public."""
        route = scope.get("route")
        if not isinstance(route, APIRoute):
            return False
        public = self._public.get(id(route))
        if public is None:
            public = all(rule.needed is None for rule in route_access(route))
            self._public[id(route)] = public
        return not public
