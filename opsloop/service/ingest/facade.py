"""The ingest stage as the edges see it: signals → events: bodies, webhooks, tracking, files,
imports, sources, syncs, contracts and the quarantine. `OpsLoop.ingest` is one of these, on the
service's context; every method is one use case."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from opsloop.core.errors import TooLarge
from opsloop.core.event_views import Entity, EventView
from opsloop.core.events import NewEvent
from opsloop.core.quarantine import QuarantinedItem
from opsloop.perception.history import HistorySpec
from opsloop.service import reading
from opsloop.service.context import Context
from opsloop.service.ingest import (
    contracts,
    event_files,
    history_import,
    quality,
    source_setup,
    sources,
    storing,
    syncing,
    test_deliveries,
    tracking,
    webhooks,
)
from opsloop.service.ingest import quarantine as source_service
from opsloop.service.ingest.contracts import AppliedContract
from opsloop.service.ingest.event_files import FileIngested, RowDone
from opsloop.service.ingest.history_import import FileOrderImport, Imported, Progress
from opsloop.service.ingest.storing import Accepted, Ingested
from opsloop.service.ingest.tracking import Tracked
from opsloop.service.ingest.views import ContractDetail, ContractSummary, ReplayableItem


class Ingest:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def body(
        self, body: bytes, *, source: str = "api", content_type: str | None = None
    ) -> Ingested:
        return storing.ingest_body(self.ctx, body, source=source, content_type=content_type)

    async def body_async(
        self, body: bytes, *, source: str = "api", content_type: str | None = None
    ) -> Ingested:
        return await storing.ingest_body_async(
            self.ctx, body, source=source, content_type=content_type
        )

    def hook(
        self,
        source: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        content_type: str | None = None,
    ) -> Ingested:
        return storing.ingest_hook(self.ctx, source, body, headers, content_type=content_type)

    def receive_hook(
        self,
        source: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        content_type: str | None = None,
        url: str | None = None,
    ) -> webhooks.Received:
        """`POST /hooks/{source}`: a declared webhook source (verify, map, check, store once),
        or one configured in settings (`ingest_hook`). `url` is the address as received."""
        return webhooks.receive(self.ctx, source, body, headers, content_type=content_type, url=url)

    def store_events(self, events: list[NewEvent], *, decide: bool = True) -> list[Accepted]:
        """Store validated events. `decide=False` stores history: no playbook runs on these
        events (nothing is decided or sent), but features, training and backtests see them."""
        return storing.store_events(self.ctx, events, decide=decide)

    def import_history(
        self,
        path: Path,
        spec: HistorySpec,
        *,
        source: str = "import",
        batch_size: int = 500,
        progress: Progress | None = None,
        actor: str = "opsloop",
    ) -> Imported:
        """Store a historical CSV export as events without deciding on them; bad rows go to
        quarantine with their line. Importing the same file again stores nothing new. The
        import is recorded in the audit trail (`history.imported`)."""
        return history_import.import_history(
            self.ctx,
            path,
            spec,
            source=source,
            batch_size=batch_size,
            progress=progress,
            actor=actor,
        )

    def file_order_imports(self, event_types: Collection[str]) -> list[FileOrderImport]:
        """The imports that stored events of these types with order-only times (`opsloop
        import --file-order`): their times are the file's order, not real dates."""
        return history_import.file_order_imports(self.ctx, event_types)

    def refuse_oversized(
        self, source: str, head: bytes, size: int | None, content_type: str | None
    ) -> TooLarge:
        """Quarantine the start of an oversized body and return the error to raise."""
        limit = self.ctx.settings.max_body_bytes
        stated = f"{size} bytes" if size is not None else "more than that"
        error = TooLarge.single(
            "body", f"is {stated}; the limit is {limit} bytes (OPSLOOP_MAX_BODY_BYTES)"
        )
        storing.quarantine(
            self.ctx,
            source=source,
            body=head,
            error=error,
            content_type=content_type,
            body_size=size or len(head),
        )
        return error

    def refuse_oversized_hook(
        self, source: str, head: bytes, size: int | None, content_type: str | None
    ) -> Exception:
        """`refuse_oversized` for `/hooks/{source}`: a name no source receives webhooks under
        is a 404 and nothing is kept (opsloop/service/ingest/webhooks.py)."""
        if not webhooks.receives(self.ctx, source):
            return storing.unknown_hook(source.lower())
        return self.refuse_oversized(source.lower(), head, size, content_type)

    def quarantine(
        self,
        *,
        source: str,
        body: bytes,
        error: Exception,
        file: str | None = None,
        line: int | None = None,
    ) -> int:
        return storing.quarantine(
            self.ctx, source=source, body=body, error=error, file=file, line=line
        )

    def rows_in_file(self, path: Path) -> int:
        """How many rows an events file holds, for `ingest_file`'s progress bar."""
        return event_files.rows_in(path)

    def ingest_file(
        self,
        path: Path,
        *,
        source: str = "import",
        batch_size: int = 500,
        row_done: RowDone | None = None,
    ) -> FileIngested:
        """Events from a JSONL or CSV file: bad rows to quarantine with their line, the rest
        stored in batches (opsloop/service/ingest/event_files.py)."""
        return event_files.ingest_file(
            self.ctx, path, source=source, batch_size=batch_size, row_done=row_done
        )

    def track(
        self,
        call: str,
        body: bytes,
        *,
        authorization: str | None,
        content_type: str | None = None,
    ) -> Tracked:
        """`POST /v1/{call}`: the write key names the source; each call is stored once."""
        return tracking.receive(
            self.ctx, call, body, authorization=authorization, content_type=content_type
        )

    def refuse_oversized_tracking(
        self, call: str, head: bytes, size: int | None, *, authorization: str | None
    ) -> TooLarge:
        """The error for a tracking body over Segment's limit; its start is kept in quarantine
        when the write key names a source."""
        return tracking.refuse_oversized(self.ctx, call, head, size, authorization=authorization)

    def list_contracts(self) -> list[ContractSummary]:
        return contracts.list_contracts(self.ctx)

    def get_contract(self, event_type: str) -> ContractDetail:
        return contracts.get_contract(self.ctx, event_type)

    def apply_contracts(self, text: str, file: str, *, actor: str) -> list[AppliedContract]:
        """Store each contract of the file whose rules changed as a new version."""
        return contracts.apply_contracts(self.ctx, text, file, actor=actor)

    def remove_contract(self, event_type: str, *, actor: str) -> int:
        return contracts.remove_contract(self.ctx, event_type, actor=actor)

    def add_source(
        self,
        text: str,
        file: str,
        *,
        secret: str | None = None,
        actor: str,
        replace: bool = False,
        name: str | None = None,
    ) -> sources.Added:
        """Add (or with `replace`, change) a source from its YAML definition."""
        return sources.add_text(
            self.ctx, text, file, secret=secret, actor=actor, replace=replace, name=name
        )

    def list_sources(self) -> list[sources.StoredSource]:
        return sources.list_sources(self.ctx)

    def get_source(self, name: str) -> sources.StoredSource:
        return sources.get(self.ctx, name)

    def seal_stored_secrets(self) -> int:
        """Seal source secrets stored in plain text by an earlier version (start-up)."""
        return sources.seal_stored(self.ctx)

    def remove_source(self, name: str, *, actor: str) -> None:
        sources.remove(self.ctx, name, actor=actor)

    def set_source_enabled(self, name: str, enabled: bool, *, actor: str) -> None:
        sources.set_enabled(self.ctx, name, enabled, actor=actor)

    def source_examples(self) -> list[source_setup.SourceExample]:
        """The example definitions that ship with OpsLoop (`examples/sources/`)."""
        return source_setup.examples()

    def source_example(self, name: str) -> source_setup.SourceExample:
        return source_setup.example(name)

    def builtin_mappings(self) -> list[str]:
        """The names a source's `mapping:` may give instead of rules."""
        return source_setup.mapping_names()

    def generated_source_secret(self, kind: str, verify: str) -> str | None:
        """A new random secret for a source of this kind and `verify`, or None when its sender
        chooses the secret (Stripe, Shopify, HubSpot, Calendly; a pulled source's password)."""
        return source_setup.generated_secret(kind, verify)

    def sample_delivery(self, name: str) -> str:
        """A sample delivery body (JSON) the webhook source's mapping makes an event of."""
        return test_deliveries.sample_body(self.ctx, name)

    def test_delivery(
        self,
        name: str,
        *,
        base_url: str,
        actor: str,
        body: str | None = None,
        secret: str | None = None,
    ) -> test_deliveries.TestDelivery:
        """Sign a sample (or `body`) the way the webhook source verifies, with its secret (or
        `secret`), and deliver it through `receive_hook`'s path; the outcome, audited."""
        return test_deliveries.send(
            self.ctx, name, base_url=base_url, actor=actor, body=body, secret=secret
        )

    def delivery_command(
        self, name: str, base_url: str, *, secret: str | None = None
    ) -> str | None:
        """A bash script (openssl, curl) that sends the source a signed sample delivery (a
        tracking call for a segment source); `$SECRET` unless the secret is given."""
        return test_deliveries.command(self.ctx, name, base_url, secret=secret)

    def tracking_snippet(self, name: str, base_url: str) -> str:
        """The tag a segment source's website pastes into its pages (write key as placeholder)."""
        return tracking.snippet_for(self.ctx, name, base_url)

    def source_quality(self, name: str, *, days: int = 7, top: int = 5) -> quality.Quality:
        """Valid share, late events, duplicates and the `top` violations over the last `days`."""
        return quality.report(self.ctx, name, days=days, top=top)

    def sync_source(
        self,
        name: str,
        *,
        mode: syncing.Mode = "sync",
        actor: str,
        progress: syncing.Progress | None = None,
    ) -> syncing.Run:
        """Sync a pulled source now (or `backfill` it from the beginning, as history) and
        return the finished run; Conflict while another run of it is under way."""
        return syncing.sync(self.ctx, name, mode=mode, actor=actor, progress=progress)

    def source_runs(self, name: str, *, limit: int = 20) -> list[syncing.Run]:
        """The source's latest sync and backfill runs, newest first."""
        return syncing.runs(self.ctx, name, limit=limit)

    def list_events(self, **filters: Any) -> list[EventView]:
        return reading.list_events(self.ctx, **filters)

    def get_event(self, event_id: int) -> EventView:
        return reading.get_event(self.ctx, event_id)

    def get_entity(self, subject: str) -> Entity:
        return reading.get_entity(self.ctx, subject)

    def list_quarantine(self, **filters: Any) -> list[QuarantinedItem]:
        return reading.list_quarantine(self.ctx, **filters)

    def get_quarantined(self, item_id: int) -> QuarantinedItem:
        return reading.get_quarantined(self.ctx, item_id)

    def source_activity(self) -> list[source_service.SourceActivity]:
        """Per source that has sent events: counts by type and the last one received."""
        return source_service.source_activity(self.ctx)

    def quarantine_items(self, **filters: Any) -> list[ReplayableItem]:
        """`list_quarantine` with, for each item, whether it can be replayed and its replays."""
        return source_service.list_quarantine(self.ctx, **filters)

    def quarantine_item(self, item_id: int) -> ReplayableItem:
        return source_service.get_quarantined(self.ctx, item_id)

    def quarantine_counts(self) -> dict[str, int]:
        return source_service.quarantine_counts(self.ctx)

    def replay_quarantined(self, item_id: int, *, actor: str) -> source_service.Replayed:
        """Run a held item's raw body through its ingest path again (opsloop/service/ingest/quarantine.py)."""
        return source_service.replay(self.ctx, item_id, actor=actor)

    def events_by_source(self) -> dict[str, int]:
        """How many events each source has stored."""
        return reading.events_by_source(self.ctx)
