"""The Sources page (`/sources`): how to send signals to each ingest endpoint, what each source
has sent, and the quarantine of refused input, where an owner replays an item once its source
or mapping is fixed (`POST /sources/quarantine/{id}/replay`).

A replay from htmx gets the item back as a fragment showing the outcome; a plain form post is
redirected to the page, where the item shows the same outcome (it is in the audit trail).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opsloop.core.errors import Conflict, NotFound
from opsloop.service import OpsLoop
from opsloop.web.admin_common import TIME_HELPERS, is_htmx, sentence
from opsloop.web.deps import ops
from opsloop.web.source_kinds import SOURCE_KINDS
from opsloop.web.ui import PageOwner, PageReader, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

SOURCES = "/sources"
FILTERS = ("held", "replayed", "all")
SHOW_BYTES = 2000
"""How much of a quarantined body the page shows; the API has all that was kept."""


@router.get(SOURCES, summary="Ingest endpoints, what each source sent, and the quarantine")
def sources(
    request: Request, service: Service, who: PageReader, quarantine: str = "held"
) -> HTMLResponse:
    return _page(request, service, who.may("admin"), quarantine)


@router.post("/sources/quarantine/{item_id}/replay", summary="Replay a quarantined item")
def replay(request: Request, service: Service, who: PageOwner, item_id: int) -> Response:
    error: str | None = None
    try:
        service.replay_quarantined(item_id, actor=who.actor)
    except NotFound as exc:
        return _page(request, service, True, "all", error=sentence(str(exc)), status_code=404)
    except Conflict as exc:
        error = sentence(str(exc))
    if not is_htmx(request):
        if error:
            return _page(request, service, True, "all", error=error, status_code=409)
        return RedirectResponse(f"{SOURCES}?quarantine=all#item-{item_id}", status_code=303)
    item = _shown(service.quarantine_item(item_id))
    context = {"item": item, "may_replay": True, "error": error, **TIME_HELPERS}
    return render(request, "sources_item.html", context)


def _page(
    request: Request,
    service: OpsLoop,
    may_replay: bool,
    quarantine: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    shown = quarantine if quarantine in FILTERS else "held"
    base = str(request.base_url).rstrip("/")
    kinds = [(kind, kind.endpoints(service.settings, base)) for kind in SOURCE_KINDS]
    anchors = {
        endpoint.source: f"{kind.key}-{endpoint.source}"
        for kind, endpoints in kinds
        for endpoint in endpoints
        if endpoint.source
    }
    items = service.quarantine_items(status=None if shown == "all" else shown, limit=50)
    context: dict[str, Any] = {
        "kinds": kinds,
        "anchors": anchors,
        "activity": service.source_activity(),
        "items": [_shown(item) for item in items],
        "counts": service.quarantine_counts(),
        "shown": shown,
        "filters": FILTERS,
        "may_replay": may_replay,
        "error": error,
        **TIME_HELPERS,
    }
    return render(request, "sources.html", context, status_code=status_code, active=SOURCES)


def _shown(item: dict[str, Any]) -> dict[str, Any]:
    body: str = item["body"]
    return {
        **item,
        "body_head": body[:SHOW_BYTES],
        "body_more": max(0, item["body_size"] - len(body[:SHOW_BYTES].encode())),
    }
