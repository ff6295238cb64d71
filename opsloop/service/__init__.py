"""The one façade the edges call. The HTTP routes and the CLI commands that do the same thing
call the same method here, so they share one code path; each use case is one transaction
(delivery is two, around the network call).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from opsloop.core.decisions import Decision, ReviewRequest
from opsloop.core.errors import TooLarge
from opsloop.core.events import NewEvent
from opsloop.core.periods import Baseline
from opsloop.core.playbooks import Playbook
from opsloop.core.yaml_source import read_text
from opsloop.perception.history import HistorySpec
from opsloop.reasoning.llm_client import Classification
from opsloop.runtime.base import Job, Runtime
from opsloop.runtime.inprocess import InProcessRuntime
from opsloop.service import ledger, reading, retention
from opsloop.service.accounts import Accounts
from opsloop.service.context import Context, utcnow
from opsloop.service.decide import deciding, llm_decisions, playbooks
from opsloop.service.decide import llm_setup as llm_service
from opsloop.service.decide.llm_setup import ConnectionCheck
from opsloop.service.decide.playbooks import Applied, load_playbook
from opsloop.service.deliver import outbox
from opsloop.service.deliver.connections import SmtpCheck, check_smtp
from opsloop.service.group_commit import GroupCommitter
from opsloop.service.ingest import (
    contracts,
    event_files,
    history_import,
    quality,
    sources,
    storing,
    syncing,
    tracking,
    webhooks,
)
from opsloop.service.ingest import quarantine as source_service
from opsloop.service.ingest.contracts import AppliedContract, builtin_contracts, validate_contracts
from opsloop.service.ingest.event_files import FileIngested, RowDone
from opsloop.service.ingest.history_import import Imported, Progress
from opsloop.service.ingest.quality import Quality
from opsloop.service.ingest.sources import StoredSource
from opsloop.service.ingest.storing import Accepted, Ingested
from opsloop.service.ingest.syncing import Run
from opsloop.service.ingest.tracking import MAX_BATCH_BYTES, SNIPPET_PATH, Tracked
from opsloop.service.learn import dashboard as dashboard_service
from opsloop.service.learn import metrics as metric_service
from opsloop.service.learn import training
from opsloop.service.learn.metrics import CSAT_EVENT, CSAT_FIELD, By
from opsloop.service.learn.training import RETRAIN_DUE
from opsloop.service.reading import DatabaseStatus, LedgerCounts
from opsloop.service.retention import DbStats, Purged
from opsloop.service.review import autonomy, verdicts
from opsloop.service.review import inbox as inbox_service
from opsloop.service.review.inbox import ORDERS
from opsloop.service.served_models import TRAIN_MODEL
from opsloop.settings import Settings
from opsloop.store.database import Database
from opsloop.store.inbox import InboxOrder

log = logging.getLogger(__name__)

CLOSE_OUTCOMES = "close_outcome_windows"

__all__ = [
    "CSAT_EVENT",
    "CSAT_FIELD",
    "MAX_BATCH_BYTES",
    "ORDERS",
    "SNIPPET_PATH",
    "Accepted",
    "Applied",
    "AppliedContract",
    "DatabaseStatus",
    "DbStats",
    "FileIngested",
    "HistorySpec",
    "Imported",
    "InboxOrder",
    "Ingested",
    "LedgerCounts",
    "OpsLoop",
    "Purged",
    "Quality",
    "Run",
    "StoredSource",
    "Tracked",
    "builtin_contracts",
    "load_playbook",
    "migrate_database",
    "validate_contracts",
]
"""What the edges (web, cli, demo) may use besides `OpsLoop`: the types its methods return
and the few pure functions that need no database. Everything else stays behind the façade."""


def migrate_database(settings: Settings) -> None:
    """Create or upgrade the schema of the database `settings` name (`opsloop migrate`)."""
    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
    finally:
        db.dispose()


class OpsLoop:
    def __init__(
        self,
        settings: Settings,
        *,
        db: Database | None = None,
        runtime: Runtime | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.db = db or Database(
            settings.resolved_database_url, pool_size=settings.worker_threads + 8
        )
        self.runtime = runtime or InProcessRuntime(
            self.db,
            threads=settings.worker_threads,
            poll_seconds=settings.worker_poll_seconds,
            stale_seconds=settings.worker_stale_seconds,
            clock=clock,
        )
        self.ctx = Context(settings, self.db, self.runtime, clock)
        self.ctx.committer = GroupCommitter(lambda events: storing.store_now(self.ctx, events))
        self.accounts = Accounts(self.ctx)
        """People, sessions, API tokens and sign-in limits (opsloop/service/accounts.py)."""
        self._closed = False
        self.runtime.register(
            outbox.DELIVER,
            lambda jobs: outbox.deliver_jobs(self.ctx, jobs),
            batch_size=1,
            max_attempts=3,
        )
        # Playbooks that ask the language model decide here, outside the ingest transaction.
        self.runtime.register(
            deciding.DECIDE_WITH_LLM,
            lambda jobs: llm_decisions.decide_jobs(self.ctx, jobs),
            batch_size=1,
            max_attempts=3,
        )
        self.runtime.register(CLOSE_OUTCOMES, lambda jobs: self._close_outcomes_job())
        self.runtime.every(CLOSE_OUTCOMES, CLOSE_OUTCOMES, timedelta(minutes=10))
        # Models: a retrain asked for (a rejected artifact), and the playbooks' `retrain:`
        # schedules, checked every 10 minutes (each playbook's own interval decides).
        self._retrain_checked: dict[str, datetime] = {}
        self.runtime.register(TRAIN_MODEL, self._train_job, max_attempts=2)
        self.runtime.register(RETRAIN_DUE, lambda jobs: self._retrain_due_job())
        self.runtime.every(RETRAIN_DUE, RETRAIN_DUE, timedelta(minutes=10))
        # Pulled sources: every minute, one sync job per source that is due (its `interval`).
        self.runtime.register(syncing.SYNC_DUE, lambda jobs: self._sync_due_job())
        self.runtime.every(syncing.SYNC_DUE, syncing.SYNC_DUE, timedelta(minutes=1))
        self.runtime.register(
            syncing.SYNC_SOURCE, lambda jobs: syncing.sync_jobs(self.ctx, jobs), max_attempts=2
        )
        # Retention: purge what the settings let go, give SQLite's free pages back, empty the WAL.
        self.runtime.register(retention.RETENTION, lambda jobs: self._retention_job())
        self.runtime.every(
            retention.RETENTION,
            retention.RETENTION,
            timedelta(minutes=settings.retention_interval_minutes),
        )

    # --- lifecycle -----------------------------------------------------------------------------

    def prepare(self) -> list[Applied]:
        """Migrate the database (when allowed) and apply the playbooks directory."""
        if self.settings.auto_migrate:
            self.db.migrate()
        return playbooks.apply_directory(
            self.ctx, self.settings.resolved_playbooks_dir, actor="startup"
        )

    def start(self) -> None:
        """Start the background workers and the group-commit writer (a server's set-up)."""
        assert self.ctx.committer is not None
        self.ctx.committer.start()
        self.runtime.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.ctx.committer is not None:
            self.ctx.committer.stop()
        self.runtime.stop()
        self.ctx.http.close()
        self.db.dispose()

    def run_jobs(self) -> int:
        """Run every job that is due now, in this thread (tests, one-shot CLI commands)."""
        return self.runtime.run_due()

    # --- perception ------------------------------------------------------------------------------

    def ingest(
        self, body: bytes, *, source: str = "api", content_type: str | None = None
    ) -> Ingested:
        return storing.ingest_body(self.ctx, body, source=source, content_type=content_type)

    async def ingest_async(
        self, body: bytes, *, source: str = "api", content_type: str | None = None
    ) -> Ingested:
        return await storing.ingest_body_async(
            self.ctx, body, source=source, content_type=content_type
        )

    def ingest_hook(
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
    ) -> Imported:
        """Store a historical CSV export as events without deciding on them; bad rows go to
        quarantine with their line. Importing the same file again stores nothing new."""
        return history_import.import_history(
            self.ctx, path, spec, source=source, batch_size=batch_size, progress=progress
        )

    def refuse_oversized(
        self, source: str, head: bytes, size: int | None, content_type: str | None
    ) -> TooLarge:
        """Quarantine the start of an oversized body and return the error to raise."""
        limit = self.settings.max_body_bytes
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

    # --- tracking (Segment-compatible: opsloop/service/ingest/tracking.py) ----------------------

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

    # --- contracts (opsloop/service/ingest/contracts.py) ----------------------------------------

    def list_contracts(self) -> list[dict[str, Any]]:
        return contracts.list_contracts(self.ctx)

    def get_contract(self, event_type: str) -> dict[str, Any]:
        return contracts.get_contract(self.ctx, event_type)

    def apply_contracts(self, text: str, file: str, *, actor: str) -> list[AppliedContract]:
        """Store each contract of the file whose rules changed as a new version."""
        return contracts.apply_contracts(self.ctx, text, file, actor=actor)

    def remove_contract(self, event_type: str, *, actor: str) -> int:
        return contracts.remove_contract(self.ctx, event_type, actor=actor)

    # --- sources (declared in YAML: opsloop/core/sources.py) ------------------------------------

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

    def remove_source(self, name: str, *, actor: str) -> None:
        sources.remove(self.ctx, name, actor=actor)

    def set_source_enabled(self, name: str, enabled: bool, *, actor: str) -> None:
        sources.set_enabled(self.ctx, name, enabled, actor=actor)

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

    def _sync_due_job(self) -> None:
        queued = syncing.enqueue_due(self.ctx)
        if queued:
            log.info("syncs queued: %s", ", ".join(queued))

    # --- reasoning, review, execution --------------------------------------------------------

    def review(self, decision_id: int, request: ReviewRequest) -> Decision:
        return verdicts.review(self.ctx, decision_id, request)

    def deliver(self, action_id: int) -> str:
        return outbox.deliver(self.ctx, action_id)

    def retry_action(self, action_id: int, *, actor: str) -> dict[str, Any]:
        return outbox.retry_action(self.ctx, action_id, actor=actor)

    def cancel_action(self, action_id: int, *, actor: str) -> dict[str, Any]:
        """Stop a pending or retrying action for good (audited); Conflict otherwise."""
        return outbox.cancel_action(self.ctx, action_id, actor=actor)

    def count_actions(self) -> dict[str, int]:
        return reading.count_actions(self.ctx)

    # --- playbooks ---------------------------------------------------------------------------

    def validate_playbook(self, text: str, file: str) -> Playbook:
        configured = bool(self.settings.llm.url and self.settings.llm.model)
        return playbooks.load_playbook(text, file, llm_configured=configured)[0]

    def apply_playbook(self, text: str, file: str, *, actor: str) -> Applied:
        return playbooks.apply_playbook(self.ctx, text, file, actor=actor)

    def apply_playbook_file(self, path: Path, *, actor: str) -> Applied:
        return playbooks.apply_playbook(self.ctx, read_text(path), str(path), actor=actor)

    def list_playbooks(self) -> list[dict[str, Any]]:
        return playbooks.list_playbooks(self.ctx)

    def get_playbook(self, name: str) -> dict[str, Any]:
        return playbooks.get_playbook(self.ctx, name)

    def get_playbook_version(self, name: str, version: int) -> dict[str, Any]:
        """One stored version with its source, for showing it or comparing two versions."""
        return playbooks.get_playbook_version(self.ctx, name, version)

    def readiness(self, name: str) -> dict[str, Any]:
        return autonomy.readiness(self.ctx, name)

    def change_mode(
        self, name: str, mode: str, *, actor: str, reason: str | None = None
    ) -> dict[str, Any]:
        return autonomy.change_mode(self.ctx, name, mode, actor=actor, reason=reason)

    # --- reading -----------------------------------------------------------------------------

    def list_decisions(self, **filters: Any) -> list[dict[str, Any]]:
        return reading.list_decisions(self.ctx, **filters)

    def decision_detail(self, decision_id: int) -> dict[str, Any]:
        return reading.decision_detail(self.ctx, decision_id)

    def inbox(
        self, *, playbook: str | None = None, order: InboxOrder = "newest", limit: int = 50
    ) -> dict[str, Any]:
        """The decisions waiting for a person, ready to review (opsloop/service/review/inbox.py)."""
        return inbox_service.inbox(self.ctx, playbook=playbook, order=order, limit=limit)

    def inbox_item(self, decision_id: int) -> dict[str, Any]:
        return inbox_service.item(self.ctx, decision_id)

    def count_waiting(self) -> dict[str, int]:
        """How many decisions wait for a person, per playbook."""
        return inbox_service.count(self.ctx)

    def list_events(self, **filters: Any) -> list[dict[str, Any]]:
        return reading.list_events(self.ctx, **filters)

    def get_event(self, event_id: int) -> dict[str, Any]:
        return reading.get_event(self.ctx, event_id)

    def get_entity(self, subject: str) -> dict[str, Any]:
        return reading.get_entity(self.ctx, subject)

    def list_actions(self, **filters: Any) -> list[dict[str, Any]]:
        return reading.list_actions(self.ctx, **filters)

    def get_action(self, action_id: int) -> dict[str, Any]:
        return reading.get_action(self.ctx, action_id)

    def list_quarantine(self, **filters: Any) -> list[dict[str, Any]]:
        return reading.list_quarantine(self.ctx, **filters)

    def get_quarantined(self, item_id: int) -> dict[str, Any]:
        return reading.get_quarantined(self.ctx, item_id)

    def source_activity(self) -> list[source_service.SourceActivity]:
        """Per source that has sent events: counts by type and the last one received."""
        return source_service.source_activity(self.ctx)

    def quarantine_items(self, **filters: Any) -> list[dict[str, Any]]:
        """`list_quarantine` with, for each item, whether it can be replayed and its replays."""
        return source_service.list_quarantine(self.ctx, **filters)

    def quarantine_item(self, item_id: int) -> dict[str, Any]:
        return source_service.get_quarantined(self.ctx, item_id)

    def quarantine_counts(self) -> dict[str, int]:
        return source_service.quarantine_counts(self.ctx)

    def replay_quarantined(self, item_id: int, *, actor: str) -> source_service.Replayed:
        """Run a held item's raw body through its ingest path again (opsloop/service/ingest/quarantine.py)."""
        return source_service.replay(self.ctx, item_id, actor=actor)

    # --- connections (the settings page) -------------------------------------------------------

    def check_smtp(self, *, send_to: str | None = None) -> SmtpCheck:
        """Connect to the SMTP server as configured (EHLO, NOOP); with `send_to`, send a test email."""
        return check_smtp(self.ctx, send_to=send_to)

    def check_llm(self) -> ConnectionCheck:
        """One tiny request to the language model (no retries, no cache): model and latency,
        or what is wrong (opsloop/service/decide/llm_setup.py)."""
        return llm_service.test_connection(self.ctx)

    def classify_text(
        self,
        text: str,
        labels: list[str],
        *,
        instructions: str | None = None,
        needed_by: str = "",
    ) -> Classification:
        """One of `labels` for `text`, as a playbook would ask the model (cached, booked)."""
        with llm_service.language_model(self.ctx, needed_by=needed_by) as llm:
            return llm.classify(text, labels, instructions=instructions)

    def llm_usage(self) -> dict[str, Any]:
        """Per model: calls, cache hits, failures, tokens and cost, from the LLM call ledger."""
        return llm_service.usage(self.ctx)

    def list_tasks(self, **filters: Any) -> list[dict[str, Any]]:
        return reading.list_tasks(self.ctx, **filters)

    def complete_task(self, task_id: int, *, by: str) -> dict[str, Any]:
        return reading.complete_task(self.ctx, task_id, by=by)

    # --- the ledger: verification, retention, sizes ---------------------------------------------

    def migrate(self) -> None:
        """Bring the database to the newest schema."""
        self.db.migrate()

    def now(self) -> datetime:
        """The service's clock: the time it stamps on what it stores (moved by hand in tests
        and simulations)."""
        return self.ctx.clock()

    def events_by_source(self) -> dict[str, int]:
        """How many events each source has stored."""
        return reading.events_by_source(self.ctx)

    def database_status(self) -> DatabaseStatus:
        """The backend, and whether the schema is at the newest migration (`/readyz`)."""
        return reading.database_status(self.ctx)

    def ledger_counts(self) -> LedgerCounts:
        """Events, decisions per playbook and status, actions per status, items held (`/metrics`)."""
        return reading.ledger_counts(self.ctx)

    def verify_ledger(
        self,
        *,
        expect: tuple[int, str] | None = None,
        progress: ledger.Progress | None = None,
    ) -> ledger.Verification:
        """Walk the audit hash chain and check every decision and action against its latest
        audit row; name the first problem. `expect`: an (audit row id, hash) noted earlier
        that the chain must still hold (opsloop/service/ledger.py)."""
        return ledger.verify(self.ctx, expect=expect, progress=progress)

    def purge(self, *, actor: str) -> retention.Purged:
        """Run retention now: delete what the retention settings let go (audited, as counts),
        give SQLite's free pages back and empty its WAL (opsloop/service/retention.py)."""
        return retention.purge(self.ctx, actor=actor)

    def db_stats(self) -> retention.DbStats:
        """Rows and bytes per table, file and WAL size, and the retention settings in force."""
        return retention.stats(self.ctx)

    def vacuum_db(self) -> retention.DbStats:
        """Rebuild the database (SQLite: switches an existing file to incremental vacuum)."""
        return retention.vacuum(self.ctx)

    def _retention_job(self) -> None:
        purged = retention.purge(self.ctx)
        if purged.deleted or purged.vacuumed_pages:
            log.info("retention: %s", purged)

    # --- learning ----------------------------------------------------------------------------

    def metrics(
        self, *, since: timedelta | None = None, playbook: str | None = None
    ) -> list[dict[str, Any]]:
        return metric_service.metrics(self.ctx, since=since, playbook=playbook)

    def dashboard(self, *, playbook: str | None = None) -> dict[str, Any]:
        """`metrics_report(by="week")` with time saved, reviews waiting and failed deliveries:
        what the web dashboard shows (opsloop/service/learn/dashboard.py)."""
        return dashboard_service.dashboard(self.ctx, playbook=playbook)

    def metrics_report(
        self,
        *,
        since: timedelta | None = None,
        playbook: str | None = None,
        by: By | None = None,
        baseline: Baseline | None = None,
        csat_event: str = metric_service.CSAT_EVENT,
        csat_field: str = metric_service.CSAT_FIELD,
    ) -> dict[str, Any]:
        """`metrics` plus ISO weeks (`by="week"`), each number against a baseline period, and
        customer satisfaction: what `GET /api/metrics` and `opsloop metrics` show."""
        return metric_service.report(
            self.ctx,
            since=since,
            playbook=playbook,
            by=by,
            baseline=baseline,
            csat_event=csat_event,
            csat_field=csat_field,
        )

    def backtest(
        self,
        *,
        playbook: str | None = None,
        version: int | None = None,
        source: str | None = None,
        file: str = "draft.yaml",
        since: str | datetime | timedelta = "90d",
        until: str | datetime | timedelta | None = None,
        actor: str = "api",
        save: bool = True,
        progress: Callable[[str, int, int | None], None] | None = None,
    ) -> dict[str, Any]:
        """Replay a saved playbook (`playbook`, optionally an older `version`) or a draft
        (`source`) over stored history, with no side effects; keep the report when `save`."""
        from opsloop.service.learn import backtesting  # Polars: loaded only when a backtest runs

        return backtesting.backtest(
            self.ctx,
            playbook=playbook,
            version=version,
            source=source,
            file=file,
            since=since,
            until=until,
            actor=actor,
            save=save,
            progress=progress,
        )

    def get_backtest(self, backtest_id: int) -> dict[str, Any]:
        from opsloop.service.learn import backtesting

        return backtesting.get_backtest(self.ctx, backtest_id)

    def _close_outcomes_job(self) -> None:
        closed = self.close_outcome_windows()
        log.info("closed %d outcome windows", closed)

    def close_outcome_windows(self) -> int:
        return metric_service.close_outcome_windows(self.ctx)

    def train(
        self,
        playbook: str,
        *,
        actor: str,
        force: bool = False,
        step: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Train the playbook's model from the ledger now: refused when the labelled rows are
        too few or of one class, skipped when they have not changed (unless `force`). The new
        version becomes champion only if it beats the current one on the same held-out rows;
        otherwise it runs in shadow as the challenger."""
        return training.train(self.ctx, playbook, actor=actor, force=force, step=step)

    def list_models(self, playbook: str) -> dict[str, Any]:
        """The playbook's model versions with status, metrics and training window."""
        return training.list_models(self.ctx, playbook)

    def retrain_due(self) -> list[dict[str, Any]]:
        """Retrain the models whose playbook's `retrain` interval has passed (the schedule)."""
        return training.retrain_due(self.ctx, self._retrain_checked)

    def _retrain_due_job(self) -> None:
        trained = [r for r in self.retrain_due() if r["status"] in ("promoted", "challenger")]
        log.info("scheduled retrain: %d models trained", len(trained))

    def _train_job(self, jobs: list[Job]) -> None:
        for job in jobs:
            training.train_quietly(
                self.ctx, str(job.payload["playbook"]), reason=str(job.payload.get("reason"))
            )
