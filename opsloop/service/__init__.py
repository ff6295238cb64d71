"""`OpsLoop`: the application assembled. It builds one context (settings, database, runtime,
clock) and a façade per stage of the loop on it — `ops.ingest`, `ops.decide`, `ops.review`,
`ops.deliver`, `ops.learn` (each stage's `facade.py`) — plus `ops.accounts`; it registers the
background jobs and keeps the lifecycle and the ledger's own checks. The HTTP routes, the
pages and the CLI commands that do the same thing call the same façade method, so they share
one code path; each use case is one transaction (delivery is two, around the network call).

Importing this module loads no stage: a façade is built when first used, a job's handler
imports its stage when the job runs, and the exports below are imported when first asked for,
so a command pays only for the stages it uses (docs/performance.md#cli-start-up).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, cast

from opsloop.runtime.base import Job, Runtime
from opsloop.runtime.inprocess import InProcessRuntime
from opsloop.service.context import Context, utcnow
from opsloop.service.group_commit import GroupCommitter
from opsloop.service.jobs import (
    CLOSE_OUTCOMES,
    DECIDE_ABSENCE,
    DECIDE_WITH_LLM,
    DELIVER,
    DOCUMENTS_SYNC,
    QUEUES,
    RETENTION,
    RETRAIN_DUE,
    REVIEW_DEADLINE,
    REVIEW_DIGEST,
    RUN_SCHEDULE,
    SCHEDULES_DUE,
    SEQUENCE_STEP,
    SYNC_DUE,
    SYNC_SOURCE,
    TRAIN_MODEL,
    WEEKLY_REPORT,
)
from opsloop.settings import Settings
from opsloop.store.database import Database

if TYPE_CHECKING:
    from opsloop.core.events import NewEvent
    from opsloop.perception.history import HistorySpec
    from opsloop.service import ledger
    from opsloop.service.accounts import Accounts
    from opsloop.service.ask.chat_views import AskedQuestion, ChatAnswer, ChatRecord
    from opsloop.service.ask.facade import Ask
    from opsloop.service.configuration import Configuration, SettingView
    from opsloop.service.decide.facade import Decide
    from opsloop.service.decide.playbooks import Applied, load_playbook
    from opsloop.service.decide.views import (
        EventDecisions,
        PlaybookDetail,
        PlaybookSummary,
        TemplateDetail,
        TemplateSummary,
    )
    from opsloop.service.deliver.facade import Deliver
    from opsloop.service.ingest.contracts import (
        AppliedContract,
        builtin_contracts,
        validate_contracts,
    )
    from opsloop.service.ingest.event_files import FileIngested
    from opsloop.service.ingest.facade import Ingest
    from opsloop.service.ingest.history_import import Imported
    from opsloop.service.ingest.quality import Quality
    from opsloop.service.ingest.source_setup import SourceExample
    from opsloop.service.ingest.sources import StoredSource
    from opsloop.service.ingest.storing import Accepted, Ingested
    from opsloop.service.ingest.syncing import Run
    from opsloop.service.ingest.test_deliveries import TestDelivery
    from opsloop.service.ingest.tracking import MAX_BATCH_BYTES, SNIPPET_PATH, Tracked
    from opsloop.service.ingest.views import ContractDetail, ContractSummary, ReplayableItem
    from opsloop.service.learn.charts import Point, Unit, four_series, weekly_chart
    from opsloop.service.learn.facade import Learn
    from opsloop.service.learn.metrics import CSAT_EVENT, CSAT_FIELD
    from opsloop.service.learn.views import (
        Change,
        CsatReport,
        DashboardPlaybook,
        DecisionsVersusBaseline,
        MetricsReport,
        RenderedReport,
        SentReport,
        TrainResult,
        WeeklyReport,
    )
    from opsloop.service.reading import DatabaseStatus, LedgerCounts
    from opsloop.service.retention import DbStats, Purged
    from opsloop.service.review.facade import Review
    from opsloop.service.review.inbox import ORDERS
    from opsloop.service.review.views import InboxItem, ReadinessReport
    from opsloop.store.inbox import InboxOrder


POSTGRES_INGEST_WRITERS = 2
"""Group-commit writers on PostgreSQL: while one group's transaction waits on its round trips,
the next group is read and decided (SQLite has one writer at a time anyway). With PostgreSQL a
network hop away, 1.5× the single events of one writer; on loopback, level (the server's
Python is the limit there). Three and four were slower: smaller groups, more statements per
event (docs/performance.md)."""

log = logging.getLogger(__name__)


def _subject(event: NewEvent) -> str:
    """What the group-commit writers store in order (`GroupCommitter`'s key)."""
    return event.subject


__all__ = [
    "CSAT_EVENT",
    "CSAT_FIELD",
    "MAX_BATCH_BYTES",
    "ORDERS",
    "QUEUE_NAMES",
    "SNIPPET_PATH",
    "Accepted",
    "Applied",
    "AppliedContract",
    "AskedQuestion",
    "Change",
    "ChatAnswer",
    "ChatRecord",
    "ContractDetail",
    "ContractSummary",
    "CsatReport",
    "DashboardPlaybook",
    "DatabaseStatus",
    "DbStats",
    "DecisionsVersusBaseline",
    "EventDecisions",
    "FileIngested",
    "HistorySpec",
    "Imported",
    "InboxItem",
    "InboxOrder",
    "Ingested",
    "LedgerCounts",
    "MetricsReport",
    "OpsLoop",
    "PlaybookDetail",
    "PlaybookSummary",
    "Point",
    "Purged",
    "Quality",
    "ReadinessReport",
    "RenderedReport",
    "ReplayableItem",
    "Run",
    "SentReport",
    "SettingView",
    "SourceExample",
    "StoredSource",
    "TemplateDetail",
    "TemplateSummary",
    "TestDelivery",
    "Tracked",
    "TrainResult",
    "Unit",
    "WeeklyReport",
    "builtin_contracts",
    "four_series",
    "load_playbook",
    "migrate_database",
    "validate_contracts",
    "weekly_chart",
]
"""What the edges (web, cli, demo) may use besides `OpsLoop`: the types its methods return
and the few pure functions that need no database. Everything else stays behind the façade."""

_EXPORTED_FROM = {
    "CSAT_EVENT": "opsloop.service.learn.metrics",
    "CSAT_FIELD": "opsloop.service.learn.metrics",
    "MAX_BATCH_BYTES": "opsloop.service.ingest.tracking",
    "ORDERS": "opsloop.service.review.inbox",
    "SNIPPET_PATH": "opsloop.service.ingest.tracking",
    "Accepted": "opsloop.service.ingest.storing",
    "Applied": "opsloop.service.decide.playbooks",
    "AppliedContract": "opsloop.service.ingest.contracts",
    "AskedQuestion": "opsloop.service.ask.chat_views",
    "ChatAnswer": "opsloop.service.ask.chat_views",
    "ChatRecord": "opsloop.service.ask.chat_views",
    "DatabaseStatus": "opsloop.service.reading",
    "DbStats": "opsloop.service.retention",
    "FileIngested": "opsloop.service.ingest.event_files",
    "HistorySpec": "opsloop.perception.history",
    "Imported": "opsloop.service.ingest.history_import",
    "InboxOrder": "opsloop.store.inbox",
    "EventDecisions": "opsloop.service.decide.views",
    "Ingested": "opsloop.service.ingest.storing",
    "LedgerCounts": "opsloop.service.reading",
    "Purged": "opsloop.service.retention",
    "Quality": "opsloop.service.ingest.quality",
    "Run": "opsloop.service.ingest.syncing",
    "SettingView": "opsloop.service.configuration",
    "StoredSource": "opsloop.service.ingest.sources",
    "SourceExample": "opsloop.service.ingest.source_setup",
    "TestDelivery": "opsloop.service.ingest.test_deliveries",
    "Tracked": "opsloop.service.ingest.tracking",
    "builtin_contracts": "opsloop.service.ingest.contracts",
    "load_playbook": "opsloop.service.decide.playbooks",
    "validate_contracts": "opsloop.service.ingest.contracts",
    "Change": "opsloop.service.learn.views",
    "CsatReport": "opsloop.service.learn.views",
    "DashboardPlaybook": "opsloop.service.learn.views",
    "DecisionsVersusBaseline": "opsloop.service.learn.views",
    "MetricsReport": "opsloop.service.learn.views",
    "TrainResult": "opsloop.service.learn.views",
    "WeeklyReport": "opsloop.service.learn.views",
    "RenderedReport": "opsloop.service.learn.views",
    "SentReport": "opsloop.service.learn.views",
    "Point": "opsloop.service.learn.charts",
    "Unit": "opsloop.service.learn.charts",
    "four_series": "opsloop.service.learn.charts",
    "weekly_chart": "opsloop.service.learn.charts",
    "ContractDetail": "opsloop.service.ingest.views",
    "ContractSummary": "opsloop.service.ingest.views",
    "ReplayableItem": "opsloop.service.ingest.views",
    "PlaybookDetail": "opsloop.service.decide.views",
    "PlaybookSummary": "opsloop.service.decide.views",
    "TemplateDetail": "opsloop.service.decide.views",
    "TemplateSummary": "opsloop.service.decide.views",
    "InboxItem": "opsloop.service.review.views",
    "ReadinessReport": "opsloop.service.review.views",
}
"""Where each export of `__all__` but `OpsLoop` and `migrate_database` lives (the imports
under TYPE_CHECKING above say the same to mypy)."""

if not TYPE_CHECKING:  # mypy reads the imports above, and still flags a name nobody exports

    def __getattr__(name: str) -> Any:
        """An export imported when first asked for (PEP 562): importing `opsloop.service` loads
        no stage, so a command pays only for the stages it uses."""
        module = _EXPORTED_FROM.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


_Facade = TypeVar("_Facade")


QUEUE_NAMES: tuple[str, ...] = tuple(sorted(set(QUEUES.values())))
"""The job queues, one per stage (`opsloop worker --queues`)."""


def make_runtime(
    settings: Settings,
    db: Database,
    clock: Callable[[], datetime] = utcnow,
    *,
    queues: list[str] | None = None,
) -> Runtime:
    """The runtime `settings.runtime` names; `auto`: Procrastinate on PostgreSQL, worker threads
    of this process on SQLite (docs/scaling.md)."""
    choice = settings.runtime
    if choice == "auto":
        choice = "inprocess" if db.is_sqlite else "procrastinate"
    if choice == "procrastinate":
        # Imported only here: the SQLite install never loads Procrastinate.
        from opsloop.runtime.procrastinate import ProcrastinateRuntime

        return ProcrastinateRuntime(
            db,
            concurrency=settings.worker_threads,
            poll_seconds=settings.worker_poll_seconds,
            stale_seconds=settings.worker_stale_seconds,
            queues=queues,
            clock=clock,
        )
    return InProcessRuntime(
        db,
        threads=settings.worker_threads,
        poll_seconds=settings.worker_poll_seconds,
        stale_seconds=settings.worker_stale_seconds,
        clock=clock,
    )


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
        queues: list[str] | None = None,
    ) -> None:
        """`queues`: run only the jobs of these queues (`opsloop worker --queues`; PostgreSQL)."""
        self.db = db or Database(
            settings.resolved_database_url, pool_size=settings.worker_threads + 8
        )
        self.runtime = runtime or make_runtime(settings, self.db, clock, queues=queues)
        self.ctx = Context(settings, self.db, self.runtime, clock)
        self.ctx.committer = GroupCommitter(
            self._store_now,
            writers=1 if self.db.is_sqlite else POSTGRES_INGEST_WRITERS,
            key=_subject,
        )
        self._closed = False
        self._building = threading.Lock()
        # Each handler imports its stage when a job of its kind runs (see `_deliver_jobs` …).
        self._register(DELIVER, self._deliver_jobs, max_attempts=3)
        # Playbooks that ask the language model decide here, outside the ingest transaction.
        self._register(DECIDE_WITH_LLM, self._decide_jobs, max_attempts=3)
        self._register(DECIDE_ABSENCE, self._absence_jobs, max_attempts=5)
        self._register(SEQUENCE_STEP, self._sequence_jobs, max_attempts=5)
        # Review deadlines, and one digest per reviewer per interval of what waits.
        self._register(REVIEW_DEADLINE, self._deadline_jobs, max_attempts=5)
        self._register(REVIEW_DIGEST, lambda jobs: self._digest_job(), max_attempts=1)
        if settings.review_digest_minutes > 0:
            every = timedelta(minutes=settings.review_digest_minutes)
            self.runtime.every(REVIEW_DIGEST, REVIEW_DIGEST, every)
        # Scheduled playbooks: due runs claimed every minute, each run a job of its own.
        self._register(SCHEDULES_DUE, lambda jobs: self._schedules_due_job())
        self.runtime.every(SCHEDULES_DUE, SCHEDULES_DUE, timedelta(minutes=1))
        self._register(RUN_SCHEDULE, self._run_schedule_jobs, max_attempts=5)
        self._register(CLOSE_OUTCOMES, lambda jobs: self._close_outcomes_job())
        self.runtime.every(CLOSE_OUTCOMES, CLOSE_OUTCOMES, timedelta(minutes=10))
        # The weekly report: checked every hour, sent once per (recipient, week).
        self._register(WEEKLY_REPORT, lambda jobs: self._weekly_report_job(), max_attempts=1)
        if settings.weekly_report:
            self.runtime.every(WEEKLY_REPORT, WEEKLY_REPORT, timedelta(hours=1))
        # Models: a retrain asked for (a rejected artifact), and the playbooks' `retrain:`
        # schedules, checked every 10 minutes (each playbook's own interval decides).
        self._register(TRAIN_MODEL, self._train_job, max_attempts=2)
        self._register(RETRAIN_DUE, lambda jobs: self._retrain_due_job())
        self.runtime.every(RETRAIN_DUE, RETRAIN_DUE, timedelta(minutes=10))
        # Pulled sources: every minute, one sync job per source that is due (its `interval`).
        self._register(SYNC_DUE, lambda jobs: self._sync_due_job())
        self.runtime.every(SYNC_DUE, SYNC_DUE, timedelta(minutes=1))
        self._register(SYNC_SOURCE, self._sync_jobs, max_attempts=2)
        # The documents folder: files dropped there are answered from within 5 minutes.
        self._register(DOCUMENTS_SYNC, lambda jobs: self._documents_job(), max_attempts=1)
        self.runtime.every(DOCUMENTS_SYNC, DOCUMENTS_SYNC, timedelta(minutes=5))
        # Retention: purge what the settings let go, give SQLite's free pages back, empty the WAL.
        self._register(RETENTION, lambda jobs: self._retention_job())
        self.runtime.every(
            RETENTION, RETENTION, timedelta(minutes=settings.retention_interval_minutes)
        )

    def _register(
        self, kind: str, handler: Callable[[list[Job]], None], *, max_attempts: int = 5
    ) -> None:
        self.runtime.register(kind, handler, queue=QUEUES[kind], max_attempts=max_attempts)

    # --- the stages ----------------------------------------------------------------------------
    # Each façade is built, and its stage's modules imported, when first used: importing every
    # stage costs over 100 ms, which `opsloop decisions` (one stage) would otherwise pay at
    # start-up (docs/performance.md#cli-start-up).

    @property
    def settings(self) -> Settings:
        """The settings in force: start-up's, with what owners saved on the Settings page."""
        return self.ctx.settings

    @cached_property
    def configuration(self) -> Configuration:
        """The settings owners edit in the browser (opsloop/service/configuration.py)."""
        from opsloop.service.configuration import Configuration

        return self._once("configuration", Configuration)

    @cached_property
    def accounts(self) -> Accounts:
        """People, sessions, API tokens and sign-in limits (opsloop/service/accounts.py)."""
        from opsloop.service.accounts import Accounts

        return self._once("accounts", Accounts)

    @cached_property
    def ingest(self) -> Ingest:
        """Signals → events: bodies, webhooks, tracking, files, imports, sources, syncs,
        contracts and the quarantine."""
        from opsloop.service.ingest.facade import Ingest

        return self._once("ingest", Ingest)

    @cached_property
    def decide(self) -> Decide:
        """Events → decisions: playbooks and their versions, decisions, the language model."""
        from opsloop.service.decide.facade import Decide

        return self._once("decide", Decide)

    @cached_property
    def review(self) -> Review:
        """People's verdicts, the inbox, and the autonomy a playbook earns."""
        from opsloop.service.review.facade import Review

        return self._once("review", Review)

    @cached_property
    def deliver(self) -> Deliver:
        """The outbox: actions sent, retried and cancelled; tasks; the mail server's check."""
        from opsloop.service.deliver.facade import Deliver

        return self._once("deliver", Deliver)

    @cached_property
    def learn(self) -> Learn:
        """What happened next: metrics, the dashboard, backtests, models and their training."""
        from opsloop.service.learn.facade import Learn

        return self._once("learn", Learn)

    @cached_property
    def ask(self) -> Ask:
        """Answers for people: documents with citations, and the read-only operations chat."""
        from opsloop.service.ask.facade import Ask

        return self._once("ask", Ask)

    def _once(self, name: str, build: Callable[[Context], _Facade]) -> _Facade:
        """`build(ctx)`, kept as attribute `name`, once even when two threads ask first at the
        same time (a request and a job): `cached_property` holds no lock from Python 3.12 on,
        and a façade keeps state (the accounts' caches, the retrain schedule's memory)."""
        with self._building:
            if name not in self.__dict__:
                self.__dict__[name] = build(self.ctx)
            return cast("_Facade", self.__dict__[name])

    # --- lifecycle -----------------------------------------------------------------------------

    def prepare(self) -> list[Applied]:
        """Migrate the database (when allowed) and apply the playbooks directory."""
        from opsloop.service.decide import playbooks

        if self.settings.auto_migrate:
            self.db.migrate()
        self.ingest.seal_stored_secrets()
        return playbooks.apply_directory(
            self.ctx, self.settings.resolved_playbooks_dir, actor="startup"
        )

    def start(self, *, workers: bool = True) -> None:
        """Start the group-commit writer and, unless `workers` is off (a web-only process,
        `opsloop serve --no-worker`), the background workers: a server's set-up."""
        # A server uses every stage: build them now, before the first request or job needs one
        # (and before the collector freezes what start-up made, `gc_tuning.tune_for_serving`).
        for stage in ("accounts", "ingest", "decide", "review", "deliver", "learn"):
            getattr(self, stage)
        assert self.ctx.committer is not None
        self.ctx.committer.start()
        if workers:
            self.runtime.start()

    def work(self, stop: threading.Event) -> None:
        """Run background jobs in the foreground until `stop` is set (`opsloop worker`).
        Running jobs finish first; a job of a process killed harder is handed to another
        worker after `worker_stale_seconds`."""
        self.start(workers=False)
        self.runtime.work(stop)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.ctx.committer is not None:
            self.ctx.committer.stop()
        self.runtime.stop()
        self.ctx.close_channels()
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
        from opsloop.service import reading

        return reading.database_status(self.ctx)

    def ledger_counts(self) -> LedgerCounts:
        """Events, decisions per playbook and status, actions per status, items held (`/metrics`)."""
        from opsloop.service import reading

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
        from opsloop.service import ledger

        return ledger.verify(self.ctx, expect=expect, progress=progress)

    def purge(self, *, actor: str) -> Purged:
        """Run retention now: delete what the retention settings let go (audited, as counts),
        give SQLite's free pages back and empty its WAL (opsloop/service/retention.py)."""
        from opsloop.service import retention

        return retention.purge(self.ctx, actor=actor)

    def db_stats(self) -> DbStats:
        """Rows and bytes per table, file and WAL size, and the retention settings in force."""
        from opsloop.service import retention

        return retention.stats(self.ctx)

    def vacuum_db(self) -> DbStats:
        """Rebuild the database (SQLite: switches an existing file to incremental vacuum)."""
        from opsloop.service import retention

        return retention.vacuum(self.ctx)

    # --- background jobs: each imports its stage when it runs ----------------------------------

    def _store_now(self, events: list[NewEvent]) -> list[Accepted]:
        """The group committer's writer: one group of events stored in one transaction."""
        from opsloop.service.ingest import storing

        return storing.store_now(self.ctx, events)

    def _deliver_jobs(self, batch: list[Job]) -> None:
        from opsloop.service.deliver import outbox

        outbox.deliver_jobs(self.ctx, batch)

    def _decide_jobs(self, batch: list[Job]) -> None:
        from opsloop.service.decide import llm_decisions

        llm_decisions.decide_jobs(self.ctx, batch)

    def _absence_jobs(self, batch: list[Job]) -> None:
        from opsloop.service.decide import absences

        absences.decide_jobs(self.ctx, batch)

    def _deadline_jobs(self, batch: list[Job]) -> None:
        from opsloop.service.review import deadlines

        deadlines.deadline_jobs(self.ctx, batch)

    def _digest_job(self) -> None:
        from opsloop.service.review import deadlines

        deadlines.send_digests(self.ctx)

    def _sequence_jobs(self, batch: list[Job]) -> None:
        from opsloop.service.deliver import sequences

        sequences.step_jobs(self.ctx, batch)

    def _schedules_due_job(self) -> None:
        from opsloop.service.decide import schedules

        schedules.claim_due(self.ctx)

    def _run_schedule_jobs(self, batch: list[Job]) -> None:
        from opsloop.service.decide import schedules

        schedules.run_jobs(self.ctx, batch)

    def _sync_due_job(self) -> None:
        from opsloop.service.ingest import syncing

        queued = syncing.enqueue_due(self.ctx)
        if queued:
            log.info("syncs queued: %s", ", ".join(queued))

    def _sync_jobs(self, batch: list[Job]) -> None:
        from opsloop.service.ingest import syncing

        syncing.sync_jobs(self.ctx, batch)

    def _documents_job(self) -> None:
        synced = self.ask.sync_documents_folder()
        if synced is not None and (synced["added"] or synced["updated"] or synced["removed"]):
            log.info(
                "documents folder: %d added, %d updated, %d removed",
                len(synced["added"]),
                len(synced["updated"]),
                len(synced["removed"]),
            )

    def _retention_job(self) -> None:
        from opsloop.service import retention

        purged = retention.purge(self.ctx)
        if purged.deleted or purged.vacuumed_pages:
            log.info("retention: %s", purged)

    def _weekly_report_job(self) -> None:
        sent = self.learn.send_weekly_reports()
        if sent:
            log.info("weekly report sent to %d people", sent)

    def _close_outcomes_job(self) -> None:
        closed = self.learn.close_outcome_windows()
        log.info("closed %d outcome windows", closed)

    def _retrain_due_job(self) -> None:
        trained = [r for r in self.learn.retrain_due() if r["status"] in ("promoted", "challenger")]
        log.info("scheduled retrain: %d models trained", len(trained))

    def _train_job(self, batch: list[Job]) -> None:
        from opsloop.service.learn import training

        for job in batch:
            training.train_quietly(
                self.ctx, str(job.payload["playbook"]), reason=str(job.payload.get("reason"))
            )
