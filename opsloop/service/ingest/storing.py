"""Ingest: validate signals, store events durably, and queue the decisions they trigger.

One transaction per call: the events, the entity updates, outcome links and the decide jobs
commit together, so a 2xx means all of it is on disk. Bad input is refused whole, with every
problem named, and its raw body is kept in quarantine.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy.exc import IntegrityError

from opsloop.core.errors import InvalidInput, NotFound, TooLarge, Unauthorized
from opsloop.core.events import Event, NewEvent, subject_kind
from opsloop.perception.ingest_bodies import delivery_id, events_from_body, map_hook_body
from opsloop.perception.signatures import verify_hmac_sha256, verify_hmac_timestamped
from opsloop.service.context import Context
from opsloop.service.decide import deciding
from opsloop.service.deliver import sequences
from opsloop.service.ingest import sources
from opsloop.settings import SourceSettings
from opsloop.store import audit, source_stats
from opsloop.store import events as event_store
from opsloop.store import outcomes as outcome_store
from opsloop.store import quarantine as quarantine_store
from opsloop.store.database import Tx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Accepted:
    id: int
    status: Literal["created", "duplicate"]


@dataclass(frozen=True, slots=True)
class Ingested:
    accepted: list[Accepted]
    batch: bool
    """The body was a list or `{"events": [...]}`, so the answer lists every event."""


def ingest_body(
    ctx: Context, body: bytes, *, source: str = "api", content_type: str | None = None
) -> Ingested:
    """`POST /api/events`: one event, a list, or `{"events": [...]}`."""
    new, batch = parse_body(ctx, body, source=source, content_type=content_type)
    return Ingested(store_events(ctx, new), batch)


def parse_body(
    ctx: Context, body: bytes, *, source: str, content_type: str | None
) -> tuple[list[NewEvent], bool]:
    """Validate an ingest body (quarantining it when invalid); return (events, batch)."""
    try:
        return events_from_body(
            body, source=source, received_at=ctx.clock(), max_batch=ctx.settings.max_batch_events
        )
    except InvalidInput as exc:
        quarantine(ctx, source=source, body=body, error=exc, content_type=content_type)
        raise


async def ingest_body_async(
    ctx: Context, body: bytes, *, source: str = "api", content_type: str | None = None
) -> Ingested:
    """`ingest_body` for the event loop: validation runs inline (it is quick), storing waits
    for the group-commit writer without holding a thread."""
    try:
        new, batch = events_from_body(
            body, source=source, received_at=ctx.clock(), max_batch=ctx.settings.max_batch_events
        )
    except InvalidInput as exc:
        await asyncio.to_thread(
            quarantine, ctx, source=source, body=body, error=exc, content_type=content_type
        )
        raise
    if ctx.committer is not None and ctx.committer.running:
        accepted = await asyncio.wrap_future(ctx.committer.enqueue(new))
    else:
        accepted = await asyncio.to_thread(store_now, ctx, new)
    return Ingested(accepted, batch)


def unknown_hook(name: str) -> NotFound:
    """The answer for `/hooks/{name}` when no source of that name receives webhooks. Nothing
    is kept: the body belongs to no source, and anybody can reach the URL."""
    return NotFound(
        f"no webhook source {name!r}: declare it with `opsloop source add` "
        "(docs/sources.md#webhooks)"
    )


def ingest_hook(
    ctx: Context,
    source: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    content_type: str | None = None,
) -> Ingested:
    """`POST /hooks/{source}` for a source configured in settings (`OPSLOOP_SOURCES`): check
    its signature (or that it takes unsigned deliveries), read the body, store it once."""
    source = source.lower()
    config = ctx.settings.sources.get(source)
    if config is None:
        raise unknown_hook(source)
    try:
        new, batch = hook_events(ctx, source, body, headers, received_at=ctx.clock())
    except (InvalidInput, Unauthorized) as exc:
        quarantine(ctx, source=source, body=body, error=exc, content_type=content_type)
        raise
    return Ingested(store_once(ctx, source, config.dedupe_window or None, new), batch)


def hook_events(
    ctx: Context,
    source: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    received_at: datetime,
    verify: bool = True,
) -> tuple[list[NewEvent], bool]:
    """A webhook body as events (and whether it was a batch), as the source's settings say.
    Raises NotFound for a source not configured, Unauthorized for a bad signature, InvalidInput
    for a bad body; quarantines nothing. `verify=False` skips the signature: only for a body
    whose signature was already checked (a quarantined body replayed, opsloop/service/
    sources.py)."""
    config = ctx.settings.sources.get(source)
    if config is None:
        raise unknown_hook(source)
    lowered = {key.lower(): value for key, value in headers.items()}
    if verify:
        _check_signature(ctx, source, config, body, lowered)
    # No delivery header is signed here: one can be changed by whoever replays a captured
    # delivery. While the content window is on, the body's own id or its content keeps
    # repeats out instead.
    delivery = None if config.dedupe_window else delivery_id(lowered)
    if config.maps_body:
        new = map_hook_body(
            body, source=source, config=config, received_at=received_at, delivery_id=delivery
        )
        return new, False
    new, batch = events_from_body(
        body, source=source, received_at=received_at, max_batch=ctx.settings.max_batch_events
    )
    # The URL names the source; a body cannot claim to be another one.
    new = [
        _with(e, source=source, key=e.idempotency_key or (delivery if len(new) == 1 else None))
        for e in new
    ]
    return new, batch


def unsigned_refused(source: str, fix: str) -> Unauthorized:
    return Unauthorized(
        f"source {source!r} takes signed deliveries only and has no secret to check them "
        f"with: {fix}, or allow_unsigned to accept anyone's (docs/sources.md#webhooks)"
    )


def _check_signature(
    ctx: Context, source: str, config: SourceSettings, body: bytes, headers: dict[str, str]
) -> None:
    if config.secret is None:
        if config.allow_unsigned:
            return
        raise unsigned_refused(source, f"set OPSLOOP_SOURCES__{source.upper()}__SECRET")
    secret = config.secret.get_secret_value()
    header = config.signature_header
    if config.signed == "timestamp":
        verify_hmac_timestamped(
            body,
            headers,
            secret,
            signature_header=header,
            timestamp_header=config.timestamp_header,
            tolerance=config.tolerance,
            now=ctx.clock(),
        )
    else:
        verify_hmac_sha256(body, headers.get(header.lower()), secret, header)


def store_once(
    ctx: Context,
    source: str,
    window: timedelta | None,
    new: list[NewEvent],
    *,
    decide: bool = True,
    now: datetime | None = None,
) -> list[Accepted]:
    """`store_events` for one source's events, in order; with a content `window`, an event
    without an id of its own is keyed by its content (type, subject, payload, traits) and the
    window it falls in, and one stored in this window or the one before is a repeat. (So a
    repeat is caught when it comes within one window, and may be caught up to two windows
    apart.) Repeats never reach a store transaction, so they are counted for the quality
    report here."""
    if window is None or not new:
        return store_events(ctx, new, decide=decide) if new else []
    size = window.total_seconds()
    keyed: list[tuple[NewEvent, str | None, str | None]] = []
    for event in new:
        if event.idempotency_key:
            keyed.append((event, None, None))
            continue
        # Traits count as content too: two posts about one subject that differ only in what
        # they say about it are two events. (Left out when empty, so keys stay as they were.)
        content = [event.type, event.subject, event.payload]
        if event.traits:
            content.append(event.traits)
        digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
        bucket = int(event.occurred_at.timestamp() // size)
        keyed.append((event, f"content:{digest}:{bucket}", f"content:{digest}:{bucket - 1}"))
    earlier = [(source, prev) for _, _, prev in keyed if prev]
    found: dict[tuple[str, str], int] = {}
    if earlier:
        with ctx.db.read() as conn:
            found = event_store.find_by_idempotency(conn, earlier)
    answers: list[Accepted | None] = []
    fresh: list[NewEvent] = []
    for event, key, prev in keyed:
        if prev and (source, prev) in found:
            answers.append(Accepted(found[(source, prev)], "duplicate"))
        else:
            answers.append(None)
            fresh.append(replace(event, idempotency_key=key) if key else event)
    stored = iter(store_events(ctx, fresh, decide=decide) if fresh else [])
    repeats = len(new) - len(fresh)
    if repeats:
        day = (now or ctx.clock()).date().isoformat()
        with ctx.db.transaction() as tx:
            source_stats.add(tx.conn, source, day, received=repeats, duplicates=repeats)
    return [answer if answer is not None else next(stored) for answer in answers]


def store_events(ctx: Context, new: list[NewEvent], *, decide: bool = True) -> list[Accepted]:
    """Store validated events and decide what they trigger; the same (source, idempotency key)
    is stored once. In a running server, concurrent calls are committed together.

    `decide=False` stores history: entities, traits and outcome links are updated as usual and
    features, training and backtests see the events, but no playbook runs on them, so nothing
    is decided and no action is queued (`opsloop import`)."""
    if decide and ctx.committer is not None and ctx.committer.running:
        return ctx.committer.submit(new)
    # History skips the group-commit writer: its groups always decide.
    return store_now(ctx, new, decide=decide)


def store_now(ctx: Context, new: list[NewEvent], *, decide: bool = True) -> list[Accepted]:
    """`store_events` in the calling thread, in a transaction of its own."""
    try:
        return _store(ctx, new, decide=decide)
    except IntegrityError:
        # Another request stored one of these keys between our check and our insert
        # (PostgreSQL, concurrent duplicates). Run again: the check now finds it.
        log.info("idempotency key raced with a concurrent request; retrying the batch")
        return _store(ctx, new, decide=decide)


def _store(ctx: Context, new: list[NewEvent], *, decide: bool) -> list[Accepted]:
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        conn = tx.conn
        keyed = [(e.source, e.idempotency_key) for e in new if e.idempotency_key]
        known = (
            event_store.find_by_idempotency(
                conn,
                keyed,
                reserve=_ids_ahead(ctx, tx, new, decide),
            )
            if keyed
            else {}
        )
        fresh: list[NewEvent] = []
        slots: list[tuple[str, Any]] = []  # ("stored", id) | ("new", index) | ("same", key)
        batch_keys: dict[tuple[str, str], int] = {}
        for event in new:
            key = (event.source, event.idempotency_key) if event.idempotency_key else None
            if key and key in known:
                slots.append(("stored", known[key]))
            elif key and key in batch_keys:
                slots.append(("new_dup", batch_keys[key]))
            else:
                if key:
                    batch_keys[key] = len(fresh)
                slots.append(("new", len(fresh)))
                fresh.append(event)
        # touch_and_merge is the next statement (`_after_insert`), and it reads no events.
        ids = event_store.insert_events(conn, fresh, with_touch=True)
        if fresh:
            _after_insert(ctx, tx, fresh, ids, now, decide=decide)
        _count(ctx, conn, new, slots, now, live=decide)
    results = []
    for kind, value in slots:
        if kind == "stored":
            results.append(Accepted(value, "duplicate"))
        elif kind == "new_dup":
            results.append(Accepted(ids[value], "duplicate"))
        else:
            results.append(Accepted(ids[value], "created"))
    return results


def _ids_ahead(ctx: Context, tx: Tx, new: list[NewEvent], decide: bool) -> dict[str, int] | None:
    """PostgreSQL: how many event and decision ids this transaction may need, taken with the
    duplicate check instead of a round trip each (events repeated in the batch need none)."""
    if tx.conn.dialect.name != "postgresql":
        return None
    # One per key: the batch's repeats are duplicates (those of stored events leave gaps).
    first: dict[tuple[str, object], NewEvent] = {}
    for event in new:
        first.setdefault((event.source, event.idempotency_key or id(event)), event)
    unique = list(first.values())
    decisions = deciding.most_decisions(ctx, unique) if decide else 0
    return {"events": len(unique), "decisions": decisions}


def _count(
    ctx: Context,
    conn: Any,
    new: list[NewEvent],
    slots: list[tuple[str, Any]],
    now: datetime,
    *,
    live: bool,
) -> None:
    """Add to each source's daily counters for the quality report, in the same transaction as
    the events. Only live events can be late: history (an import, a backfill) is old by design."""
    counts: dict[str, dict[str, int]] = {}
    for event, (kind, _) in zip(new, slots, strict=True):
        tally = counts.setdefault(event.source, {"stored": 0, "duplicates": 0, "late": 0})
        if kind != "new":
            tally["duplicates"] += 1
            continue
        tally["stored"] += 1
        if live and event.received_at - event.occurred_at > ctx.late_after(event.source):
            tally["late"] += 1
    day = now.date().isoformat()
    for source, tally in counts.items():
        received = tally["stored"] + tally["duplicates"]
        source_stats.add(conn, source, day, received=received, **tally)


def _after_insert(
    ctx: Context, tx: Tx, fresh: list[NewEvent], ids: list[int], now: datetime, *, decide: bool
) -> None:
    conn = tx.conn
    seen: dict[str, tuple[datetime, datetime]] = {}
    senders = {event.source for event in fresh if event.traits}
    public = sources.public_sources(ctx, conn, senders) if senders else set()
    patches: dict[str, list[event_store.TraitPatch]] = {}
    for event in fresh:
        at = event.occurred_at
        first, last = seen.get(event.subject, (at, at))
        seen[event.subject] = (min(first, at), max(last, at))
        if event.traits:
            patch = event_store.TraitPatch(
                event.traits, event.source, trusted=event.source not in public
            )
            patches.setdefault(event.subject, []).append(patch)
    # Only what is decided needs the events as stored (history, an import, does not).
    stored = (
        [_stored(event, event_id) for event, event_id in zip(fresh, ids, strict=True)]
        if decide
        else []
    )
    # The subjects' traits, read once, serve the merge and the decisions below; the history
    # the decisions read comes with them (in the same round trip on PostgreSQL).
    profiles, kept = event_store.touch_and_merge(
        conn,
        seen,
        patches,
        now,
        protected=ctx.settings.protected_traits,
        history=deciding.history_ahead(ctx, stored) if decide else None,
    )
    for trait in kept:
        # The event keeps the traits as sent (the ledger holds what arrived); only the profile
        # keeps the value a trusted source gave.
        log.warning(
            "kept %s of %s as %s set it: %s is a public source",
            trait.trait,
            trait.subject,
            trait.set_by,
            trait.source,
            extra={"subject": trait.subject, "source": trait.source, "trait": trait.trait},
        )
    traits = profiles.traits

    active = ctx.catalog.active()
    for event, event_id in zip(fresh, ids, strict=True):
        kind = subject_kind(event.subject)
        for playbook in active.values():
            outcome = playbook.compiled.playbook.outcome
            if outcome is None or playbook.compiled.playbook.subject != kind:
                continue
            if event.type in outcome.success or event.type in outcome.failure:
                _link_outcome(
                    conn, playbook.id, event, event_id, outcome.success, outcome.within, now
                )
    if not decide:
        return
    sequences.on_events(ctx, tx, stored, now)
    deciding.decide_stored(
        ctx,
        tx,
        stored,
        now,
        traits=traits,
        first_seen=profiles.created,
        ahead=profiles.history,
    )


def _link_outcome(
    conn: Any,
    playbook_id: int,
    event: NewEvent,
    event_id: int,
    success: tuple[str, ...],
    within: Any,
    now: datetime,
) -> None:
    kind = "success" if event.type in success else "failure"
    open_ = outcome_store.open_decisions(
        conn, playbook_id, event.subject, since=event.occurred_at - within, until=event.occurred_at
    )
    outcome_store.link(
        conn,
        [
            {
                "decision_id": decision_id,
                "event_id": event_id,
                "kind": kind,
                "occurred_at": event.occurred_at,
                "after_seconds": (event.occurred_at - trigger_at).total_seconds(),
                "created_at": now,
            }
            for decision_id, trigger_at in open_
        ],
    )


def quarantine(
    ctx: Context,
    *,
    source: str,
    body: bytes,
    error: Exception,
    content_type: str | None = None,
    body_size: int | None = None,
    file: str | None = None,
    line: int | None = None,
    quiet: bool = False,
) -> int:
    """Keep refused input with the reason, so nothing sent to OpsLoop silently disappears.
    `quiet` logs it at debug level: the caller reports refused input itself (an import)."""
    now = ctx.clock()
    if isinstance(error, InvalidInput):
        errors = [{"field": e.field, "message": e.message} for e in error.errors]
    else:
        errors = [{"field": "", "message": str(error)}]
    reason = str(error)
    if isinstance(error, TooLarge):
        kind = "too_large"
    elif isinstance(error, Unauthorized):
        kind = "unauthorized"
    else:
        kind = "invalid"
    with ctx.db.transaction() as tx:
        source_stats.add(tx.conn, source, now.date().isoformat(), received=1, rejected=1)
        item_id = quarantine_store.hold(
            tx.conn,
            source=source,
            received_at=now,
            reason=reason,
            errors=errors,
            body=body,
            body_size=body_size,
            content_type=content_type,
            file=file,
            line=line,
        )
        audit.record(
            tx.conn,
            now,
            f"source:{source}",
            f"input.quarantined.{kind}",
            item_id,
            {"reason": reason[:500]},
            object_type="quarantine",
        )
    if isinstance(error, InvalidInput | Unauthorized):
        error.quarantine_id = item_id
    log.log(
        logging.DEBUG if quiet else logging.WARNING,
        "quarantined input from %s: %s",
        source,
        reason[:200],
        extra={"source": source, "quarantine": item_id},
    )
    return item_id


def _with(event: NewEvent, *, source: str, key: str | None) -> NewEvent:
    return NewEvent(
        source=source,
        type=event.type,
        subject=event.subject,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        payload=event.payload,
        traits=event.traits,
        idempotency_key=key,
    )


def _stored(event: NewEvent, event_id: int) -> Event:
    return Event(
        id=event_id,
        source=event.source,
        type=event.type,
        subject=event.subject,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        payload=event.payload,
        traits=event.traits,
        idempotency_key=event.idempotency_key,
    )
