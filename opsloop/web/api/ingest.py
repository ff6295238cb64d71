"""Ingest: `POST /api/events` and `POST /hooks/{source}`. A 2xx means the events are committed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from opsloop.service import EventDecisions, Ingested, OpsLoop
from opsloop.web.auth import PUBLIC, REVIEW
from opsloop.web.deps import ops
from opsloop.web.request_bodies import Oversized, read_limited
from opsloop.web.responses import Json

router = APIRouter(tags=["ingest"])

PATH = "/api/events"
"""Also answered by opsloop/web/fast_ingest.py, with this module's parts, for token senders."""
DEFAULT_WAIT = 5.0
"""Seconds `?wait=decision` waits for decisions when no `timeout` is given."""

INGEST_DOC = """Send one event, a list of events, or `{"events": [...]}` (up to 1,000).

An event: `type` (e.g. `lead.created`), `subject` (`kind:key`, e.g. `lead:42`), optional
`occurred_at` (ISO 8601; without a zone it is UTC; default now), `payload` (object), `traits`
(object merged into the subject's profile; null removes a trait) and `idempotency_key` (the same
key from the same source is stored once). Events sent here are stored in the source `api`; a
`source` field other than `api` is refused (send into another source at `/hooks/<name>` with
its signature).

201: stored (`status: created`); 200: every event was already stored (`status: duplicate`, with
the first event's id). 422: invalid, nothing stored, the body is kept in quarantine. 413: too big.
"""


@router.post(
    PATH,
    summary="Ingest events",
    description=INGEST_DOC,
    status_code=201,
    dependencies=[Depends(REVIEW)],
)
async def post_events(
    request: Request,
    service: Annotated[OpsLoop, Depends(ops)],
    wait: Annotated[
        Literal["decision"] | None,
        Query(
            description="`decision`: answer with each event's decisions (`decisions`), waiting "
            "up to `timeout` seconds for playbooks that ask the language model; those still "
            "deciding then are listed in `pending`."
        ),
    ] = None,
    timeout: Annotated[
        float, Query(gt=0, le=30, description="With `wait`: the longest wait, in seconds.")
    ] = DEFAULT_WAIT,
) -> Json:
    body = await read_body(request, service, "api")
    accepted = await service.ingest.body_async(
        body, source="api", content_type=request.headers.get("content-type")
    )
    if wait is None:
        return answer(accepted)
    decided = await service.decide.await_decisions(
        [a.id for a in accepted.accepted], timeout=timeout
    )
    return answer(accepted, decided)


@router.post(
    "/hooks/{source}",
    summary="Receive a webhook",
    description="A webhook from a declared source (`opsloop source add`): the delivery must "
    "carry the signature the source's `verify` names (Stripe-Signature, Standard Webhooks, "
    "Shopify, Calendly, HubSpot, or a generic HMAC-SHA256 header, over `timestamp.body` by "
    "default), and the source's mapping turns the body into events; a body no mapping rule "
    "wants is acknowledged as `ignored`. A redelivery is stored once. A source with `verify: "
    "none` refuses every delivery (401) unless it says `allow_unsigned: true`. Sources "
    "configured in settings (`OPSLOOP_SOURCES`) follow the same rules (docs/configuration.md). "
    "Any other name answers 404 and nothing is kept.",
    status_code=201,
    # Public: each source proves itself with its own signature secret; an unknown name is 404.
    dependencies=[Depends(PUBLIC)],
)
async def post_hook(
    request: Request,
    service: Annotated[OpsLoop, Depends(ops)],
    source: Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-.]{1,100}$")],
) -> Json:
    body = await read_body(request, service, source, hook=True)
    headers = dict(request.headers)
    received = await run_in_threadpool(
        service.ingest.receive_hook,
        source,
        body,
        headers,
        content_type=request.headers.get("content-type"),
        url=str(request.url),
    )
    if received.ignored is not None:
        # Acknowledged so the sender stops retrying; nothing in it is wanted (docs/sources.md).
        return Json({"status": "ignored", "reason": received.ignored}, status_code=200)
    return answer(received.ingested)


async def read_body(
    request: Request, service: OpsLoop, source: str, *, hook: bool = False
) -> bytes:
    try:
        return await read_limited(request, service.settings.max_body_bytes)
    except Oversized as big:
        raise await run_in_threadpool(
            service.ingest.refuse_oversized_hook if hook else service.ingest.refuse_oversized,
            source,
            big.head,
            big.size,
            request.headers.get("content-type"),
        ) from None


def answer(ingested: Ingested, decided: dict[int, EventDecisions] | None = None) -> Json:
    accepted = ingested.accepted
    created = sum(1 for a in accepted if a.status == "created")
    status = 201 if created else 200
    events = [{"id": a.id, "status": a.status, **(decided or {}).get(a.id, {})} for a in accepted]
    if not ingested.batch:
        return Json(events[0], status_code=status)
    body: dict[str, Any] = {
        "accepted": len(accepted),
        "created": created,
        "duplicates": len(accepted) - created,
        "events": events,
    }
    return Json(body, status_code=status)
