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
from opsloop.core.playbooks import Playbook
from opsloop.runtime.base import Runtime
from opsloop.runtime.inprocess import InProcessRuntime
from opsloop.service import delivering, ingesting, playbooks, reading, reviewing
from opsloop.service import metrics as metric_service
from opsloop.service.context import Context, utcnow
from opsloop.service.group_commit import GroupCommitter
from opsloop.service.ingesting import Accepted, Ingested
from opsloop.service.playbooks import Applied
from opsloop.settings import Settings
from opsloop.store.database import Database

log = logging.getLogger(__name__)

CLOSE_OUTCOMES = "close_outcome_windows"

__all__ = ["Accepted", "Applied", "Ingested", "OpsLoop"]


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
        self.ctx.committer = GroupCommitter(lambda events: ingesting.store_now(self.ctx, events))
        self._closed = False
        self.runtime.register(
            delivering.DELIVER,
            lambda jobs: delivering.deliver_jobs(self.ctx, jobs),
            batch_size=1,
            max_attempts=3,
        )
        self.runtime.register(CLOSE_OUTCOMES, lambda jobs: self._close_outcomes_job())
        self.runtime.every(CLOSE_OUTCOMES, CLOSE_OUTCOMES, timedelta(minutes=10))

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
        return ingesting.ingest_body(self.ctx, body, source=source, content_type=content_type)

    async def ingest_async(
        self, body: bytes, *, source: str = "api", content_type: str | None = None
    ) -> Ingested:
        return await ingesting.ingest_body_async(
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
        return ingesting.ingest_hook(self.ctx, source, body, headers, content_type=content_type)

    def store_events(self, events: list[NewEvent]) -> list[Accepted]:
        return ingesting.store_events(self.ctx, events)

    def refuse_oversized(
        self, source: str, head: bytes, size: int | None, content_type: str | None
    ) -> TooLarge:
        """Quarantine the start of an oversized body and return the error to raise."""
        limit = self.settings.max_body_bytes
        stated = f"{size} bytes" if size is not None else "more than that"
        error = TooLarge.single(
            "body", f"is {stated}; the limit is {limit} bytes (OPSLOOP_MAX_BODY_BYTES)"
        )
        ingesting.quarantine(
            self.ctx,
            source=source,
            body=head,
            error=error,
            content_type=content_type,
            body_size=size or len(head),
        )
        return error

    def quarantine(
        self,
        *,
        source: str,
        body: bytes,
        error: Exception,
        file: str | None = None,
        line: int | None = None,
    ) -> int:
        return ingesting.quarantine(
            self.ctx, source=source, body=body, error=error, file=file, line=line
        )

    # --- reasoning, review, execution --------------------------------------------------------

    def review(self, decision_id: int, request: ReviewRequest) -> Decision:
        return reviewing.review(self.ctx, decision_id, request)

    def deliver(self, action_id: int) -> str:
        return delivering.deliver(self.ctx, action_id)

    def retry_action(self, action_id: int, *, actor: str) -> dict[str, Any]:
        return delivering.retry_action(self.ctx, action_id, actor=actor)

    # --- playbooks ---------------------------------------------------------------------------

    def validate_playbook(self, text: str, file: str) -> Playbook:
        return playbooks.load_playbook(text, file)[0]

    def apply_playbook(self, text: str, file: str, *, actor: str) -> Applied:
        return playbooks.apply_playbook(self.ctx, text, file, actor=actor)

    def apply_playbook_file(self, path: Path, *, actor: str) -> Applied:
        return playbooks.apply_playbook(self.ctx, path.read_text(), str(path), actor=actor)

    def list_playbooks(self) -> list[dict[str, Any]]:
        return playbooks.list_playbooks(self.ctx)

    def get_playbook(self, name: str) -> dict[str, Any]:
        return playbooks.get_playbook(self.ctx, name)

    # --- reading -----------------------------------------------------------------------------

    def list_decisions(self, **filters: Any) -> list[dict[str, Any]]:
        return reading.list_decisions(self.ctx, **filters)

    def decision_detail(self, decision_id: int) -> dict[str, Any]:
        return reading.decision_detail(self.ctx, decision_id)

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

    def list_tasks(self, **filters: Any) -> list[dict[str, Any]]:
        return reading.list_tasks(self.ctx, **filters)

    def complete_task(self, task_id: int, *, by: str) -> dict[str, Any]:
        return reading.complete_task(self.ctx, task_id, by=by)

    # --- learning ----------------------------------------------------------------------------

    def metrics(
        self, *, since: timedelta | None = None, playbook: str | None = None
    ) -> list[dict[str, Any]]:
        return metric_service.metrics(self.ctx, since=since, playbook=playbook)

    def _close_outcomes_job(self) -> None:
        closed = self.close_outcome_windows()
        log.info("closed %d outcome windows", closed)

    def close_outcome_windows(self) -> int:
        return metric_service.close_outcome_windows(self.ctx)
