"""Settings: one typed object, read from `OPSLOOP_*` variables and an optional `opsloop.toml`.

Built where the program starts (the CLI entry point, `create_app`), never at import time.
Every field is documented in docs/configuration.md; a test keeps the two in step.

Any field can also be read from a file: `OPSLOOP_SMTP_PASSWORD_FILE=/run/secrets/smtp` sets
`smtp_password` from that file's content (trailing newline removed), which is how container
secrets are usually handed over.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from opsloop.core.durations import parse_duration
from opsloop.core.sources import RESERVED_NAMES

ENV_PREFIX = "OPSLOOP_"


def _duration(value: Any) -> Any:
    # Written as people write durations (`10m`, `24h`); a number is seconds.
    return parse_duration(value) if isinstance(value, str) else value


class SourceSettings(BaseModel):
    """How `/hooks/{source}` accepts one sender's webhooks (docs/configuration.md)."""

    secret: SecretStr | None = None
    """When set, every delivery must carry a valid HMAC-SHA256 signature (see `signed`)."""
    signature_header: str = "X-OpsLoop-Signature"
    """Header holding the hex signature, optionally prefixed `sha256=` (GitHub style)."""
    signed: Literal["timestamp", "body"] = "body"
    """What the signature covers: the raw body (the default here, as before), or
    `"{timestamp}.{body}"` with the Unix time in `timestamp_header`, within `tolerance`."""
    timestamp_header: str = "X-OpsLoop-Timestamp"
    tolerance: timedelta = timedelta(minutes=5)
    allow_unsigned: bool = False
    """Without a secret, accept deliveries nobody signed (otherwise every one gets 401)."""
    dedupe_window: timedelta = timedelta(hours=24)
    """Events without an id of their own are stored once by their content within this
    window; `0s` turns it off."""
    type: str | None = None
    """Event type for bodies that are not OpsLoop events, e.g. `form.submitted`."""
    subject: str | None = None
    """Expression over the body giving the subject, e.g. `'lead:' + data.email`."""
    idempotency_key: str | None = None
    """Expression over the body giving a delivery id, e.g. `event_id`."""

    _durations = field_validator("tolerance", "dedupe_window", mode="before")(_duration)

    @property
    def maps_body(self) -> bool:
        return self.type is not None or self.subject is not None


class WebhookEndpoint(BaseModel):
    url: str
    secret: SecretStr | None = None
    """Standard Webhooks secret (`whsec_...`); defaults to `webhook_secret`."""


