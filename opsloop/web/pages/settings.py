"""The Settings page (`/settings`, owners only): the mail server, chat channels, the language
model and the public address, edited here and in force at once (`POST /settings/{group}`,
opsloop/service/configuration.py), each field saying where its value comes from; the rest of
the configuration as it stands, each value with the variable that changes it; test buttons for
the mail server and the language model; the language model's usage; and the people and API
tokens.

Secrets are write-only: never shown, only whether they are set. Chat webhook URLs carry their
secret in the path, so only their host is shown.

Forms work without JavaScript (the whole page comes back); from htmx only the part that
changed comes back, with any error in it (status 200, so htmx swaps it in).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

from opsloop.core.access import ROLE_SUMMARY, ROLES, SCOPES, Principal
from opsloop.core.editable_settings import BY_KEY, GROUPS
from opsloop.core.errors import Conflict, InvalidInput, NotFound
from opsloop.core.llm_calls import ModelUsage
from opsloop.service import OpsLoop, SettingView
from opsloop.settings import Settings
from opsloop.web.deps import ops
from opsloop.web.ids import page_id
from opsloop.web.pages.admin_common import TIME_HELPERS, is_htmx, sentence, without_secrets
from opsloop.web.pages.ui import PageOwner, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

SETTINGS = "/settings"
Row = tuple[str, Any, str, bool]
"""(what, value, environment variable, secret)."""


@router.get(SETTINGS, summary="Configuration, connection tests, people and API tokens")
def settings_page(request: Request, service: Service, who: PageOwner) -> HTMLResponse:
    return _page(request, service, who)


@router.post("/settings/smtp/test", summary="Test the mail server (optionally send a test email)")
async def smtp_test(request: Request, service: Service, who: PageOwner) -> Response:
    form = await request.form()
    to = str(form.get("to") or "").strip()
    try:
        check = await run_in_threadpool(service.deliver.check_smtp, send_to=to or None)
    except InvalidInput as exc:
        return await _part(
            request, service, who, "settings_smtp_check.html", smtp_error=_first(exc), smtp_to=to
        )
    return await _part(
        request, service, who, "settings_smtp_check.html", smtp_check=check, smtp_to=to
    )


@router.post("/settings/llm/test", summary="Test the language model")
async def llm_test(request: Request, service: Service, who: PageOwner) -> Response:
    check = await run_in_threadpool(service.decide.check_llm)
    return await _part(request, service, who, "settings_llm_check.html", llm_check=check)


@router.post("/settings/users", summary="Create an account")
async def create_user(request: Request, service: Service, who: PageOwner) -> Response:
    form = await request.form()
    values = {key: str(form.get(key) or "") for key in ("email", "role", "password")}
    try:
        made = await run_in_threadpool(
            service.accounts.create_user,
            values["email"],
            values["password"],
            values["role"],
            actor=who.actor,
        )
    except InvalidInput as exc:
        errors = {e.field: sentence(e.message) for e in exc.errors}
        return await _part(
            request, service, who, "settings_users.html", 422, user_errors=errors, user_form=values
        )
    except Conflict as exc:
        errors = {"email": sentence(str(exc))}
        return await _part(
            request, service, who, "settings_users.html", 409, user_errors=errors, user_form=values
        )
    notice = f"{made['email']} can now sign in as {made['role']}. Give them the password you chose."
    return await _part(request, service, who, "settings_users.html", user_notice=notice)


@router.post("/settings/users/disable", summary="Disable an account")
async def disable_user(request: Request, service: Service, who: PageOwner) -> Response:
    email = str((await request.form()).get("email") or "")
    try:
        done = await run_in_threadpool(service.accounts.disable_user, email, actor=who.actor)
    except NotFound as exc:
        return await _part(
            request, service, who, "settings_users.html", 404, user_problem=sentence(str(exc))
        )
    except Conflict as exc:
        return await _part(
            request, service, who, "settings_users.html", 409, user_problem=sentence(str(exc))
        )
    notice = f"{done['email']} is disabled and signed out everywhere."
    return await _part(request, service, who, "settings_users.html", user_notice=notice)


@router.post("/settings/tokens", summary="Create an API token (shown once)")
async def create_token(request: Request, service: Service, who: PageOwner) -> Response:
    form = await request.form()
    values = {key: str(form.get(key) or "") for key in ("name", "scope")}
    try:
        made = await run_in_threadpool(
            service.accounts.create_token, values["name"], values["scope"], actor=who.actor
        )
    except InvalidInput as exc:
        errors = {e.field: sentence(e.message) for e in exc.errors}
        return await _part(
            request,
            service,
            who,
            "settings_tokens.html",
            422,
            token_errors=errors,
            token_form=values,
        )
    return await _part(request, service, who, "settings_tokens.html", new_token=made)


@router.post("/settings/tokens/{token_id}/revoke", summary="Revoke an API token")
async def revoke_token(
    request: Request, service: Service, who: PageOwner, token_id: int
) -> Response:
    try:
        done = await run_in_threadpool(
            service.accounts.revoke_token, page_id(token_id, "API token"), actor=who.actor
        )
    except (NotFound, Conflict) as exc:
        status = 404 if isinstance(exc, NotFound) else 409
        return await _part(
            request,
            service,
            who,
            "settings_tokens.html",
            status,
            token_problem=sentence(str(exc)),
        )
    notice = f"The token {done['name']} is revoked: requests using it are refused from now on."
    return await _part(request, service, who, "settings_tokens.html", token_notice=notice)


# Last: `/settings/users` and `/settings/tokens` above must match before `{group}` does.
@router.post("/settings/{group}", summary="Save a group of settings (in force at once)")
async def save_group(request: Request, service: Service, who: PageOwner, group: str) -> Response:
    if group not in GROUPS:
        return _page(
            request, service, who, 404, page_problem=f"There is no settings group {group!r}."
        )
    form = await request.form()
    values = {key: str(value) for key, value in form.items() if key not in ("clear", "csrf_token")}
    clear = {str(value) for value in form.getlist("clear")}
    extra: dict[str, Any] = {"group_saved": group, "group_form": values}
    try:
        changed = await run_in_threadpool(
            service.configuration.save, group, values, clear=clear, actor=who.actor
        )
    except InvalidInput as exc:
        errors = {e.field: sentence(e.message) for e in exc.errors}
        return await _group(request, service, who, group, 422, group_errors=errors, **extra)
    labels = [BY_KEY[key].label.lower() for key in changed]
    notice = f"Saved ({', '.join(labels)}): in force now." if labels else "Nothing changed."
    extra["group_form"] = {}
    return await _group(request, service, who, group, group_notice=notice, **extra)


# --- rendering -------------------------------------------------------------------------------


async def _group(
    request: Request,
    service: OpsLoop,
    who: Principal,
    group: str,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """From htmx: the group's form, always 200. Otherwise the page, with the form's outcome."""
    if is_htmx(request):
        context = await run_in_threadpool(_context, service, who, **extra)
        context.update(group=group, views=context["groups"][group])
        return render(request, "settings_group.html", context)
    return await run_in_threadpool(_page, request, service, who, status_code, **extra)


async def _part(
    request: Request,
    service: OpsLoop,
    who: Principal,
    fragment: str,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """From htmx: the fragment, always 200 (htmx swaps only 2xx answers). Otherwise the page."""
    if is_htmx(request):
        context = await run_in_threadpool(_context, service, who, **extra)
        return render(request, fragment, context)
    return await run_in_threadpool(_page, request, service, who, status_code, **extra)


def _page(
    request: Request, service: OpsLoop, who: Principal, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    context = _context(service, who, **extra)
    return render(request, "settings.html", context, status_code=status_code, active=SETTINGS)


def _context(service: OpsLoop, who: Principal, **extra: Any) -> dict[str, Any]:
    s = service.settings
    usage = service.decide.llm_usage()
    groups: dict[str, list[SettingView]] = {group: [] for group in GROUPS}
    for view in service.configuration.view():
        groups[view.editable.group].append(view)
    return {
        "groups": groups,
        "group_saved": None,
        "group_errors": {},
        "group_form": {},
        "key_location": service.configuration.key_location(),
        "server": _server(s),
        "smtp": _smtp(s),
        "delivery": _delivery(s),
        "endpoints": _endpoints(s),
        "llm": _llm(s),
        "llm_configured": bool(s.llm.url and s.llm.model),
        "usage": _usage(list(usage.values())),
        "users": service.accounts.list_users(),
        "tokens": service.accounts.list_tokens(),
        "roles": [(role, ROLE_SUMMARY[role]) for role in reversed(ROLES)],
        "scopes": SCOPES,
        "me": who.name,
        "user_errors": {},
        "user_form": {"role": "reviewer"},
        "token_errors": {},
        "token_form": {"scope": "read"},
        **TIME_HELPERS,
        **extra,
    }


def _server(s: Settings) -> list[Row]:
    database = make_url(s.resolved_database_url).render_as_string(hide_password=True)
    return [
        ("Environment", s.environment, "OPSLOOP_ENVIRONMENT", False),
        ("Database", database, "OPSLOOP_DATABASE_URL", False),
        ("Data directory", str(s.data_dir), "OPSLOOP_DATA_DIR", False),
        ("Playbooks directory", str(s.resolved_playbooks_dir), "OPSLOOP_PLAYBOOKS_DIR", False),
        ("Session length (days)", s.session_days, "OPSLOOP_SESSION_DAYS", False),
    ]


def _smtp(s: Settings) -> list[Row]:
    return [
        ("Timeout (seconds)", s.smtp_timeout_seconds, "OPSLOOP_SMTP_TIMEOUT_SECONDS", False),
    ]


def _delivery(s: Settings) -> list[Row]:
    return [
        ("Signing secret of outgoing webhooks", s.webhook_secret, "OPSLOOP_WEBHOOK_SECRET", True),
        (
            "Request timeout (seconds)",
            s.delivery_timeout_seconds,
            "OPSLOOP_DELIVERY_TIMEOUT_SECONDS",
            False,
        ),
        (
            "Attempts before dead-lettering",
            s.outbox_max_attempts,
            "OPSLOOP_OUTBOX_MAX_ATTEMPTS",
            False,
        ),
        (
            "First retry wait (seconds)",
            s.outbox_backoff_base_seconds,
            "OPSLOOP_OUTBOX_BACKOFF_BASE_SECONDS",
            False,
        ),
        (
            "Longest retry wait (seconds)",
            s.outbox_backoff_max_seconds,
            "OPSLOOP_OUTBOX_BACKOFF_MAX_SECONDS",
            False,
        ),
    ]


def _endpoints(s: Settings) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "url": without_secrets(endpoint.url),
            "own_secret": endpoint.secret is not None,
            "variable": f"OPSLOOP_WEBHOOK_ENDPOINTS__{name.upper()}__URL",
        }
        for name, endpoint in sorted(s.webhook_endpoints.items())
    ]


def _llm(s: Settings) -> list[Row]:
    llm = s.llm
    return [
        ("Retries", llm.max_retries, "OPSLOOP_LLM__MAX_RETRIES", False),
        ("Response cache", "on" if llm.cache else "off", "OPSLOOP_LLM__CACHE", False),
    ]


def _chat(url: str | None) -> str | None:
    return without_secrets(url, keep_path=False) if url else None


def _usage(rows: list[ModelUsage]) -> list[ModelUsage]:
    """The per-model rows, and a total when there is more than one model."""
    if len(rows) < 2:
        return rows
    costs = [float(row["cost"]) for row in rows if row["cost"] is not None]
    total: ModelUsage = {
        "model": "all models",
        "calls": sum(int(row["calls"] or 0) for row in rows),
        "cached": sum(int(row["cached"] or 0) for row in rows),
        "failed": sum(int(row["failed"] or 0) for row in rows),
        "prompt_tokens": sum(int(row["prompt_tokens"] or 0) for row in rows),
        "completion_tokens": sum(int(row["completion_tokens"] or 0) for row in rows),
        "cost": sum(costs) if costs else None,
    }
    return [*rows, total]


def _first(exc: InvalidInput) -> str:
    return sentence(exc.errors[0].message) if exc.errors else sentence(str(exc))
