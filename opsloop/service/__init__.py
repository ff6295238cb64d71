"""`OpsLoop`: the application assembled. It builds one context (settings, database, runtime,
clock) and a façade per stage of the loop on it — `ops.ingest`, `ops.decide`, `ops.review`,
`ops.deliver`, `ops.learn` (each stage's `facade.py`) — plus `ops.accounts`; it registers the
background jobs and keeps the lifecycle and the ledger's own checks. The HTTP routes, the
pages and the CLI commands that do the same thing call the same façade method, so they share
one code path; each use case is one transaction (delivery is two, around the network call).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from opsloop.perception.history import HistorySpec
from opsloop.runtime.base import Job, Runtime
from opsloop.runtime.inprocess import InProcessRuntime
from opsloop.service import ledger, reading, retention
from opsloop.service.accounts import Accounts
from opsloop.service.context import Context, utcnow
from opsloop.service.decide import deciding, llm_decisions, playbooks
from opsloop.service.decide.facade import Decide
from opsloop.service.decide.playbooks import Applied, load_playbook
from opsloop.service.deliver import outbox
from opsloop.service.deliver.facade import Deliver
from opsloop.service.group_commit import GroupCommitter
from opsloop.service.ingest import (
    storing,
    syncing,
)
from opsloop.service.ingest.contracts import AppliedContract, builtin_contracts, validate_contracts
from opsloop.service.ingest.event_files import FileIngested
from opsloop.service.ingest.facade import Ingest
from opsloop.service.ingest.history_import import Imported
from opsloop.service.ingest.quality import Quality
from opsloop.service.ingest.sources import StoredSource
from opsloop.service.ingest.storing import Accepted, Ingested
from opsloop.service.ingest.syncing import Run
from opsloop.service.ingest.tracking import MAX_BATCH_BYTES, SNIPPET_PATH, Tracked
from opsloop.service.learn import training
from opsloop.service.learn.facade import Learn
from opsloop.service.learn.metrics import CSAT_EVENT, CSAT_FIELD
from opsloop.service.learn.training import RETRAIN_DUE
from opsloop.service.reading import DatabaseStatus, LedgerCounts
from opsloop.service.retention import DbStats, Purged
from opsloop.service.review.facade import Review
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
        self.ingest = Ingest(self.ctx)
        """Signals → events: bodies, webhooks, tracking, files, imports, sources, syncs,
        contracts and the quarantine."""
        self.decide = Decide(self.ctx)
        """Events → decisions: playbooks and their versions, decisions, the language model."""
        self.review = Review(self.ctx)
        """People's verdicts, the inbox, and the autonomy a playbook earns."""
        self.deliver = Deliver(self.ctx)
        """The outbox: actions sent, retried and cancelled; tasks; the mail server's check."""
        self.learn = Learn(self.ctx)
        """What happened next: metrics, the dashboard, backtests, models and their training."""
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

    def migrate(self) -> None:
        """Bring the database to the newest schema."""
        self.db.migrate()

    def now(self) -> datetime:
        """The service's clock: the time it stamps on what it stores (moved by hand in tests
        and simulations)."""
        return self.ctx.clock()

    # --- the ledger: state, verification, retention, sizes -------------------------------------

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

    # --- background jobs -----------------------------------------------------------------------

    def _sync_due_job(self) -> None:
        queued = syncing.enqueue_due(self.ctx)
        if queued:
            log.info("syncs queued: %s", ", ".join(queued))

    def _retention_job(self) -> None:
        purged = retention.purge(self.ctx)
        if purged.deleted or purged.vacuumed_pages:
            log.info("retention: %s", purged)

    def _close_outcomes_job(self) -> None:
        closed = self.learn.close_outcome_windows()
        log.info("closed %d outcome windows", closed)

    def _retrain_due_job(self) -> None:
        trained = [r for r in self.learn.retrain_due() if r["status"] in ("promoted", "challenger")]
        log.info("scheduled retrain: %d models trained", len(trained))

    def _train_job(self, jobs: list[Job]) -> None:
        for job in jobs:
            training.train_quietly(
                self.ctx, str(job.payload["playbook"]), reason=str(job.payload.get("reason"))
            )
