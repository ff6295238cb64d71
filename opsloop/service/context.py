"""What every use case needs: settings, database, runtime, clock, channels, active playbooks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from opsloop.core.playbooks import Mode, parse_playbook
from opsloop.core.sources import DEFAULT_LATE, SourceSpec
from opsloop.execution.channels import Channel
from opsloop.execution.channels.email import EmailChannel
from opsloop.execution.channels.notify import NotifyChannel
from opsloop.execution.channels.webhook import WebhookChannel
from opsloop.learning.predictors import load_predictor
from opsloop.reasoning.compiler import CompiledPlaybook, compile_playbook
from opsloop.runtime.base import Runtime
from opsloop.service.group_commit import GroupCommitter
from opsloop.service.served_models import TRAIN_MODEL, ServedModels
from opsloop.settings import Settings
from opsloop.store import playbooks as playbook_store
from opsloop.store import source_registry as source_registry_store
from opsloop.store.database import Database, Tx

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ActivePlaybook:
    id: int
    name: str
    mode: Mode
    version_id: int
    version: int
    compiled: CompiledPlaybook


class Catalog:
    """The active playbooks, compiled. Re-read when another process (the CLI, a second
    server) changes a playbook: the stamp is checked at most once per `ttl` seconds."""

    def __init__(self, db: Database, ttl: float = 1.0) -> None:
        self.db = db
        self.ttl = ttl
        self._lock = threading.Lock()
        self._stamp: tuple[object, ...] | None = None
        self._checked = 0.0
        self._active: dict[str, ActivePlaybook] = {}
        self._compiled: dict[str, CompiledPlaybook] = {}

    def active(self) -> dict[str, ActivePlaybook]:
        if time.monotonic() - self._checked < self.ttl and self._stamp is not None:
            return self._active
        with self._lock:
            if time.monotonic() - self._checked < self.ttl and self._stamp is not None:
                return self._active
            with self.db.read() as conn:
                stamp = playbook_store.catalog_stamp(conn)
                if stamp != self._stamp:
                    rows = playbook_store.active_playbooks(conn)
                    self._active = {row["name"]: self._load(row) for row in rows}
                    self._stamp = stamp
            self._checked = time.monotonic()
            return self._active

    def invalidate(self) -> None:
        with self._lock:
            self._checked = 0.0
            self._stamp = None

    def _load(self, row: dict[str, object]) -> ActivePlaybook:
        content_hash = str(row["content_hash"])
        compiled = self._compiled.get(content_hash)
        if compiled is None:
            playbook, document = parse_playbook(str(row["source"]), str(row["file"]))
            compiled = compile_playbook(playbook, document)
            self._compiled[content_hash] = compiled
        return ActivePlaybook(
            id=int(row["id"]),  # type: ignore[call-overload]
            name=str(row["name"]),
            mode=row["mode"],  # type: ignore[arg-type]
            version_id=int(row["version_id"]),  # type: ignore[call-overload]
            version=int(row["version"]),  # type: ignore[call-overload]
            compiled=compiled,
        )


class LateThresholds:
    """How long after it occurred an event of each source counts as late (the quality
    report), read from the declared sources at most once per `ttl` seconds: ingest asks on
    every commit."""

    def __init__(self, db: Database, ttl: float = 5.0) -> None:
        self.db = db
        self.ttl = ttl
        self._lock = threading.Lock()
        self._checked = -ttl
        self._by_source: dict[str, timedelta] = {}

    def __call__(self, source: str) -> timedelta:
        if time.monotonic() - self._checked >= self.ttl:
            with self._lock, self.db.read() as conn:
                rows = source_registry_store.list_all(conn)
                self._by_source = {
                    row["name"]: SourceSpec.model_validate(row["spec"]).late_threshold
                    for row in rows
                }
                self._checked = time.monotonic()
        return self._by_source.get(source, DEFAULT_LATE)

    def invalidate(self) -> None:
        self._checked = -self.ttl


@dataclass
class Context:
    settings: Settings
    db: Database
    runtime: Runtime
    clock: Callable[[], datetime] = utcnow
    catalog: Catalog = field(init=False)
    committer: GroupCommitter[Any, Any] | None = None
    http: httpx.Client = field(init=False)
    channels: dict[str, Channel] = field(init=False)
    models: ServedModels = field(init=False)
    late_after: LateThresholds = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = Catalog(self.db)
        self.late_after = LateThresholds(self.db)
        self.models = ServedModels(
            load_predictor, queue_retrain=self.queue_retrain, clock=lambda: self.clock()
        )
        self.http = httpx.Client(
            timeout=self.settings.delivery_timeout_seconds, follow_redirects=False
        )
        webhook = WebhookChannel(self.settings, self.http)
        self.channels = {
            "email": EmailChannel(self.settings),
            "webhook": webhook,
            "notify": NotifyChannel(self.settings, self.http),
            # Money and deletions are carried out by the business's own systems, reached by a
            # signed webhook; OpsLoop's part is making sure a person approved first.
            "refund": webhook,
            "payment": webhook,
            "discount": webhook,
            "delete": webhook,
        }

    def queue_retrain(self, tx: Tx, playbook: str, reason: str) -> None:
        """Train the playbook's model again soon, in a job (one at a time per playbook)."""
        payload = {"playbook": playbook, "reason": reason}
        self.runtime.enqueue(tx, TRAIN_MODEL, [(payload, f"train:{playbook}")])
