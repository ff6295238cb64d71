"""The Sources page (`/sources`): how to send signals to each ingest endpoint, what each source
has sent, and the quarantine of refused input, where an owner replays an item once its source
or mapping is fixed (`POST /sources/quarantine/{id}/replay`).

A replay from htmx gets the item back as a fragment showing the outcome; a plain form post is
redirected to the page, where the item shows the same outcome (it is in the audit trail).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import yaml
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opsloop.core.durations import format_duration
from opsloop.core.errors import Conflict, NotFound
from opsloop.service import OpsLoop, StoredSource
from opsloop.web.deps import ops
from opsloop.web.ids import page_id
from opsloop.web.pages.admin_common import TIME_HELPERS, is_htmx, sentence
from opsloop.web.pages.source_kinds import SOURCE_KINDS
from opsloop.web.pages.ui import PageOwner, PageReader, page_router, render

if TYPE_CHECKING:
    from opsloop.service import ReplayableItem

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
        service.ingest.replay_quarantined(page_id(item_id, "quarantined item"), actor=who.actor)
    except NotFound as exc:
        return _page(request, service, True, "all", error=sentence(str(exc)), status_code=404)
    except Conflict as exc:
        error = sentence(str(exc))
    if not is_htmx(request):
        if error:
            return _page(request, service, True, "all", error=error, status_code=409)
        return RedirectResponse(f"{SOURCES}?quarantine=all#item-{item_id}", status_code=303)
    item = _shown(service.ingest.quarantine_item(item_id))
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
    items = service.ingest.quarantine_items(status=None if shown == "all" else shown, limit=50)
    declared = [
        {
            "source": source,
            "where": _where(source, base),
            "quality": service.ingest.source_quality(source.name, top=0),
        }
        for source in service.ingest.list_sources()
    ]
    context: dict[str, Any] = {
        "declared": declared,
        "kinds": kinds,
        "anchors": anchors,
        "activity": service.ingest.source_activity(),
        "items": [_shown(item) for item in items],
        "counts": service.ingest.quarantine_counts(),
        "shown": shown,
        "filters": FILTERS,
        "may_replay": may_replay,
        "error": error,
        **TIME_HELPERS,
    }
    return render(request, "sources.html", context, status_code=status_code, active=SOURCES)


@router.get("/sources/{name}", summary="One declared source: quality, runs, how to connect")
def source_page(request: Request, service: Service, who: PageReader, name: str) -> HTMLResponse:
    return _source_page(request, service, name, may_sync=who.may("admin"))


@router.post("/sources/{name}/sync", summary="Sync a pulled source now")
def sync_now(request: Request, service: Service, who: PageOwner, name: str) -> Response:
    message: str | None = None
    try:
        run = service.ingest.sync_source(name, mode="sync", actor=who.actor)
        message = f"Run {run.id} {run.status}: {run.rows_in} rows in, {run.events_stored} stored."
    except (Conflict, NotFound) as exc:
        message = sentence(str(exc))
    return _source_page(request, service, name, may_sync=True, message=message)


def _source_page(
    request: Request,
    service: OpsLoop,
    name: str,
    *,
    may_sync: bool,
    message: str | None = None,
) -> HTMLResponse:
    try:
        source = service.ingest.get_source(name)
    except NotFound:
        return render(
            request, "source_not_found.html", {"name": name}, status_code=404, active=SOURCES
        )
    base = str(request.base_url).rstrip("/")
    context: dict[str, Any] = {
        "source": source,
        "where": _where(source, base),
        "definition": yaml.safe_dump(source.spec.written(), sort_keys=False, allow_unicode=True),
        "quality": service.ingest.source_quality(name),
        "runs": service.ingest.source_runs(name, limit=20) if source.spec.pulled else [],
        "snippet": service.ingest.tracking_snippet(name, base)
        if source.spec.kind == "segment"
        else None,
        "may_sync": may_sync and source.spec.pulled,
        "protected": service.settings.protected_traits,
        "message": message,
        "duration": format_duration,
        **TIME_HELPERS,
    }
    return render(request, "source.html", context, active=SOURCES)


def _where(source: StoredSource, base: str) -> str:
    spec = source.spec
    if spec.kind == "webhook":
        return f"{base}/hooks/{spec.name}"
    if spec.kind == "segment":
        return f"{base}/v1/… (write key)"
    return f"{spec.kind}, every {format_duration(spec.interval)}"


def _shown(item: ReplayableItem) -> dict[str, Any]:
    body = item["body"]
    return {
        **item,
        "body_head": body[:SHOW_BYTES],
        "body_more": max(0, item["body_size"] - len(body[:SHOW_BYTES].encode())),
    }
