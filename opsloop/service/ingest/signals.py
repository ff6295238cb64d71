"""The one way in for a declared source's signals: records → mapped → checked → stored once.

Webhooks, tracking calls, synced rows and mails all pass through `take_records`:

1. the source's mapping (or, for a segment source, the tracking parser) makes events of each
   record; a record no rule matches is *ignored* and counted, not stored;
2. each event is checked against its type's contract and normalized (opsloop/perception/
   normalize.py);
3. the record's key (delivery id, row id, Message-ID) is the idempotency key of events that have
   none, and within the source's content window (`dedupe_window`; for webhooks 24h unless set,
   `SourceSpec.content_window`) the same content seen again is a duplicate;
4. the events are stored in one transaction (decided on, unless it is history) with the day's
   counters for the quality report (opsloop/service/storing.py counts what it stores, what it
   quarantines and content repeats; only ignored records are counted here).

A record that fails 1 or 2 is quarantined with its `where` and reason, and the rest of the
batch goes on; for a push (`whole=True`) the call is refused as a whole instead, as a sender
retries a refused delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import orjson

from opsloop.core.errors import FieldError, InvalidInput
from opsloop.core.events import NewEvent
from opsloop.core.sources import SourceSpec
from opsloop.perception.ingest_bodies import events_from_data, parse_json, refuse_nul
from opsloop.perception.mapping import compiled
from opsloop.perception.normalize import conform
from opsloop.perception.records import Record, Rejected
from opsloop.service.context import Context
from opsloop.service.ingest import storing
from opsloop.service.ingest.contracts import contract_for
from opsloop.service.ingest.storing import Accepted
from opsloop.store import source_stats

Mapper = Callable[[Record], list[NewEvent]]
"""Turns one record into events, raising InvalidInput; for sources that map in code."""


@dataclass(frozen=True, slots=True)
class RecordError:
    where: str
    reason: str
    quarantine_id: int | None


@dataclass
class Taken:
    """What a batch of records became."""

    accepted: list[Accepted] = field(default_factory=list)
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    ignored: int = 0
    errors: list[RecordError] = field(default_factory=list)
    ignored_why: list[str] = field(default_factory=list)


def take_records(
    ctx: Context,
    spec: SourceSpec,
    records: list[Record],
    *,
    mapper: Mapper | None = None,
    received_at: datetime | None = None,
    decide: bool = True,
    whole: bool = False,
) -> Taken:
    """Map, check, store once and count a source's records (see the module's text)."""
    now = received_at or ctx.clock()
    taken = Taken()
    ready: list[NewEvent] = []
    for record in records:
        try:
            refuse_nul(record.data)
            events, ignored = events_for(ctx, spec, record, received_at=now, mapper=mapper)
            events = checked(ctx, spec, events)
        except InvalidInput as exc:
            if whole:
                body = record.raw if record.raw is not None else orjson.dumps(record.data)
                storing.quarantine(ctx, source=spec.name, body=body, error=exc)
                raise
            taken.rejected += 1
            taken.errors.append(_hold(ctx, spec, record, exc))
            continue
        if ignored is not None:
            taken.ignored += 1
            taken.ignored_why.append(ignored)
        ready.extend(events)
    taken.accepted = storing.store_once(
        ctx, spec.name, spec.content_window, ready, decide=decide, now=now
    )
    taken.stored = sum(1 for a in taken.accepted if a.status == "created")
    taken.duplicates = len(taken.accepted) - taken.stored
    if taken.ignored:
        # Stored events, duplicates and refused records were counted in their own transactions
        # (opsloop/service/storing.py); ignored records never reach one.
        with ctx.db.transaction() as tx:
            source_stats.add(
                tx.conn,
                spec.name,
                now.date().isoformat(),
                received=taken.ignored,
                ignored=taken.ignored,
            )
    return taken


def events_for(
    ctx: Context,
    spec: SourceSpec,
    record: Record,
    *,
    received_at: datetime,
    mapper: Mapper | None = None,
) -> tuple[list[NewEvent], str | None]:
    """One record's events before contracts: (events, why it was ignored or None). Raises
    InvalidInput naming the record's `where`."""
    if mapper is not None:
        events = mapper(record)
        ignored = None
    elif spec.mapping is not None:
        mapping = compiled(spec.mapping, origin=f"source {spec.name}: mapping")
        mapped = mapping.apply(record, source=spec.name, received_at=received_at, zone=spec.zone)
        events, ignored = mapped.events, mapped.ignored
    else:
        events, ignored = _opsloop_events(ctx, spec, record, received_at), None
    if record.key is not None:
        # The sender's id stores the record once; several events from one record each get
        # their own key derived from it.
        events = [
            e
            if e.idempotency_key
            else replace(e, idempotency_key=record.key if len(events) == 1 else f"{record.key}:{n}")
            for n, e in enumerate(events)
        ]
    return events, ignored


def events_of_body(
    ctx: Context,
    spec: SourceSpec,
    body: bytes,
    *,
    received_at: datetime,
    where: str,
    mapper: Mapper | None = None,
) -> list[NewEvent]:
    """A kept body's events, mapped and checked as if it arrived now (quarantine replay).
    Raises InvalidInput when it is still refused."""
    record = Record(parse_json(body), where=where, raw=body)
    events, _ = events_for(ctx, spec, record, received_at=received_at, mapper=mapper)
    return checked(ctx, spec, events)


def checked(ctx: Context, spec: SourceSpec, events: list[NewEvent]) -> list[NewEvent]:
    """Events checked against their type's contract and normalized; raises InvalidInput with
    every violation. Built-in contracts check what built-in mappings make (see
    opsloop/service/ingest/contracts.py)."""
    builtin = isinstance(spec.mapping, str)
    return [
        conform(
            event,
            contract_for(ctx, event.type, builtin_mapping=builtin),
            zone=spec.zone,
            region=spec.region,
        )
        for event in events
    ]


def hold_rejected(ctx: Context, source: str, rejected: list[Rejected]) -> list[int]:
    """Quarantine input a connector could not read as records (a malformed CSV line)."""
    ids = []
    for item in rejected:
        error = InvalidInput([FieldError(item.where, item.reason)])
        ids.append(
            storing.quarantine(
                ctx,
                source=source,
                body=item.raw,
                error=error,
                file=item.file,
                line=item.line,
                quiet=True,
            )
        )
    return ids


def _hold(ctx: Context, spec: SourceSpec, record: Record, exc: InvalidInput) -> RecordError:
    body = record.raw if record.raw is not None else orjson.dumps(record.data)
    located = InvalidInput(
        [
            FieldError(f"{record.where}: {e.field}" if e.field else record.where, e.message)
            for e in exc.errors
        ]
    )
    item = storing.quarantine(ctx, source=spec.name, body=body, error=located, quiet=True)
    return RecordError(record.where, str(located), item)


def _opsloop_events(
    ctx: Context, spec: SourceSpec, record: Record, received_at: datetime
) -> list[NewEvent]:
    """A source with no mapping sends OpsLoop events: one, a list, or `{"events": [...]}`."""
    events, _ = events_from_data(
        record.data,
        source=spec.name,
        received_at=received_at,
        max_batch=ctx.settings.max_batch_events,
    )
    # The source is the one the record came through; a body cannot claim another.
    return [replace(e, source=spec.name) for e in events]
