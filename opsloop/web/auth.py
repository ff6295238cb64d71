"""Who is asking, and may they: every route declares its access rule, here in one vocabulary.

A route declares exactly one rule, as a dependency, and `check_routes` refuses to build an app
with a route that declares none (or two):

    @router.get("/api/events", dependencies=[Depends(READ)])        # the principal unused
    def list_events(...): ...

    @router.post("/api/decisions/{decision_id}/review")
    async def review_decision(..., who: Reviewer): ...               # `who` is the Principal

| rule | JSON API alias | page alias (opsloop/web/pages/ui.py) | who passes |
| --- | --- | --- | --- |
| `PUBLIC` | | | everybody: sign-in, set-up, health, ingest webhooks (they check their own signatures) |
| `READ` | `Reader` | `PageReader` | viewers, reviewers, owners; tokens of any scope |
| `REVIEW` | `Reviewer` | `PageReviewer` | reviewers and owners; `review` and `admin` tokens |
| `ADMIN` | `Owner` | `PageOwner` | owners; `admin` tokens |

A request is authenticated by `Authorization: Bearer <token>` (an API token) or by the session
cookie a browser gets when signing in. Anonymous requests get 401 from the JSON API and a
redirect to /login from pages; a principal whose role or scope is too low gets 403.

**CSRF.** A request authenticated by the session cookie that is not GET, HEAD or OPTIONS must
carry the session's CSRF token, in the `X-CSRF-Token` header (htmx sends it on every request:
see `hx-headers` in templates/base.html) or, for pages, in the `csrf_token` form field. Bearer
requests need none: a browser never adds that header by itself. Forms shown before signing in
(/login, /setup) use a signed double-submit cookie instead (`form_token`, `check_form_token`).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from itsdangerous import BadSignature
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.routing import BaseRoute, Mount

from opsloop.core.access import Permission, Principal, role_for
from opsloop.core.errors import Forbidden, Unauthorized
from opsloop.service import OpsLoop

SESSION_COOKIE = "opsloop_session"
FORM_COOKIE = "opsloop_form"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_UNRESOLVED = object()


class SignInRequired(Exception):
    """A page needs a signed-in person; the handler in opsloop/web/pages/ui.py redirects to /login."""


class PageForbidden(Exception):
    """A signed-in person may not see or do this page's work; pages/ui.py answers with a 403 page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Access:
    """A route's access rule, used as its dependency. `needed` None: public."""

    def __init__(self, needed: Permission | None, *, page: bool = False) -> None:
        self.needed = needed
        self.page = page

    def __repr__(self) -> str:
        return f"Access({self.needed!r}{', page=True' if self.page else ''})"

    async def __call__(self, request: Request) -> Principal | None:
        if self.needed is None:
            return None
        principal = await current_principal(request)
        if principal is None:
            if self.page:
                raise SignInRequired
            raise Unauthorized(
                "sign in, or send an API token: Authorization: Bearer <token>", challenge="Bearer"
            )
        if principal.csrf_token is not None and request.method not in SAFE_METHODS:
            try:
                await _check_csrf(request, principal.csrf_token, page=self.page)
            except (PageForbidden, Forbidden):
                await request.close()  # the form read for its token (uploads: temporary files)
                raise
        if not principal.may(self.needed):
            await request.close()
            message = (
                f"your {principal.grant} does not allow this; it needs the "
                f"{role_for(self.needed)} role or a token of scope {self.needed}"
            )
            if self.page:
                raise PageForbidden(message)
            raise Forbidden(message)
        return principal


PUBLIC = Access(None)
READ = Access("read")
REVIEW = Access("review")
ADMIN = Access("admin")
PAGE_READ = Access("read", page=True)
PAGE_REVIEW = Access("review", page=True)
PAGE_ADMIN = Access("admin", page=True)

Reader = Annotated[Principal, Depends(READ)]
Reviewer = Annotated[Principal, Depends(REVIEW)]
Owner = Annotated[Principal, Depends(ADMIN)]


def service_of(request: Request) -> OpsLoop:
    return request.app.state.ops  # type: ignore[no-any-return]


