"""The Actions page (`/actions`): the outbox by status (pending, retrying, dead-lettered …), each
action with its decision, kind, target, attempts, last error and next attempt. Reviewers and
owners retry a dead-lettered action (`POST /actions/{id}/retry`) or cancel one that has not
been delivered yet (`POST /actions/{id}/cancel`).

From htmx the row comes back updated (or with the error in it); a plain form post is
redirected back to the tab it came from, or shown the page with the error.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.action_views import ActionRow
from opsloop.core.errors import Conflict, NotFound
from opsloop.service import OpsLoop
from opsloop.web.deps import ops
from opsloop.web.ids import page_id
from opsloop.web.pages.admin_common import TIME_HELPERS, is_htmx, sentence, without_secrets
from opsloop.web.pages.ui import PageReader, PageReviewer, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

ACTIONS = "/actions"
PAGE_SIZE = 50
TABS: dict[str, tuple[str, str]] = {
    "pending": (
        "Pending",
        "Recorded and waiting for their first attempt: a running server delivers them within "
        "seconds.",
    ),
    "delivering": ("Delivering", "Being sent right now."),
    "retrying": (
        "Retrying",
        "The last attempt failed with an error worth retrying; OpsLoop tries again at the time "
        "shown, waiting longer after each failure.",
    ),
    "dead": (
        "Dead-lettered",
        "OpsLoop gave up on these: the error says why. Fix the cause (a setting, the receiving "
        "system), then retry.",
    ),
    "delivered": ("Delivered", "Done: the receiver accepted them."),
    "cancelled": (
        "Cancelled",
        "Stopped by a person, or held back by a guardrail. These never run.",
    ),
}
ALWAYS_SHOWN = ("pending", "retrying", "dead", "delivered")
"""Tabs shown even when empty; the others appear when they hold something."""


@router.get(ACTIONS, summary="The outbox: actions waiting, retrying, dead-lettered, delivered")
def actions(
    request: Request,
    service: Service,
    who: PageReader,
    status: str | None = None,
    before_id: int | None = None,
) -> HTMLResponse:
    if status is None:  # open where the work is: the first tab that has something
        status = first_busy_tab(service.deliver.count_actions())
    try:
        before = None if before_id is None else page_id(before_id, "action")
    except NotFound as exc:
        error = sentence(str(exc))
        return _page(
            request, service, who.may("review"), status, None, error=error, status_code=404
        )
    return _page(request, service, who.may("review"), status, before)


@router.post("/actions/{action_id}/retry", summary="One more attempt at a dead-lettered action")
async def retry(request: Request, service: Service, who: PageReviewer, action_id: int) -> Response:
    return await _change(request, service, action_id, service.deliver.retry_action, who.actor)


@router.post("/actions/{action_id}/cancel", summary="Stop an action that is not delivered yet")
async def cancel(request: Request, service: Service, who: PageReviewer, action_id: int) -> Response:
    return await _change(request, service, action_id, service.deliver.cancel_action, who.actor)


async def _change(
    request: Request, service: OpsLoop, action_id: int, change: Any, actor: str
) -> Response:
    tab = _tab(str((await request.form()).get("status", "pending")))
    error: str | None = None
    try:
        await run_in_threadpool(change, page_id(action_id, "action"), actor=actor)
    except NotFound as exc:
        return await run_in_threadpool(
            _page, request, service, True, tab, None, error=sentence(str(exc)), status_code=404
        )
    except Conflict as exc:
        error = sentence(str(exc))
    if is_htmx(request):
        action = await run_in_threadpool(service.deliver.get_action, action_id)
        context = {"action": _row(action), "may_act": True, "tab": tab, "error": error}
        return render(request, "actions_row.html", {**context, **TIME_HELPERS})
    if error:
        return await run_in_threadpool(
            _page, request, service, True, tab, None, error=error, status_code=409
        )
    return RedirectResponse(f"{ACTIONS}?status={tab}", status_code=303)


def _page(
    request: Request,
    service: OpsLoop,
    may_act: bool,
    status: str,
    before_id: int | None,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    tab = _tab(status)
    counts = service.deliver.count_actions()
    found = service.deliver.list_actions(status=tab, limit=PAGE_SIZE, before_id=before_id)
    tabs = [
        (name, label, counts.get(name, 0))
        for name, (label, _) in TABS.items()
        if name in ALWAYS_SHOWN or counts.get(name) or name == tab
    ]
    context = {
        "tabs": tabs,
        "tab": tab,
        "hint": TABS[tab][1],
        "actions": [_row(action) for action in found],
        "older": found[-1]["id"] if len(found) == PAGE_SIZE else None,
        "paged": before_id is not None,
        "total": sum(counts.values()),
        "may_act": may_act,
        "error": error,
        **TIME_HELPERS,
    }
    return render(request, "actions.html", context, status_code=status_code, active=ACTIONS)


FIRST_LOOK = ("dead", "retrying", "pending", "delivering", "delivered", "cancelled")
"""The order a person wants to see the outbox in: what failed, what is failing, what waits."""


def first_busy_tab(counts: dict[str, int]) -> str:
    return next((tab for tab in FIRST_LOOK if counts.get(tab)), "pending")


def _row(action: ActionRow) -> dict[str, Any]:
    return {**action, "target": target(action)}


def target(action: ActionRow) -> str:
    """Where an action goes, in a few words, without secrets (chat URLs hold theirs)."""
    request = action["request"]
    if "render_error" in request:
        return "(its template did not render)"
    kind = action["kind"]
    if kind == "email":
        return str(request.get("to") or "(no recipient)")
    if kind == "notify":
        if request.get("channel"):
            return f"chat channel {request['channel']}"
        if request.get("url"):
            return without_secrets(request["url"], keep_path=False)
        return "the default chat (OPSLOOP_NOTIFY_URL)"
    if kind == "update_traits":
        return f"traits of {request.get('subject')}"
    if kind == "task":
        assignee = request.get("assignee")
        return f"task “{request.get('title')}”" + (f" for {assignee}" if assignee else "")
    # webhook and the guarded kinds (refund, payment, discount, delete) go by webhook
    if request.get("endpoint"):
        return f"endpoint {request['endpoint']}"
    return without_secrets(request.get("url")) or "(no URL)"


def _tab(status: str) -> str:
    return status if status in TABS else "pending"
