"""Pages for signing in and out, the first-run set-up, the home redirect and the account page."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.access import ROLE_SUMMARY, ROLES, Principal
from opsloop.core.errors import Conflict, InvalidInput, RateLimited, Unauthorized
from opsloop.service import OpsLoop
from opsloop.web.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    PUBLIC,
    SESSION_COOKIE,
    check_form_token,
    clear_session_cookie,
    client_ip,
    current_principal,
    form_token,
    set_form_cookie,
    set_session_cookie,
)
from opsloop.web.deps import ops
from opsloop.web.pages.admin_common import sentence
from opsloop.web.pages.ui import PageReader, home_for, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]
EXPIRED = "This form has expired or your browser refused its cookie. Please try again."


@router.get("/", summary="Home: the first page this person may open")
def home(who: PageReader) -> RedirectResponse:
    return RedirectResponse(home_for(who), status_code=303)


@router.get("/login", dependencies=[Depends(PUBLIC)], summary="The sign-in form")
async def login_form(
    request: Request, service: Service, next: str = "/", changed: bool = False
) -> Response:
    if await run_in_threadpool(service.accounts.needs_setup):
        return RedirectResponse("/setup", status_code=303)
    if await _signed_in(request):
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, next=_safe_next(next), changed=changed)


@router.post("/login", dependencies=[Depends(PUBLIC)], summary="Sign in")
async def login(request: Request, service: Service) -> Response:
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    if not check_form_token(request, form):
        return _login_page(request, next=target, email=email, error=EXPIRED, status_code=403)
    try:
        signed = await run_in_threadpool(
            service.accounts.sign_in,
            email,
            password,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    except RateLimited as exc:
        return _login_page(
            request,
            next=target,
            email=email,
            error=f"Too many failed sign-ins: {exc}.",
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except Unauthorized as exc:
        message = str(exc)
        return _login_page(
            request, next=target, email=email, error=message[:1].upper() + message[1:] + "."
        )
    response = RedirectResponse(target, status_code=303)
    if old := request.cookies.get(SESSION_COOKIE):
        await run_in_threadpool(service.accounts.sign_out, old)
    set_session_cookie(response, request, signed.cookie, service.accounts.session_seconds)
    return response


@router.post("/logout", dependencies=[Depends(PUBLIC)], summary="Sign out")
async def logout(request: Request, service: Service) -> Response:
    """Ends the session (after checking its CSRF token) and forgets the cookie."""
    principal = await current_principal(request)
    if principal is not None and principal.csrf_token is not None:
        form = await request.form()
        sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not isinstance(sent, str) or not hmac.compare_digest(
            sent.encode(), principal.csrf_token.encode()
        ):
            return render(
                request,
                "error.html",
                {"message": "This form has expired. Go back, reload the page and try again."},
                status_code=403,
            )
    if cookie := request.cookies.get(SESSION_COOKIE):
        await run_in_threadpool(service.accounts.sign_out, cookie)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, request)
    return response


@router.get("/setup", dependencies=[Depends(PUBLIC)], summary="First run: create the owner")
async def setup_form(request: Request, service: Service) -> Response:
    if not await run_in_threadpool(service.accounts.needs_setup):
        return RedirectResponse("/login", status_code=303)
    return _setup_page(request)


@router.post("/setup", dependencies=[Depends(PUBLIC)], summary="First run: create the owner")
async def setup(request: Request, service: Service) -> Response:
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    if not check_form_token(request, form):
        return _setup_page(request, email=email, errors={"": EXPIRED}, status_code=403)
    if password != str(form.get("confirm", "")):
        return _setup_page(
            request, email=email, errors={"confirm": "The two passwords differ."}, status_code=422
        )
    try:
        await run_in_threadpool(service.accounts.create_first_owner, email, password)
    except InvalidInput as exc:
        errors = {e.field: e.message[:1].upper() + e.message[1:] + "." for e in exc.errors}
        return _setup_page(request, email=email, errors=errors, status_code=422)
    except Conflict:
        return RedirectResponse("/login", status_code=303)
    signed = await run_in_threadpool(
        service.accounts.sign_in,
        email,
        password,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, request, signed.cookie, service.accounts.session_seconds)
    return response


@router.get("/account", summary="Who you are signed in as, and what your role may do")
def account(request: Request, who: PageReader) -> HTMLResponse:
    return _account_page(request, who)


@router.post("/account/password", summary="Change your own password")
async def change_password(request: Request, service: Service, who: PageReader) -> Response:
    form = await request.form()
    current, new = str(form.get("current", "")), str(form.get("password", ""))
    if who.kind != "user":
        return _account_page(request, who, error="an API token has no password", status_code=409)
    if new != str(form.get("confirm", "")):
        return _account_page(request, who, error="The two new passwords differ.", status_code=422)
    try:
        await run_in_threadpool(service.accounts.change_own_password, who.name, current, new)
    except InvalidInput as exc:
        said = sentence("; ".join(error.message for error in exc.errors))
        return _account_page(request, who, error=said, status_code=422)
    # Every session of this person ended with the change: sign in again with the new one.
    response = RedirectResponse("/login?changed=1", status_code=303)
    clear_session_cookie(response, request)
    return response


def _account_page(
    request: Request, who: Principal, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    roles = [(role, ROLE_SUMMARY[role]) for role in reversed(ROLES)]
    context = {"roles": roles, "error": error, "has_password": who.kind == "user"}
    return render(request, "account.html", context, status_code=status_code, active="/account")


# --- helpers ---------------------------------------------------------------------------------


async def _signed_in(request: Request) -> bool:
    return await current_principal(request) is not None


def _login_page(
    request: Request,
    *,
    next: str,
    email: str = "",
    error: str | None = None,
    status_code: int | None = None,
    headers: dict[str, str] | None = None,
    changed: bool = False,
) -> HTMLResponse:
    token, cookie = form_token(request)
    if status_code is None:
        status_code = 401 if error else 200
    response = render(
        request,
        "login.html",
        {"form_csrf": token, "email": email, "error": error, "next": next, "changed": changed},
        status_code=status_code,
        headers=headers,
    )
    set_form_cookie(response, request, cookie)
    return response


def _setup_page(
    request: Request,
    *,
    email: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    token, cookie = form_token(request)
    response = render(
        request,
        "setup.html",
        {"form_csrf": token, "email": email, "errors": errors or {}},
        status_code=status_code,
    )
    set_form_cookie(response, request, cookie)
    return response


def _safe_next(target: str) -> str:
    """Only a path on this site: never `//evil.example` or `https://…` (an open redirect)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
