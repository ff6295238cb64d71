"""The model page of a playbook (`/playbooks/{name}/models`): its trained models' versions, and
for the champion and the challenger what a careful analyst would say about them — the
held-out score with its 95% interval, whether it shows skill (and so why it is champion or
challenger), the notes in words, and the walk-forward figures beside the single hold-out.
Owners train from here (`POST /playbooks/{name}/models/train`), as `opsloop train` does."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.errors import Conflict, NotFound
from opsloop.service import OpsLoop
from opsloop.web.deps import ops
from opsloop.web.pages.ui import PageOwner, PageReader, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

ACTIVE = "/playbooks"
EVALUATIONS = {
    "auto": "hold-out, and walk-forward when the history spans more than three months",
    "walk-forward": "hold-out and walk-forward",
    "holdout": "hold-out only",
}


@router.get("/playbooks/{name}/models", summary="A playbook's models: versions, skill, notes")
def models_page(
    request: Request,
    name: str,
    service: Service,
    who: PageReader,
    trained: str | None = None,
) -> HTMLResponse:
    return _page(request, service, who.may("admin"), name, trained=trained)


def _page(
    request: Request,
    service: OpsLoop,
    may_train: bool,
    name: str,
    *,
    trained: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        listing: Any = service.learn.list_models(name)
    except NotFound:
        return render(
            request, "playbook_not_found.html", {"name": name}, status_code=404, active=ACTIVE
        )
    except Conflict as exc:
        listing, error = None, error or str(exc)
    models = []
    if listing is not None:
        text = listing.get("text") or (listing if listing.get("kind") == "text" else None)
        if text is not None:
            models.append(_model(text, "text"))
        if listing.get("kind") != "text":
            models.append(_model(listing, "tabular"))
    context = {
        "name": name,
        "models": models,
        "may_train": may_train,
        "evaluations": EVALUATIONS,
        "trained": trained,
        "error": error,
    }
    return render(request, "playbook_models.html", context, active=ACTIVE, status_code=status_code)


def _model(listing: dict[str, Any], kind: str) -> dict[str, Any]:
    versions = listing["versions"]
    return {
        "kind": kind,
        "model": listing["model"],
        "as": listing["as"],
        "predicts": listing.get("predicts"),
        "versions": versions,
        "serving": [v for v in versions if v["status"] in ("champion", "challenger")],
    }


@router.post("/playbooks/{name}/models/train", summary="Train the playbook's models now")
async def train(request: Request, name: str, service: Service, who: PageOwner) -> Response:
    form = await request.form()
    evaluate = str(form.get("evaluate") or "auto")
    if evaluate not in EVALUATIONS:
        evaluate = "auto"
    try:
        result = await run_in_threadpool(
            service.learn.train,
            name,
            actor=who.actor,
            force=form.get("force") == "on",
            evaluate=evaluate,  # type: ignore[arg-type]
        )
    except NotFound:
        return render(
            request, "playbook_not_found.html", {"name": name}, status_code=404, active=ACTIVE
        )
    except Conflict as exc:
        return _page(request, service, True, name, error=str(exc), status_code=409)
    messages = [result["message"], *(one["message"] for one in result.get("also", []))]
    query = urlencode({"trained": " ".join(messages)})
    return RedirectResponse(f"/playbooks/{quote(name)}/models?{query}", status_code=303)
