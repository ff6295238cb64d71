"""The Sequences page (`/sequences`): who is at which step of which sequence, the next step and
when it is due, and why ended ones stopped. Reviewers and owners stop one sequence
(`POST /sequences/{id}/stop`) or every open one (`POST /sequences/stop`)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.access import Principal
from opsloop.core.errors import NotFound
from opsloop.service import OpsLoop
from opsloop.web.deps import ops
from opsloop.web.ids import page_id
from opsloop.web.pages.admin_common import TIME_HELPERS, ago, sentence
from opsloop.web.pages.ui import PageReader, PageReviewer, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

SEQUENCES = "/sequences"
TABS = {
    "open": ("Running", "Active or waiting: the next step and when it is due."),
    "completed": ("Completed", "Every step ran."),
    "stopped": ("Stopped", "Ended early: the subject acted, or a person stopped it."),
    "skipped": ("Skipped", "Not started: the subject was already in another sequence."),
}


@router.get(SEQUENCES, summary="Sequences: who is at which step, and what comes next")
def sequences_page(
    request: Request,
    service: Service,
    who: PageReader,
    status: str = "open",
    playbook: str | None = None,
    stopped: int | None = None,
) -> HTMLResponse:
    return _page(request, service, who, status, playbook, stopped)


def _page(
    request: Request,
    service: OpsLoop,
    who: Principal,
    status: str,
    playbook: str | None,
    stopped: int | None,
    *,
    error: str | None = None,
) -> HTMLResponse:
    tab = status if status in TABS else "open"
    counts = service.deliver.sequence_counts(playbook)
    counts["open"] = counts.get("active", 0) + counts.get("waiting", 0)
    context = {
        "tabs": [(name, label, counts.get(name, 0)) for name, (label, _) in TABS.items()],
        "tab": tab,
        "hint": TABS[tab][1],
        "playbook": playbook,
        "sequences": service.deliver.list_sequences(status=tab, playbook=playbook, limit=200),
        "may_act": who.may("review"),
        "stopped": stopped,
        **TIME_HELPERS,
        # Due times are read against the service's clock, the one the steps run by.
        "ago": partial(ago, now=service.now()),
    }
    status_code = 200 if error is None else 404
    context["error"] = error
    return render(request, "sequences.html", context, active=SEQUENCES, status_code=status_code)


@router.post("/sequences/{sequence_id}/stop", summary="Stop one open sequence")
async def stop_one(
    request: Request, service: Service, who: PageReviewer, sequence_id: int
) -> Response:
    form = await request.form()
    reason = str(form.get("reason") or "stopped from the Sequences page")
    try:
        known = page_id(sequence_id, "sequence")
    except NotFound as exc:
        return await run_in_threadpool(
            _page, request, service, who, "open", None, None, error=sentence(str(exc))
        )
    done = await run_in_threadpool(
        service.deliver.stop_sequence, known, who=who.actor, reason=reason[:500]
    )
    return RedirectResponse(f"{SEQUENCES}?stopped={int(done)}", status_code=303)


@router.post("/sequences/stop", summary="Stop every open sequence (of one playbook)")
async def stop_all(request: Request, service: Service, who: PageReviewer) -> Response:
    form = await request.form()
    playbook = str(form.get("playbook") or "") or None
    subject = str(form.get("subject") or "").strip()[:300] or None
    reason = str(form.get("reason") or "stopped from the Sequences page")
    done = await run_in_threadpool(
        service.deliver.stop_sequences,
        who=who.actor,
        reason=reason[:500],
        playbook=playbook,
        subject=subject,
    )
    return RedirectResponse(f"{SEQUENCES}?stopped={done}", status_code=303)
