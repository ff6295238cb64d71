"""The playbook template gallery (owners): every built-in playbook with what it needs and
whether it is installed; one template in plain words, backtested on the business's own history
before anything is installed; and installing it in `recommend` mode.

The addresses start with `/playbooks/_templates`: a playbook name cannot start with `_`, so no
playbook's page is hidden behind them. This router is served before the playbooks pages' own
(opsloop/web/app.py), whose `/playbooks/{name}` would otherwise take `_templates` for a name.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.backtest_reports import BacktestRun
from opsloop.core.errors import Conflict, InvalidInput, NotFound, PlaybookInvalid
from opsloop.core.playbooks import parse_playbook
from opsloop.service import OpsLoop, TemplateDetail
from opsloop.web.deps import ops
from opsloop.web.pages.admin_common import sentence
from opsloop.web.pages.playbook_outline import MODE_WORDS, outline
from opsloop.web.pages.playbooks import DEFAULT_PERIOD, PERIODS, choice_chart
from opsloop.web.pages.ui import PageOwner, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

ACTIVE = "/playbooks"
GALLERY = "/playbooks/_templates"
SETTINGS_PARTS = {
    "llm": "/settings#llm",
    "email": "/settings#email",
    "delivery": "/settings#delivery",
}
"""Where the settings page shows each kind of need (TemplateNeed.setting)."""


@router.get(GALLERY, summary="Every built-in playbook to start from, with what it needs")
def gallery(request: Request, service: Service, who: PageOwner) -> HTMLResponse:
    context = {"templates": service.decide.list_templates(), "settings_parts": SETTINGS_PARTS}
    return render(request, "playbook_templates.html", context, active=ACTIVE)


@router.get(GALLERY + "/{name}", summary="One template in plain words, to backtest and install")
def template_detail(request: Request, name: str, service: Service, who: PageOwner) -> HTMLResponse:
    try:
        template = service.decide.get_template(name)
    except NotFound as exc:
        return _not_found(request, exc)
    return _detail(request, template)


@router.post(GALLERY + "/{name}/backtest", summary="Replay a template over the stored history")
async def backtest(request: Request, name: str, service: Service, who: PageOwner) -> HTMLResponse:
    form = await request.form()
    since = str(form.get("since") or DEFAULT_PERIOD)
    try:
        template = await run_in_threadpool(service.decide.get_template, name)
    except NotFound as exc:
        return _not_found(request, exc)

    def run() -> tuple[BacktestRun, dict[str, Any] | None]:
        report = service.learn.backtest_template(name, since=since, actor=who.actor)
        decided = any(choice["decisions"] for choice in report["choices"])
        return report, choice_chart(report["choices"]) if decided else None

    context: dict[str, Any] = {"report": None, "chart": None, "error": None}
    try:
        # Seconds of replaying: in a worker thread, so the event loop keeps serving others.
        context["report"], context["chart"] = await run_in_threadpool(run)
    except InvalidInput as exc:
        context["error"] = sentence(str(exc))
    context["period_words"] = dict(PERIODS).get(since, f"since {since}")
    context["since"] = since
    status = 200 if context["error"] is None else 422
    if request.headers.get("hx-request"):
        context["template"] = template
        return render(request, "playbook_template_backtest.html", context, status_code=status)
    return _detail(request, template, status_code=status, **context)


@router.post(GALLERY + "/{name}/install", summary="Install a template in recommend mode")
async def install(request: Request, name: str, service: Service, who: PageOwner) -> Response:
    htmx = request.headers.get("hx-request") == "true"
    try:
        applied = await run_in_threadpool(service.decide.install_template, name, actor=who.actor)
    except NotFound as exc:
        return _not_found(request, exc)
    except (Conflict, PlaybookInvalid) as exc:
        template = await run_in_threadpool(service.decide.get_template, name)
        status = 409 if isinstance(exc, Conflict) else 422
        refusal = {"refused": _refusal(exc), "refused_status": status}
        if htmx:
            context = {"template": template, **refusal}
            return render(request, "playbook_template_install.html", context, status_code=status)
        return _detail(request, template, status_code=status, **refusal)
    target = f"/playbooks/{applied.name}?installed=true"
    if htmx:
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _detail(
    request: Request, template: TemplateDetail, *, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    playbook, _ = parse_playbook(template["source"], f"{template['name']}.yaml")
    context = {
        "template": template,
        "playbook": playbook,
        "outline": outline(playbook),
        "mode_words": MODE_WORDS["recommend"],
        "settings_parts": SETTINGS_PARTS,
        "periods": PERIODS,
        "default_period": DEFAULT_PERIOD,
        **extra,
    }
    return render(
        request, "playbook_template.html", context, status_code=status_code, active=ACTIVE
    )


def _refusal(exc: Conflict | PlaybookInvalid) -> str:
    if isinstance(exc, PlaybookInvalid):
        # Only a missing language model makes a built-in playbook invalid here.
        return sentence("; ".join(problem.message for problem in exc.problems))
    return sentence(str(exc))


def _not_found(request: Request, exc: NotFound) -> HTMLResponse:
    context = {"message": sentence(str(exc))}
    return render(
        request, "playbook_template_missing.html", context, status_code=404, active=ACTIVE
    )
