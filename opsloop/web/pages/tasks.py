"""The Tasks page (`/tasks`): the follow-up tasks decisions created — open, mine, overdue, done —
each linked to its decision. Reviewers and owners mark one done (`POST /tasks/{id}/done`) or
give it to someone else (`POST /tasks/{id}/assign`); the time from created to done is the
dashboard's task completion time."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.access import Principal
from opsloop.core.errors import Conflict, NotFound
from opsloop.service import OpsLoop
from opsloop.web.deps import ops
from opsloop.web.ids import page_id
from opsloop.web.pages.admin_common import TIME_HELPERS, ago, sentence
from opsloop.web.pages.ui import PageReader, PageReviewer, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

TASKS = "/tasks"
TABS = {
    "open": ("Open", "Waiting for someone, newest first."),
    "mine": ("Mine", "Open tasks assigned to you (your email address)."),
    "overdue": ("Overdue", "Open tasks past their due time."),
    "done": ("Done", "Finished, with who closed them and when."),
}
PAGE_SIZE = 200


@router.get(TASKS, summary="Follow-up tasks: open, mine, overdue, done")
def tasks_page(
    request: Request,
    service: Service,
    who: PageReader,
    status: str = "open",
    changed: str | None = None,
) -> HTMLResponse:
    return _page(request, service, who, status, changed=changed)


@router.post("/tasks/{task_id}/done", summary="Mark a task done")
async def done(request: Request, service: Service, who: PageReviewer, task_id: int) -> Response:
    tab = _tab(str((await request.form()).get("status", "open")))
    try:
        await run_in_threadpool(
            service.deliver.complete_task, page_id(task_id, "task"), by=who.actor
        )
    except (NotFound, Conflict) as exc:
        code = 404 if isinstance(exc, NotFound) else 409
        return await run_in_threadpool(
            partial(_page, error=sentence(str(exc)), status_code=code),
            request,
            service,
            who,
            tab,
        )
    return RedirectResponse(f"{TASKS}?status={tab}&changed=done", status_code=303)


@router.post("/tasks/{task_id}/assign", summary="Give an open task to someone else")
async def assign(request: Request, service: Service, who: PageReviewer, task_id: int) -> Response:
    form = await request.form()
    tab = _tab(str(form.get("status", "open")))
    try:
        await run_in_threadpool(
            service.deliver.reassign_task,
            page_id(task_id, "task"),
            str(form.get("assignee") or ""),
            by=who.actor,
        )
    except (NotFound, Conflict) as exc:
        code = 404 if isinstance(exc, NotFound) else 409
        return await run_in_threadpool(
            partial(_page, error=sentence(str(exc)), status_code=code),
            request,
            service,
            who,
            tab,
        )
    return RedirectResponse(f"{TASKS}?status={tab}&changed=assigned", status_code=303)


def _page(
    request: Request,
    service: OpsLoop,
    who: Principal,
    status: str,
    *,
    changed: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    tab = _tab(status)
    by_tab: dict[str, dict[str, Any]] = {
        "open": {"status": "open"},
        "mine": {"status": "open", "assignee": who.name},
        "overdue": {"overdue": True},
        "done": {"status": "done"},
    }
    filters = by_tab[tab]
    found = service.deliver.list_tasks(limit=PAGE_SIZE, **filters)
    context = {
        "tabs": list(TABS.items()),
        "tab": tab,
        "hint": TABS[tab][1],
        "tasks": found,
        "now": service.now(),
        "may_act": who.may("review"),
        "changed": changed if changed in ("done", "assigned") else None,
        "error": error,
        **TIME_HELPERS,
        "ago": partial(ago, now=service.now()),  # due times against the service's clock
    }
    return render(request, "tasks.html", context, status_code=status_code, active=TASKS)


def _tab(status: str) -> str:
    return status if status in TABS else "open"