async def current_principal(request: Request) -> Principal | None:
    """The request's principal (resolved once per request): an API token when the request
    has `Authorization: Bearer`, else the session cookie's person, else None. A bearer token
    that is unknown or revoked is refused outright rather than treated as anonymous."""
    cached: object = getattr(request.state, "principal", _UNRESOLVED)
    if cached is not _UNRESOLVED:
        assert cached is None or isinstance(cached, Principal)
        return cached
    accounts = service_of(request).accounts
    principal: Principal | None = None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        # Cached tokens answer without a thread switch, which cost a third of the single-event
        # throughput (issue 12); a miss or a due touch reads and writes in the pool.
        principal = accounts.cached_token_principal(token.strip()) or await run_in_threadpool(
            accounts.token_principal, token.strip()
        )
        if principal is None:
            raise Unauthorized("the API token is unknown or revoked", challenge="Bearer")
    elif cookie := request.cookies.get(SESSION_COOKIE):
        principal = await run_in_threadpool(accounts.session_principal, cookie)
    request.state.principal = principal
    return principal


async def _check_csrf(request: Request, expected: str, *, page: bool) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and page and _is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if sent is not None and hmac.compare_digest(sent.encode(), expected.encode()):
        return
    message = (
        f"this request is signed in by a session cookie, so it must carry the session's CSRF "
        f"token in the {CSRF_HEADER} header (GET /api/me tells it)"
    )
    if page:
        raise PageForbidden("This form has expired. Go back, reload the page and try again.")
    raise Forbidden(message)


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(FORM_TYPES)


# --- cookies ---------------------------------------------------------------------------------


def is_https(request: Request) -> bool:
    """Behind a reverse proxy, uvicorn takes the scheme from X-Forwarded-Proto when the proxy
    is trusted (`--forwarded-allow-ips`, default 127.0.0.1)."""
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def form_token(request: Request) -> tuple[str, str | None]:
    """The CSRF value for a form shown before signing in, and the cookie value to set when the
    browser does not hold one yet (else None)."""
    signer = service_of(request).accounts.form_signer()
    held = request.cookies.get(FORM_COOKIE)
    if held:
        try:
            value = signer.loads(held, max_age=86400)
        except BadSignature:
            value = None
        if isinstance(value, str):
            return value, None
    value = secrets.token_urlsafe(32)
    return value, signer.dumps(value)


def set_form_cookie(response: Response, request: Request, cookie: str | None) -> None:
    if cookie is not None:
        response.set_cookie(
            FORM_COOKIE,
            cookie,
            max_age=86400,
            path="/",
            httponly=True,
            samesite="lax",
            secure=is_https(request),
        )


def check_form_token(request: Request, form: FormData) -> bool:
    """Does the form's `csrf_token` match the browser's signed form cookie?"""
    held = request.cookies.get(FORM_COOKIE)
    sent = form.get(CSRF_FIELD)
    if not held or not isinstance(sent, str):
        return False
    try:
        value = service_of(request).accounts.form_signer().loads(held, max_age=86400)
    except BadSignature:
        return False
    return isinstance(value, str) and hmac.compare_digest(value.encode(), sent.encode())


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --- the route table -------------------------------------------------------------------------


def walk_routes(app: FastAPI) -> Iterator[BaseRoute]:
    """Every route of the app, also inside routers that FastAPI includes lazily."""

    def walk(routes: list[Any]) -> Iterator[BaseRoute]:
        for route in routes:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)
            elif isinstance(route, Mount) and route.name != "static":
                yield from walk(route.routes)
            else:
                yield route

    yield from walk(list(app.routes))


def route_access(route: APIRoute) -> list[Access]:
    """The access rules a route declares (in its own dependencies or its parameters')."""
    found: list[Access] = []

    def walk(dependant: Any) -> None:
        for sub in dependant.dependencies:
            if isinstance(sub.call, Access) and sub.call not in found:
                found.append(sub.call)
            walk(sub)

    walk(route.dependant)
    return found


def check_routes(app: FastAPI) -> None:
    """Refuse an app in which a route does not declare exactly one access rule."""
    problems = []
    for route in walk_routes(app):
        if isinstance(route, Mount) and route.name == "static":
            continue
        if not isinstance(route, APIRoute):
            problems.append(f"{getattr(route, 'path', route)!r} is not an API route")
            continue
        rules = route_access(route)
        if len(rules) != 1:
            methods = ",".join(sorted(route.methods or ()))
            problems.append(
                f"{methods} {route.path} declares {len(rules)} access rules ({rules}); "
                "give it exactly one of PUBLIC, READ, REVIEW, ADMIN (opsloop/web/auth.py)"
            )
    if problems:
        raise RuntimeError("routes without a clear access rule:\n" + "\n".join(problems))
