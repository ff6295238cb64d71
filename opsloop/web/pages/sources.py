"""The Sources page (`/sources`): how to send signals to each ingest endpoint, what each source
has sent, and the quarantine of refused input, where an owner replays an item once its source
or mapping is fixed (`POST /sources/quarantine/{id}/replay`). Each declared source has a page
(`/sources/{name}`): how it connects, with a command that sends it a signed sample; its
quality and runs; for owners, Sync now (pulled sources) or Send a test delivery (webhooks),
and, once, the secret the form just set (opsloop/web/pages/secret_once.py). Adding and editing
sources is in opsloop/web/pages/source_setup.py.

A replay from htmx gets the item back as a fragment showing the outcome; a plain form post is
redirected to the page, where the item shows the same outcome (it is in the audit trail). A
test delivery from htmx gets its outcome as a fragment; a plain post gets the page with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import yaml
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.durations import format_duration
from opsloop.core.errors import Conflict, InvalidInput, NotFound
from opsloop.service import OpsLoop, StoredSource, TestDelivery
from opsloop.web.deps import ops
from opsloop.web.ids import page_id
from opsloop.web.pages import secret_once
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
        "may_add": may_replay,
        "error": error,
        **TIME_HELPERS,
    }
    return render(request, "sources.html", context, status_code=status_code, active=SOURCES)


@router.get("/sources/{name}", summary="One declared source: quality, runs, how to connect")
def source_page(
    request: Request, service: Service, who: PageReader, name: str, done: str | None = None
) -> HTMLResponse:
    owner = who.may("admin")
    # The secret the form just set, shown to the owner who set it, this once.
    revealed = secret_once.take(request) if owner else None
    answer = _source_page(
        request,
        service,
        name,
        owner=owner,
        notice=DONE.get(done or ""),
        revealed=revealed,
    )
    if secret_once.COOKIE in request.cookies:
        secret_once.forget(answer, request, f"/sources/{name}")
    return answer


DONE = {"added": "The source is added.", "saved": "Saved."}
"""What `?done=` after the form says on the source's page."""


@router.post("/sources/{name}/sync", summary="Sync a pulled source now")
def sync_now(request: Request, service: Service, who: PageOwner, name: str) -> Response:
    message: str | None = None
    try:
        run = service.ingest.sync_source(name, mode="sync", actor=who.actor)
        message = f"Run {run.id} {run.status}: {run.rows_in} rows in, {run.events_stored} stored."
    except (Conflict, NotFound) as exc:
        message = sentence(str(exc))
    return _source_page(request, service, name, owner=True, message=message)


@router.post("/sources/{name}/test", summary="Send a webhook source a signed test delivery")
async def test_delivery(request: Request, service: Service, who: PageOwner, name: str) -> Response:
    form = await request.form()
    body = str(form.get("body") or "").replace("\r\n", "\n").strip() or None
    if body == str(form.get("sample") or "").strip():
        body = None  # the sample as shown: a fresh one, so a second test is no repeat
    secret = str(form.get("secret") or "").strip() or None
    result: TestDelivery | None = None
    problem: str | None = None
    try:
        result = await run_in_threadpool(
            service.ingest.test_delivery,
            name,
            base_url=_base(request, service),
            actor=who.actor,
            body=body,
            secret=secret,
        )
    except NotFound:
        return _source_page(request, service, name, owner=True)
    except InvalidInput as exc:
        problem = sentence("; ".join(error.message for error in exc.errors))
    status = 422 if problem else 200
    if is_htmx(request):
        context = {"test": result, "test_problem": problem}
        return render(request, "source_test_result.html", context, status_code=status)
    return _source_page(
        request,
        service,
        name,
        owner=True,
        test=result,
        test_problem=problem,
        test_body=body,
        status_code=status,
    )


def _source_page(
    request: Request,
    service: OpsLoop,
    name: str,
    *,
    owner: bool,
    message: str | None = None,
    notice: str | None = None,
    revealed: str | None = None,
    test: TestDelivery | None = None,
    test_problem: str | None = None,
    test_body: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        source = service.ingest.get_source(name)
    except NotFound:
        return render(
            request, "source_not_found.html", {"name": name}, status_code=404, active=SOURCES
        )
    base = _base(request, service)
    spec = source.spec
    sends = spec.kind == "webhook"
    context: dict[str, Any] = {
        "source": source,
        "where": _where(source, base),
        "may_edit": owner,
        "revealed": revealed,
        "command": service.ingest.delivery_command(name, base, secret=revealed),
        "sample": (test_body or service.ingest.sample_delivery(name)) if sends and owner else None,
        "test": test,
        "test_problem": test_problem,
        "definition": yaml.safe_dump(source.spec.written(), sort_keys=False, allow_unicode=True),
        "quality": service.ingest.source_quality(name),
        "runs": service.ingest.source_runs(name, limit=20) if source.spec.pulled else [],
        "snippet": service.ingest.tracking_snippet(name, base)
        if source.spec.kind == "segment"
        else None,
        "may_sync": owner and source.spec.pulled,
        "protected": service.settings.protected_traits,
        "message": message,
        "notice": notice,
        "duration": format_duration,
        **TIME_HELPERS,
    }
    return render(request, "source.html", context, status_code=status_code, active=SOURCES)


def _base(request: Request, service: OpsLoop) -> str:
    """OpsLoop's address as senders reach it: the public URL when one is set, else the one
    this browser used."""
    return (service.settings.public_url or str(request.base_url)).rstrip("/")


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
