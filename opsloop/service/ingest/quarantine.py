"""Sources: what each sender has sent, and the input refused from them (the quarantine), with
replay of a refused body once its source or mapping is fixed.

A replay runs the stored raw body through the same path as when it arrived (`POST /api/events`
for the source `api`, else `POST /hooks/{source}` with that source's current settings), so the
events are stored, decided on and linked as usual. The item is never deleted: on success it is
marked `replayed` and the audit trail names the events it became; on failure it stays `held`
and the audit trail keeps the new reason. Events without an idempotency key get
`quarantine:<item>:<n>`, so replaying the same item twice stores its events once.

What cannot be replayed, and why:
- a body refused for its signature: the signature headers are not kept, so it cannot be
  checked again (the sender must deliver it again);
- an oversized body: only its first bytes were kept;
- a row of a file (`opsloop ingest`): fix the file and import it again.
Replay does not check signatures: only bodies whose signature passed (or whose source takes
unsigned deliveries) were kept for a reason other than the signature. So a body is refused
again when its source now refuses unsigned deliveries (it was never checked), or when no
source of its name receives webhooks any more; and a body's `source` field must name the
source it was sent to, as on arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from opsloop.core.audit_entries import AuditEntry
from opsloop.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from opsloop.core.events import NewEvent
from opsloop.core.quarantine import QuarantineRow, readable
from opsloop.perception.ingest_bodies import events_from_body
from opsloop.service.context import Context
from opsloop.service.ingest import signals, sources, storing, tracking
from opsloop.service.ingest.views import ReplayableItem
from opsloop.store import audit
from opsloop.store import quarantine as quarantine_store
from opsloop.store import sources as source_store

REPLAYED = "input.replayed"
REPLAY_FAILED = "input.replay_failed"
QUARANTINED = "input.quarantined."


@dataclass(frozen=True, slots=True)
class TypeCount:
    type: str
    events: int
    last_received_at: datetime


@dataclass(frozen=True, slots=True)
class SourceActivity:
    source: str
    events: int
    last_received_at: datetime
    types: list[TypeCount]
    """Most events first."""


@dataclass(frozen=True, slots=True)
class Replayed:
    item_id: int
    ok: bool
    event_ids: list[int] = field(default_factory=list)
    created: int = 0
    """Events newly stored (the others were already stored: a repeat)."""
    reason: str | None = None
    """Why the body was refused again."""


def source_activity(ctx: Context) -> list[SourceActivity]:
    """Every source that has sent events, the most recently active first."""
    with ctx.db.read() as conn:
        rows = source_store.event_counts(conn)
    grouped: dict[str, list[TypeCount]] = {}
    for row in rows:
        grouped.setdefault(row["source"], []).append(
            TypeCount(row["type"], int(row["events"]), row["last_received_at"])
        )
    found = [
        SourceActivity(
            source=source,
            events=sum(t.events for t in types),
            last_received_at=max(t.last_received_at for t in types),
            types=sorted(types, key=lambda t: (-t.events, t.type)),
        )
        for source, types in grouped.items()
    ]
    return sorted(found, key=lambda s: s.last_received_at, reverse=True)


def list_quarantine(
    ctx: Context, *, status: str | None = None, limit: int = 50, before_id: int | None = None
) -> list[ReplayableItem]:
    """Quarantined items, newest first, each with `refused_as` (invalid, unauthorized,
    too_large), `cannot_replay` (why not, or None) and `replays` (each attempt: `at`, `actor`,
    `ok`, `event_ids`, `reason`)."""
    with ctx.db.read() as conn:
        items = quarantine_store.list_held(conn, status=status, limit=limit, before_id=before_id)
        trails = quarantine_store.trails(conn, [item["id"] for item in items])
    return [_view(item, trails[item["id"]]) for item in items]


def quarantine_counts(ctx: Context) -> dict[str, int]:
    """Items by status: `held`, `replayed`."""
    with ctx.db.read() as conn:
        return quarantine_store.count_by_status(conn)


def get_quarantined(ctx: Context, item_id: int) -> ReplayableItem:
    with ctx.db.read() as conn:
        item = quarantine_store.get(conn, item_id)
        if item is None:
            raise NotFound(f"no quarantined item {item_id}")
        trail = quarantine_store.trails(conn, [item_id])[item_id]
    return _view(item, trail)


def replay(ctx: Context, item_id: int, *, actor: str) -> Replayed:
    """Run a held item's body through its ingest path again. Raises NotFound, or Conflict when
    it is not held or cannot be replayed; a body refused again is a `Replayed` with `ok`
    False and the reason (recorded in the audit trail), not an exception."""
    item = get_quarantined(ctx, item_id)
    if item["status"] != "held":
        raise Conflict(f"quarantined item {item_id} is already {item['status']}")
    if item["cannot_replay"]:
        raise Conflict(f"quarantined item {item_id} cannot be replayed: {item['cannot_replay']}")
    raw: bytes = item["raw"]
    try:
        new = _parse(ctx, item["source"], raw, item["received_at"], item_id)
    except (InvalidInput, Unauthorized, NotFound) as exc:
        errors = (
            [{"field": e.field, "message": e.message} for e in exc.errors]
            if isinstance(exc, InvalidInput)
            else [{"field": "", "message": str(exc)}]
        )
        with ctx.db.transaction() as tx:
            audit.record(
                tx.conn,
                ctx.clock(),
                actor,
                REPLAY_FAILED,
                item_id,
                {"reason": str(exc)[:500], "errors": errors[:20]},
                object_type="quarantine",
            )
        return Replayed(item_id, ok=False, reason=str(exc))
    keyed = [
        e if e.idempotency_key else replace(e, idempotency_key=f"quarantine:{item_id}:{n}")
        for n, e in enumerate(new)
    ]
    accepted = storing.store_events(ctx, keyed)
    ids = [a.id for a in accepted]
    created = sum(1 for a in accepted if a.status == "created")
    with ctx.db.transaction() as tx:
        # Two owners replaying at once: the keys stored the events once; one marks the item.
        if quarantine_store.mark_replayed(tx.conn, item_id):
            audit.record(
                tx.conn,
                ctx.clock(),
                actor,
                REPLAYED,
                item_id,
                {"event_ids": ids, "created": created},
                object_type="quarantine",
            )
    return Replayed(item_id, ok=True, event_ids=ids, created=created)


def _parse(
    ctx: Context, source: str, body: bytes, received_at: datetime, item_id: int
) -> list[NewEvent]:
    # The original arrival time stands in for "now": a mapped body occurred when it arrived.
    declared = sources.find(ctx, source)
    if declared is not None:
        # Through the source's current mapping and the current contracts: the fix applies.
        spec = declared.spec
        if spec.kind == "webhook" and spec.verify == "none" and not spec.allow_unsigned:
            raise storing.unsigned_refused(
                source, "its body was never checked; set `verify` and a secret"
            )
        # A tracking call is read by the Segment parser; everything else by the mapping.
        mapper = (
            tracking.mapper_for(ctx, spec, received_at=received_at)
            if spec.kind == "segment"
            else None
        )
        return signals.events_of_body(
            ctx,
            spec,
            body,
            received_at=received_at,
            where=f"quarantined item {item_id}",
            mapper=mapper,
        )
    if source == "api":
        new, _ = events_from_body(
            body, source=source, received_at=received_at, max_batch=ctx.settings.max_batch_events
        )
        return new
    config = ctx.settings.sources.get(source)
    if config is not None and config.secret is None and not config.allow_unsigned:
        raise storing.unsigned_refused(source, "its body was never checked; set its secret")
    new, _ = storing.hook_events(ctx, source, body, {}, received_at=received_at, verify=False)
    return new


def _view(item: QuarantineRow, trail: list[AuditEntry]) -> ReplayableItem:
    raw = item["body"]
    kinds = [
        row["verb"][len(QUARANTINED) :] for row in trail if row["verb"].startswith(QUARANTINED)
    ]
    refused_as = kinds[0] if kinds else "invalid"
    return {
        **readable(item),
        "raw": raw,
        "refused_as": refused_as,
        "cannot_replay": _cannot_replay(item, refused_as, kept=len(raw)),
        "replays": [
            {
                "at": row["at"],
                "actor": row["actor"],
                "ok": row["verb"] == REPLAYED,
                "event_ids": row["detail"].get("event_ids", []),
                "reason": row["detail"].get("reason"),
            }
            for row in trail
            if row["verb"] in (REPLAYED, REPLAY_FAILED)
        ],
    }


def _cannot_replay(item: QuarantineRow, refused_as: str, *, kept: int) -> str | None:
    if item["file"]:
        return (
            f"it is line {item['line']} of the file {item['file']}: fix it there and import again"
        )
    if refused_as == "unauthorized":
        return (
            "it was refused for its signature, which cannot be checked again because the "
            "request's headers are not kept; ask the sender to deliver it again"
        )
    if refused_as == "too_large" or item["body_size"] > kept:
        return (
            f"only the first {kept:,} bytes of this {item['body_size']:,}-byte body were kept; "
            "send it again "
            "(raise OPSLOOP_MAX_BODY_BYTES first if it is legitimately this big)"
        )
    return None
