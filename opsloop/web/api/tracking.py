"""Segment-compatible tracking: `POST /v1/{call}` (track, identify, page, screen, group, alias,
batch, and analytics.js's one-letter paths), its CORS preflight, and the `/t.js` snippet.

Answers follow Segment's: 200 `{"success": true}`, 400 for a refused body (too large, not JSON,
not a call), 401 for an unknown write key, with the error in `code` and `message` where
Segment's libraries read it. Every answer allows any origin, so websites can call it.
"""

from __future__ import annotations

import functools
import zlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.errors import InvalidInput, OpsLoopError, TooLarge
from opsloop.service import MAX_BATCH_BYTES, SNIPPET_PATH, OpsLoop
from opsloop.web.assets import STATIC
from opsloop.web.auth import PUBLIC
from opsloop.web.deps import ops
from opsloop.web.errors import error_body
from opsloop.web.request_bodies import Oversized, read_limited
from opsloop.web.responses import Json

router = APIRouter(tags=["tracking"])
Service = Annotated[OpsLoop, Depends(ops)]

CORS = {"Access-Control-Allow-Origin": "*"}
PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    # Listed, not `*`: a wildcard does not cover Authorization.
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}

CALL_DOC = """A tracking call as Segment's HTTP Tracking API takes it; `{call}` is `track`,
`identify`, `page`, `screen`, `group`, `alias` or `batch` (`{"batch": [...]}`, each call with
its `type`), or analytics.js's first letters (`t`, `i`, `p`, `s`, `g`, `a`, `b`).

The write key of a `segment` source is the HTTP basic-auth user (password empty), or
`writeKey` in the body. Limits: 32 KB a call, 500 KB and 2,500 calls a batch. A body may be
gzipped (`Content-Encoding: gzip`).

200 `{"success": true, "stored", "duplicates", "rejected"}`: stored (a repeated `messageId` is
stored once); `stored` and `duplicates` count events, and a `group` call with traits makes two
(the member's `group.joined`, the account's `group.updated`). In a batch, a refused call is
kept in quarantine and listed under `errors`. 400: refused and kept in
quarantine (`code`, `message` name the field). 401: unknown write key."""


@router.post(
    "/v1/{call}",
    summary="Send tracking calls (Segment-compatible)",
    description=CALL_DOC,
    # Public: each call proves its source with the source's write key.
    dependencies=[Depends(PUBLIC)],
)
async def post_call(call: str, request: Request, service: Service) -> Response:
    authorization = request.headers.get("authorization")
    try:
        body = await _body(request, service, call, authorization)
        tracked = await run_in_threadpool(
            service.ingest.track,
            call,
            body,
            authorization=authorization,
            content_type=request.headers.get("content-type"),
        )
    except OpsLoopError as exc:
        return _refused(exc)
    answer: dict[str, Any] = {
        "success": True,
        "stored": tracked.stored,
        "duplicates": tracked.duplicates,
        "rejected": tracked.rejected,
    }
    if tracked.errors:
        answer["errors"] = tracked.errors
    return Json(answer, headers=CORS)


@router.options(
    "/v1/{call}",
    summary="CORS preflight for tracking calls",
    description="Lets a web page on any origin send tracking calls with a JSON content type "
    "or an `Authorization` header.",
    status_code=204,
    dependencies=[Depends(PUBLIC)],
)
async def preflight(call: str) -> Response:
    return Response(status_code=204, headers=PREFLIGHT)


@router.get(
    SNIPPET_PATH,
    summary="The tracking snippet for websites",
    description="A small script that sends a page view on each load and offers "
    "`opsloop.track(name, properties)` and `opsloop.identify(userId, traits)`. Paste "
    '`<script src="https://<opsloop>/t.js" data-key="WRITE_KEY" async></script>` into your '
    "pages. It sends nothing when the browser asks not to be tracked.",
    response_class=Response,
    dependencies=[Depends(PUBLIC)],
)
async def snippet() -> Response:
    return Response(
        _snippet(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@functools.cache
def _snippet() -> bytes:
    return (STATIC / "t.js").read_bytes()


async def _body(request: Request, service: OpsLoop, call: str, authorization: str | None) -> bytes:
    try:
        raw = await read_limited(request, MAX_BATCH_BYTES)
    except Oversized as big:
        raise await run_in_threadpool(
            service.ingest.refuse_oversized_tracking,
            call,
            big.head,
            big.size,
            authorization=authorization,
        ) from None
    if request.headers.get("content-encoding", "").lower() == "gzip":
        return _gunzip(raw)
    return raw


def _gunzip(raw: bytes) -> bytes:
    """Segment's libraries may gzip a batch; the limits apply to it unzipped."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflate.decompress(raw, MAX_BATCH_BYTES + 1)
    except zlib.error:
        raise InvalidInput.single("body", "says Content-Encoding: gzip but is not gzip") from None
    if len(body) > MAX_BATCH_BYTES or inflate.unconsumed_tail:
        raise TooLarge.single(
            "body", f"is more than {MAX_BATCH_BYTES} bytes unzipped; the limit is 500 KB"
        )
    return body


def _refused(exc: OpsLoopError) -> Json:
    status, body = error_body(exc)
    if isinstance(exc, InvalidInput):
        status = 400  # Segment answers 400 for a body it refuses, too large ones included
    # Segment's libraries read `code` and `message`.
    return Json({"success": False, "code": body["error"], **body}, status_code=status, headers=CORS)
