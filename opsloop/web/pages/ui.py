"""The browser UI: server-rendered Jinja2 pages, htmx for partial updates, vendored assets.

Everything the browser loads comes from opsloop/web/templates/ and opsloop/web/static/ (found
by opsloop/web/assets.py); nothing comes from a CDN, and the Content-Security-Policy sent with
every page forbids it.

## Adding a page

1. A module `opsloop/web/pages/<name>.py` with its own router from `page_router()`. Routes
   take the service and an access alias; they call the service façade (never the store) and
   return `render(...)`:

       router = page_router()

       @router.get("/inbox")
       def inbox(request: Request, service: Service, who: PageReader) -> HTMLResponse:
           rows = service.decide.list_decisions(status="to_review", limit=50)
           return render(request, "inbox.html", {"decisions": rows}, active="/inbox")

   `PageReader`, `PageReviewer` and `PageOwner` say who may open it (opsloop/web/auth.py):
   anonymous visitors are sent to /login and come back afterwards; others get a 403 page.
   A form or htmx request that changes something uses a route with `PageReviewer` or
   `PageOwner`: its CSRF token is checked before the route runs.
2. A template `opsloop/web/templates/<name>.html` that starts with
   `{% extends "base.html" %}` and fills `{% block title %}` and `{% block content %}`. Every
   form that posts includes `{{ csrf_field() }}`; htmx requests carry the token by themselves
   (`hx-headers` on <body>).
   A fragment for htmx to swap in is a template that does not extend base.html, rendered with
   `render(request, "inbox_rows.html", ...)` as usual.
3. One line in `NAV` below puts the page in the navigation bar (shown to those who may open
   it), and one line in `PAGE_ROUTERS` in opsloop/web/app.py serves it. The home page `/` sends
   people to the first entry of `NAV` they may open.
4. A browser test in tests/browser/ (fixtures `live_app` and `page`; see tests/browser/conftest.py)
   and a line in docs/web.md.

The page context always has `principal` (the signed-in person or None), `csrf_token`, `nav`
(the entries this person may open), `active` (the path to highlight) and `static(path)` (the
URL of a static asset, with a version so browsers refetch after an upgrade).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from opsloop import __version__
from opsloop.core.access import Permission, Principal
from opsloop.web.assets import STATIC, TEMPLATES
from opsloop.web.auth import (
    CSRF_FIELD,
    PAGE_ADMIN,
    PAGE_READ,
    PAGE_REVIEW,
    PageForbidden,
    SignInRequired,
)


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    path: str
    needs: Permission = "read"


NAV: list[NavItem] = [
    # One line per page, in the order of the navigation bar, e.g.
    # NavItem("Inbox", "/inbox"),
    # NavItem("Playbooks", "/playbooks"),
    # NavItem("Settings", "/settings", needs="admin"),
    NavItem("Inbox", "/inbox"),
    NavItem("Dashboard", "/dashboard"),
    NavItem("Reports", "/reports"),
    NavItem("Playbooks", "/playbooks"),
    NavItem("Sources", "/sources"),
    NavItem("Tasks", "/tasks"),
    NavItem("Actions", "/actions"),
    NavItem("Sequences", "/sequences"),
    NavItem("Ask", "/ask"),
    NavItem("Documents", "/documents"),
    NavItem("Settings", "/settings", needs="admin"),
]
"""The navigation bar. Only pages that exist are listed; /account is reached from the name of
the signed-in person."""

PageReader = Annotated[Principal, Depends(PAGE_READ)]
PageReviewer = Annotated[Principal, Depends(PAGE_REVIEW)]
PageOwner = Annotated[Principal, Depends(PAGE_ADMIN)]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page_router() -> APIRouter:
    """A router for pages: HTML answers, left out of the OpenAPI schema."""
    return APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


def home_for(principal: Principal) -> str:
    """Where `/` sends this person: the first page in NAV they may open."""
    for item in NAV:
        if principal.may(item.needs):
            return item.path
    return "/account"


@functools.cache
def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=TEMPLATES)
    found.env.globals["static"] = _static
    return found


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    active: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page (or htmx fragment) from opsloop/web/templates/, with the context every page has."""
    principal: Principal | None = getattr(request.state, "principal", None)
    csrf = principal.csrf_token if principal else None
    base = {
        "principal": principal,
        "csrf_token": csrf,
        "csrf_field": functools.partial(_csrf_field, csrf),
        "nav": [item for item in NAV if principal and principal.may(item.needs)],
        "active": active,
    }
    return templates().TemplateResponse(
        request,
        name,
        {**base, **(context or {})},
        status_code=status_code,
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def install(app: FastAPI) -> None:
    """Serve opsloop/web/static/ and turn the page access errors into a redirect or a 403 page."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(SignInRequired, _sign_in_required)  # type: ignore[arg-type]
    app.add_exception_handler(PageForbidden, _page_forbidden)  # type: ignore[arg-type]


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login" if target == "/" else f"/login?next={quote(target, safe='/')}"


async def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
    url = login_url(request)
    if request.headers.get("hx-request"):
        # htmx would swap the login page into a fragment; tell it to load the page instead.
        return Response(status_code=401, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


async def _page_forbidden(request: Request, exc: PageForbidden) -> HTMLResponse:
    return render(request, "error.html", {"message": exc.message}, status_code=403)


def _static(path: str) -> str:
    return f"/static/{path}?v={__version__}"


def _csrf_field(token: str | None) -> Markup:
    if token is None:
        return Markup("")
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">')
