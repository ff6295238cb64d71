"""What every use case needs: settings, database, runtime, clock, channels, active playbooks.

The channels and their HTTP client are made when the first delivery asks for them: httpx, its
TLS set-up and the channel modules cost about 55 ms, which a command that only reads the ledger
never pays (docs/performance.md#cli-start-up).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from opsloop.core.playbooks import Mode, parse_playbook
from opsloop.core.sources import DEFAULT_LATE, SourceSpec
from opsloop.execution.channels import Channel
from opsloop.reasoning.compiler import CompiledPlaybook, compile_playbook
from opsloop.runtime.base import Runtime
from opsloop.service.group_commit import GroupCommitter
from opsloop.service.jobs import TRAIN_MODEL
from opsloop.service.live_settings import LiveSettings
from opsloop.service.served_models import ServedModels
from opsloop.settings import Settings
from opsloop.store import playbooks as playbook_store
from opsloop.store import settings_values as settings_values_store
from opsloop.store import source_registry as source_registry_store
from opsloop.store.database import Database, Tx
from opsloop.store.secret_box import SEALED, SecretBox

if TYPE_CHECKING:
    import httpx

    from opsloop.reasoning.predictions import Predictor, TextPredictor

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


class SharedHttpClient:
    """The one HTTP client (and connection pool) the channels share, made on first use."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._closed = False

    def get(self) -> httpx.Client:
        with self._lock:
            if self._closed:
                raise RuntimeError("the HTTP client has been closed")
            if self._client is None:
                import httpx  # here, not at start-up: see the module's notes

                self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
            return self._client

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._client is not None:
                self._client.close()


@dataclass
class Context:
    base_settings: Settings
    """As the process started (environment, opsloop.toml); `settings` adds what owners saved."""
    db: Database
    runtime: Runtime
    clock: Callable[[], datetime] = utcnow
    catalog: Catalog = field(init=False)
    committer: GroupCommitter[Any, Any] | None = None
    http: SharedHttpClient = field(init=False)
    models: ServedModels = field(init=False)
    late_after: LateThresholds = field(init=False)
    live: LiveSettings = field(init=False)
    _channels: dict[str, Channel] | None = field(init=False, default=None, repr=False)
    _channels_for: Settings | None = field(init=False, default=None, repr=False)
    _channels_lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        key = self.base_settings.encryption_key
        box = SecretBox(
            key=key.get_secret_value() if key else None,
            data_dir=self.base_settings.data_dir,
            sealed_before=self._sealed_before,
        )
        self.live = LiveSettings(self.base_settings, self.db, box)
        self.catalog = Catalog(self.db)
        self.late_after = LateThresholds(self.db)
        self.models = ServedModels(
            _load_predictor, queue_retrain=self.queue_retrain, clock=lambda: self.clock()
        )
        self.http = SharedHttpClient(timeout=self.base_settings.delivery_timeout_seconds)

    def _sealed_before(self) -> bool:
        with self.db.read() as conn:
            return settings_values_store.any_sealed(conn, SEALED)

    @property
    def settings(self) -> Settings:
        """The settings in force: those of start-up with what owners saved in the browser."""
        return self.live.current()

    @property
    def secrets(self) -> SecretBox:
        """Seals and opens the secrets kept in the database."""
        return self.live.box

    @property
    def channels(self) -> dict[str, Channel]:
        """The channel of each action kind, made by the first delivery and made again when
        the settings in force change."""
        settings = self.settings
        channels = self._channels
        if channels is not None and self._channels_for is settings:
            return channels
        with self._channels_lock:
            if self._channels is None or self._channels_for is not settings:
                self.close_channels()  # the old settings' kept connections
                self._channels = self._make_channels(settings)
                self._channels_for = settings
            return self._channels

    def close_channels(self) -> None:
        """Close the connections the channels keep open between deliveries (SMTP's)."""
        for channel in (self._channels or {}).values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()

    def _make_channels(self, settings: Settings) -> dict[str, Channel]:
        # Imported here, not at start-up: see the module's notes.
        from opsloop.execution.channels.email import EmailChannel
        from opsloop.execution.channels.notify import NotifyChannel
        from opsloop.execution.channels.webhook import WebhookChannel

        client = self.http.get()
        webhook = WebhookChannel(settings, client)
        return {
            "email": EmailChannel(settings),
            "webhook": webhook,
            "notify": NotifyChannel(settings, client),
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


def _load_predictor(artifact: bytes, stored: dict[str, Any]) -> Predictor | TextPredictor:
    # The learning layer is imported with the first model a decision needs, not at start-up.
    from opsloop.learning.predictors import load_predictor

    return load_predictor(artifact, stored)
