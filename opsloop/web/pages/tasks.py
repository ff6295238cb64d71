"""The Tasks page (`/tasks`): the follow-up tasks decisions created — open, mine, overdue, done —
each linked to its decision. Reviewers and owners mark one done (`POST /tasks/{id}/done`) or
give it to someone else (`POST /tasks/{id}/assign`); the time from created to done is the
dashboard's task completion time."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

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
NEXT = re.compile(r"/decisions/\d{1,18}|/inbox")
"""Where a change made from another page may send the browser back (never another site)."""


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
    form = await request.form()
    change = partial(service.deliver.complete_task, by=who.actor)
    return await _change(request, service, who, form, task_id, change, "done")


@router.post("/tasks/{task_id}/assign", summary="Give an open task to someone else")
async def assign(request: Request, service: Service, who: PageReviewer, task_id: int) -> Response:
    form = await request.form()
    assignee = str(form.get("assignee") or "")
    change = partial(service.deliver.reassign_task, assignee=assignee, by=who.actor)
    return await _change(request, service, who, form, task_id, change, "assigned")


async def _change(
    request: Request,
    service: OpsLoop,
    who: Principal,
    form: FormData,
    task_id: int,
    change: Callable[[int], object],
    changed: str,
) -> Response:
    """Apply `change` to the task; back to where it came from (the tab, a decision's page, the
    inbox), or the tab with the error."""
    tab = _tab(str(form.get("status", "open")))
    try:
        await run_in_threadpool(change, page_id(task_id, "task"))
    except (NotFound, Conflict) as exc:
        code = 404 if isinstance(exc, NotFound) else 409
        page = partial(_page, error=sentence(str(exc)), status_code=code)
        return await run_in_threadpool(page, request, service, who, tab)
    back = str(form.get("next") or "")
    if NEXT.fullmatch(back):
        return RedirectResponse(back, status_code=303)
    return RedirectResponse(f"{TASKS}?status={tab}&changed={changed}", status_code=303)


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