class LLMSettings(BaseModel):
    """An OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM, llama.cpp).

    Optional: playbooks that do not use a language model never read these."""

    url: str | None = None
    """Base URL of the API, e.g. `http://localhost:11434/v1` (Ollama)."""
    model: str | None = None
    api_key: SecretStr | None = None
    """Sent as a bearer token; local servers usually need none."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    """Extra attempts after a timeout, a refused connection, a 429 or a 5xx."""
    input_price_per_million: float | None = Field(default=None, ge=0)
    """Price of one million prompt tokens, for the cost column of the LLM call ledger."""
    output_price_per_million: float | None = Field(default=None, ge=0)
    cache: bool = True
    """Answer a repeated identical request from the response cache instead of the model."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        toml_file="opsloop.toml",
        extra="forbid",
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("opsloop-data")
    database_url: str | None = None
    """SQLAlchemy URL; empty means the SQLite file `<data_dir>/opsloop.db`."""
    auto_migrate: bool = True
    playbooks_dir: Path | None = None
    """YAML playbooks applied at start-up; empty means `<data_dir>/playbooks`."""
    documents_dir: Path | None = None
    """A folder whose files (Markdown, HTML, PDF, text) are kept as the `folder` collection of
    documents, checked every 5 minutes; empty means `<data_dir>/documents` when it exists."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    timezone: str = "UTC"
    """The business's time zone (`Europe/Berlin`): scheduled playbooks without a `timezone`
    of their own run by its clock."""

    host: str = "127.0.0.1"
    port: int = 8000

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest body of any other request (playbooks, contracts, sources, forms): larger ones
    get 413 before they are read. The ingest routes keep `max_body_bytes`."""
    max_batch_events: int = Field(default=1000, ge=1)
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    protected_traits: list[str] = Field(default_factory=lambda: ["email", "phone"])
    """Traits that say where actions are sent: once a trusted source set one, a public source
    (a tracking write key, an `allow_unsigned` webhook) cannot change or remove it."""

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "opsloop@localhost"
    smtp_timeout_seconds: float = 10.0

    webhook_secret: SecretStr | None = None
    """Standard Webhooks signing secret (`whsec_` + base64) for outbound webhooks."""
    webhook_endpoints: dict[str, WebhookEndpoint] = Field(default_factory=dict)
    notify_url: str | None = None
    """Slack-compatible incoming-webhook URL used by `notify` actions with no channel."""
    notify_channels: dict[str, str] = Field(default_factory=dict)
    delivery_timeout_seconds: float = 10.0

    public_url: str | None = None
    """The address people open OpsLoop at (`https://ops.example.com`), for links in messages
    OpsLoop sends them; empty means `http://<host>:<port>`."""
    review_digest_minutes: int = Field(default=60, ge=0)
    """How often reviewers are told, in one message each, what waits for them; 0 turns the
    digest off."""
    review_digest_channel: str | None = None
    """A chat channel of `notify_channels` that gets the digest too (the team's channel)."""
    weekly_report: bool = True
    """Whether the owners (and `weekly_report_recipients`) get the last week's report by email
    each Monday (opsloop/service/learn/reports.py)."""
    weekly_report_recipients: list[str] = Field(default_factory=list)
    """More addresses that get the weekly report, besides the owners."""

    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_backoff_base_seconds: float = Field(default=10.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=3600.0, gt=0)

    serve_workers: bool = True
    """Whether `opsloop serve` also runs background jobs; off (`--no-worker`) for web-only
    processes beside `opsloop worker` ones."""
    runtime: Literal["auto", "inprocess", "procrastinate"] = "auto"
    """Where background jobs run: `auto` is Procrastinate on PostgreSQL (any number of
    `opsloop worker` processes share the work) and worker threads of the server on SQLite."""
    worker_threads: int = Field(default=4, ge=1)
    """Jobs run at once by each process (threads; Procrastinate's `concurrency`)."""
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    worker_stale_seconds: float = Field(default=60.0, gt=0)

    llm: LLMSettings = Field(default_factory=LLMSettings)
    """The optional language model: `OPSLOOP_LLM__URL`, `OPSLOOP_LLM__MODEL`, ..."""

    secret_key: SecretStr | None = None
    """Signs browser sessions. Empty: a random key generated once and kept in the database,
    so every process and restart shares it."""
    encryption_key: SecretStr | None = None
    """Seals the secrets kept in the database (sources' secrets, passwords saved in Settings).
    Empty: a key made once in `<data_dir>/secret.key`. Set it when processes on more than one
    machine share the database."""
    session_days: int = Field(default=14, ge=1)
    """A browser session ends this many days after signing in."""
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    """After `login_max_failures` failed sign-ins for one email from one address within this
    window, further attempts get 429 until the oldest failure leaves the window."""

    # Retention (opsloop/service/retention.py, docs/ledger.md). Decisions, their explanations,
    # reviews, actions and the audit trail are kept forever. `forever` (or empty) keeps.
    retain_events_days: int | None = Field(default=None, ge=1)
    """Delete events older than this that no decision or outcome refers to (never those an
    active playbook's features still read)."""
    retain_signal_bodies_days: int | None = Field(default=None, ge=0)
    """Empty the raw bodies of quarantined items that were replayed or discarded and arrived
    more than this long ago (the item, its reason and its size stay)."""
    retain_failed_jobs_days: int | None = Field(default=30, ge=0)
    """Delete background jobs that gave up this long ago (finished jobs are deleted at once)."""
    retain_llm_cache_days: int | None = Field(default=None, ge=0)
    """Drop cached language-model answers older than this."""
    retention_interval_minutes: int = Field(default=60, ge=1)
    """How often the retention job runs (purge, incremental vacuum, WAL checkpoint)."""
    retention_batch_rows: int = Field(default=500, ge=1)
    """Rows deleted per transaction, so a purge never holds the write lock for long."""

    @field_validator(
        "retain_events_days",
        "retain_signal_bodies_days",
        "retain_failed_jobs_days",
        "retain_llm_cache_days",
        mode="before",
    )
    @classmethod
    def _forever(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "forever", "none"):
            return None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from opsloop.core.schedules import parse_zone

        return parse_zone(value).key

    @field_validator("sources")
    @classmethod
    def _lowercase_sources(cls, value: dict[str, SourceSettings]) -> dict[str, SourceSettings]:
        # Environment variable names are case-insensitive, so source names are too.
        lowered = {name.lower(): config for name, config in value.items()}
        taken = sorted(RESERVED_NAMES & set(lowered))
        if taken:
            raise ValueError(f"the source name {taken[0]!r} is used by OpsLoop itself")
        return lowered

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 32:
            raise ValueError(
                "must be at least 32 characters; make one with `openssl rand -base64 48`"
            )
        return value

    @field_validator("smtp_host", "smtp_username", "smtp_from")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        # These end up in the SMTP conversation and the From: header: a line break would
        # let a value add commands or headers of its own.
        if value is not None and any(ord(c) < 32 or c == "\x7f" for c in value):
            raise ValueError("must be one line, without control characters")
        return value

    @field_validator("smtp_host")
    @classmethod
    def _host_name(cls, value: str) -> str:
        if not value or len(value) > 253 or " " in value:
            raise ValueError(f"{value[:40]!r} is not a host name such as smtp.example.com")
        return value

    @field_validator("smtp_from")
    @classmethod
    def _sender(cls, value: str) -> str:
        from email.utils import parseaddr

        if "@" not in parseaddr(value)[1]:
            raise ValueError(f"{value[:60]!r} is not an address such as Shop <hello@shop.example>")
        return value

    @field_validator("public_url", "notify_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if not value:
            return None
        return _http_url(value)

    @field_validator("notify_channels")
    @classmethod
    def _channel_urls(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: _http_url(url) for name, url in value.items()}

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("data_dir", "playbooks_dir", "documents_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _procrastinate_needs_postgresql(self) -> Settings:
        if self.runtime == "procrastinate" and self.resolved_database_url.startswith("sqlite"):
            raise ValueError(
                "runtime: `procrastinate` runs on PostgreSQL; set OPSLOOP_DATABASE_URL to a "
                "postgresql+psycopg:// URL, or use `auto` (threads on SQLite)"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        secrets = {
            "webhook_secret": self.webhook_secret,
            "smtp_password": self.smtp_password,
            "llm.api_key": self.llm.api_key,
            "secret_key": self.secret_key,
            "encryption_key": self.encryption_key,
        }
        for name, secret in secrets.items():
            if secret is not None and secret.get_secret_value().lower() in PLACEHOLDERS:
                raise ValueError(f"{name} is a placeholder; set a real secret in production")
        return self

    @property
    def link_base(self) -> str:
        """Where links in messages to people point."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'opsloop.db').resolve()}"

    @property
    def resolved_playbooks_dir(self) -> Path:
        return self.playbooks_dir or self.data_dir / "playbooks"

    @property
    def resolved_documents_dir(self) -> Path:
        return self.documents_dir or self.data_dir / "documents"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            FileVariablesSource(settings_cls),
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()),
        )


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
        raise ValueError(f"{value[:60]!r} is not an http:// or https:// URL")
    return value


PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "whsec_changeme", "xxx"}


def _toml_path() -> Path:
    return Path(os.environ.get(f"{ENV_PREFIX}CONFIG", "opsloop.toml"))


class FileVariablesSource(PydanticBaseSettingsSource):
    """`OPSLOOP_<FIELD>_FILE=path` sets a field from the file's content; for a fixed group of
    settings (`llm`), `OPSLOOP_<GROUP>__<KEY>_FILE` sets one key."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        text = _read_file_variable(field_name)
        if text is None:
            return None, field_name, False
        if self.field_is_complex(field):
            # Nested settings (sources, endpoints, channels) are JSON in the file, as in the
            # environment variable.
            return self.decode_complex_value(field_name, field, text), field_name, True
        return text, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
            group = field.annotation
            if isinstance(group, type) and issubclass(group, BaseModel):
                for key in group.model_fields:
                    text = _read_file_variable(f"{name}__{key}")
                    if text is not None:
                        values.setdefault(name, {})[key] = text
        return values


def _read_file_variable(name: str) -> str | None:
    variable = f"{ENV_PREFIX}{name.upper()}_FILE"
    path = os.environ.get(variable)
    if not path:
        return None
    try:
        return Path(path).read_text().rstrip("\n")
    except OSError as exc:
        raise ValueError(f"{variable}: cannot read {path}: {exc}") from None
