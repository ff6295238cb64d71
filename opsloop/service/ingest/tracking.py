"""Tracking calls from websites and apps, taken as Segment's HTTP Tracking API takes them.

A call proves its source with the source's write key (HTTP basic-auth user, or `writeKey` in
the body as browsers send it); Segment's libraries work unchanged against `/v1/...`. Each call
is checked (opsloop/perception/segment.py), its anonymous visitor is stitched to the user it
turned out to be (opsloop/store/identities.py), and its events (a group call with traits also
updates the group's profile) go through the source pipeline (`signals.take_records`):
contracts, stored once per messageId, counted, decided on.

A single call that is refused is refused as a whole (400, kept in quarantine). In a batch, a
bad call is kept in quarantine and the rest are stored: refusing the batch would lose the good
calls, since Segment's libraries do not send a refused batch again.
"""

from __future__ import annotations

import base64
import binascii
import html
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from opsloop.core.errors import InvalidInput, TooLarge, Unauthorized
from opsloop.core.events import NewEvent
from opsloop.core.sources import SegmentConfig, SourceSpec
from opsloop.perception import segment
from opsloop.perception.big_integers import refuse_beyond_range
from opsloop.perception.ingest_bodies import parse_json
from opsloop.perception.records import Record, Rejected
from opsloop.service.context import Context
from opsloop.service.ingest import signals
from opsloop.service.ingest.signals import Mapper
from opsloop.service.ingest.sources import StoredSource, by_write_key, get
from opsloop.store import events as event_store
from opsloop.store import identities

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = segment.MAX_BATCH_BYTES
"""The largest request body a tracking call may have (unzipped)."""

SNIPPET_PATH = "/t.js"


@dataclass(frozen=True, slots=True)
class Tracked:
    """What a tracking request became."""

    source: str
    calls: int
    stored: int
    duplicates: int
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Refused calls of a batch: `where` (`batch[3]`), `reason`, `quarantine_id`."""


def receive(
    ctx: Context,
    path: str,
    body: bytes,
    *,
    authorization: str | None = None,
    content_type: str | None = None,
) -> Tracked:
    """Take one request to `/v1/<path>`. Raises Unauthorized for a write key no enabled segment
    source has, InvalidInput (kept in quarantine) for a body that is not a call or batch, or
    for a single call that is refused."""
    now = ctx.clock()
    call = segment.endpoint(path)
    key = basic_user(authorization)
    data: Any = None
    if key is None:
        # The key is in the body; malformed JSON cannot name a source. An integer beyond 64 bits
        # is refused below, once the key has named the source that keeps the refused body.
        data = parse_json(body, exact=False)
        key = data.get("writeKey") if isinstance(data, dict) else None
    source = _source(ctx, key)
    spec = source.spec
    try:
        if data is None:
            data = parse_json(body)
        else:
            refuse_beyond_range(body, data=data)
        items = segment.request_items(data, path)
    except InvalidInput as exc:
        _hold_request(ctx, spec, body, data, exc)
        raise
    parsed: dict[str, segment.Call | InvalidInput] = {}
    for where, item in items:
        try:
            parsed[where] = segment.read_call(item, received_at=now)
        except InvalidInput as exc:
            parsed[where] = exc
    config = spec.segment or SegmentConfig()
    calls = [found for found in parsed.values() if isinstance(found, segment.Call)]
    known = stitch(ctx, spec, calls, config, at=now)

    def events(record: Record) -> list[NewEvent]:
        found = parsed[record.where]
        if isinstance(found, InvalidInput):
            raise found
        return segment.events_of(
            found,
            source=spec.name,
            config=config,
            received_at=now,
            resolve=lambda subject: known.get(subject, subject),
        )

    records = [Record(data=item, where=where) for where, item in items]
    taken = signals.take_records(
        ctx, spec, records, mapper=events, received_at=now, whole=call != "batch"
    )
    return Tracked(
        source=spec.name,
        calls=len(records),
        stored=taken.stored,
        duplicates=taken.duplicates,
        rejected=taken.rejected,
        errors=[
            {"where": e.where, "reason": e.reason, "quarantine_id": e.quarantine_id}
            for e in taken.errors
        ],
    )


def stitch(
    ctx: Context,
    spec: SourceSpec,
    calls: list[segment.Call],
    config: SegmentConfig,
    *,
    at: datetime,
) -> dict[str, str]:
    """Link the visitors these calls identify to their users, and return visitor → user for
    every visitor the calls mention that is linked (one indexed read; a write only for links
    not made before).

    Links are committed before the calls' events are stored, so a playbook deciding on an
    identify call already sees the visitor's earlier page views as the user's.

    A tracking source is public (its write key ships in web pages), so it may not make a
    subject a trusted source gave traits to (a customer from Stripe, a lead from the CRM) into
    an alias of another: an alias call naming someone else's id would otherwise move that
    person's visitors, and what they do next, to the sender's profile
    (docs/sources.md#how-identity-merging-is-protected)."""
    proposed = [pair for call in calls for pair in segment.links_of(call, config)]
    visitors = [segment.subject_of(call, config) for call in calls if call.user_id is None]
    with ctx.db.read() as conn:
        known = identities.resolve(conn, [*visitors, *(alias for alias, _ in proposed)])
        fresh = [alias for alias, _ in proposed if alias not in known]
        guarded = event_store.trusted_traits(conn, fresh) if spec.public and fresh else {}
    new = []
    for alias, subject in proposed:
        if alias in known:
            continue
        if alias in guarded:
            log.warning(
                "did not link %s to %s: %s is public and a trusted source (%s) knows %s",
                alias,
                subject,
                spec.name,
                ", ".join(sorted(set(guarded[alias].values()))),
                alias,
                extra={"subject": alias, "source": spec.name, "linked_to": subject},
            )
            continue
        new.append((alias, subject))
    if new:
        with ctx.db.transaction() as tx:
            for alias, subject in new:
                if alias not in known:
                    known[alias] = identities.link(tx.conn, alias, subject, source=spec.name, at=at)
    return known


def refuse_oversized(
    ctx: Context, path: str, head: bytes, size: int | None, *, authorization: str | None = None
) -> TooLarge:
    """The error for a body over Segment's limit (500 KB a batch, 32 KB a call); its start is
    kept in quarantine when the basic-auth write key names the source."""
    stated = f"{size} bytes" if size is not None else "more than that"
    error = TooLarge.single(
        "body",
        f"is {stated}; a tracking request may be at most {segment.MAX_BATCH_BYTES} bytes "
        f"(500 KB a batch, 32 KB a call)",
    )
    source = by_write_key(ctx, basic_user(authorization) or "")
    if source is not None:
        held = signals.hold_rejected(
            ctx, source.name, [Rejected(where="", reason=str(error), raw=head)]
        )
        error.quarantine_id = held[0]
    return error


def mapper_for(ctx: Context, spec: SourceSpec, *, received_at: datetime) -> Mapper:
    """Events of a kept call (a record whose data is one call), for replaying quarantine."""
    config = spec.segment or SegmentConfig()

    def events(record: Record) -> list[NewEvent]:
        call = segment.read_call(record.data, received_at=received_at)
        known = stitch(ctx, spec, [call], config, at=received_at)
        return segment.events_of(
            call,
            source=spec.name,
            config=config,
            received_at=received_at,
            resolve=lambda subject: known.get(subject, subject),
        )

    return events


def install_snippet(base_url: str, write_key: str = "WRITE_KEY") -> str:
    """The tag to paste into a website's pages: loads /t.js from this OpsLoop, which sends a
    page view on each load and offers `opsloop.track(...)` and `opsloop.identify(...)`."""
    src = base_url.rstrip("/") + SNIPPET_PATH
    return f'<script src="{html.escape(src)}" data-key="{html.escape(write_key)}" async></script>'


def snippet_for(ctx: Context, name: str, base_url: str) -> str:
    """The install text for a segment source's page. The write key stays a placeholder: like
    every secret it is shown only when it is set (`opsloop source add --secret-file`)."""
    source = get(ctx, name)
    if source.spec.kind != "segment":
        raise InvalidInput.single("kind", f"source {name!r} is a {source.spec.kind} source")
    return install_snippet(base_url)


def basic_user(authorization: str | None) -> str | None:
    """The user of an HTTP basic `Authorization` header (Segment's write key), or None."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def _source(ctx: Context, key: Any) -> StoredSource:
    source = by_write_key(ctx, key) if isinstance(key, str) and key else None
    if source is None:
        # Not kept in quarantine: without a known key the call belongs to no source, and
        # anybody can reach this endpoint.
        raise Unauthorized(
            "unknown write key: send an enabled segment source's write key as the HTTP "
            "basic-auth user, or as `writeKey` in the body"
        )
    return source


def _hold_request(
    ctx: Context, spec: SourceSpec, body: bytes, data: Any, error: InvalidInput
) -> None:
    """Keep a refused request, without its write key, and count it in the quality report."""
    if isinstance(data, dict) and "writeKey" in data:
        body = orjson.dumps({k: v for k, v in data.items() if k != "writeKey"})
    held = signals.hold_rejected(ctx, spec.name, [Rejected(where="", reason=str(error), raw=body)])
    error.quarantine_id = held[0]
