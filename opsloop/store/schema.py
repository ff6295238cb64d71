"""The ledger's tables (SQLAlchemy Core). Alembic migrations in `store/migrations` create them;
a test checks the two never drift apart on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from opsloop.store.types import Id, Json, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

playbooks = Table(
    "playbooks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(80), nullable=False, unique=True),
    Column("mode", String(16), nullable=False),
    Column("active_version_id", Id, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

playbook_versions = Table(
    "playbook_versions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("playbook_id", Id, ForeignKey("playbooks.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("file", String(500), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("playbook_id", "version"),
    UniqueConstraint("playbook_id", "content_hash"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("source", String(100), nullable=False),
    Column("type", String(100), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("payload", Json, nullable=False),
    Column("traits", Json, nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    UniqueConstraint("source", "idempotency_key"),
    Index(None, "subject", "occurred_at"),
    Index(None, "type", "occurred_at"),
)

entities = Table(
    "entities",
    metadata,
    Column("subject", String(300), primary_key=True),
    Column("kind", String(50), nullable=False),
    Column("traits", Json, nullable=False),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Trait → the trusted source that set it: public sources may not change the protected ones.
    Column("trusted_traits", Json, nullable=True),
    Index(None, "kind"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("playbook_id", Id, ForeignKey("playbooks.id"), nullable=False),
    Column("playbook_version_id", Id, ForeignKey("playbook_versions.id"), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("choice", String(100), nullable=True),
    Column("final_choice", String(100), nullable=True),
    Column("score", Float, nullable=True),
    Column("needs_approval", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("decided_at", UtcDateTime, nullable=True),
    # An `auto` decision picked for a person to review anyway, so agreement keeps being measured.
    Column("sampled", Boolean, nullable=False, server_default=false()),
    # Inputs and explanation (with the `why` sentence), deflated against the playbook version's
    # dictionary: opsloop/store/explanations.py.
    Column("detail", LargeBinary, nullable=False),
    UniqueConstraint("event_id", "playbook_id"),
    Index(None, "playbook_id", "status", "id"),
    Index(None, "subject", "playbook_id", "created_at"),
    Index(None, "status", "id"),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Id, primary_key=True),
    Column("decision_id", Id, ForeignKey("decisions.id"), nullable=False, index=True),
    Column("verdict", String(16), nullable=False),
    Column("option", String(100), nullable=True),
    Column("reason", Text, nullable=True),
    Column("reviewer", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # The reply as the reviewer finalized it, when the option sends an AI-prepared draft.
    Column("draft", Text, nullable=True),
)

actions = Table(
    "actions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("decision_id", Id, ForeignKey("decisions.id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("request", Json, nullable=False),
    Column("guarded", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("result", Json, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    Index(None, "status", "id"),
)

action_attempts = Table(
    "action_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("action_id", Id, ForeignKey("actions.id"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("outcome", String(16), nullable=False),  # started | ok | failed | interrupted
    Column("error", Text, nullable=True),
    Column("retryable", Boolean, nullable=True),
    Column("detail", Json, nullable=True),
    UniqueConstraint("action_id", "number"),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("decision_id", Id, ForeignKey("decisions.id"), nullable=False, unique=True),
    Column("event_id", Id, ForeignKey("events.id"), nullable=True),
    Column("kind", String(16), nullable=False),  # success | failure
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("after_seconds", Float, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("action_id", Id, ForeignKey("actions.id"), nullable=False, unique=True),
    Column("decision_id", Id, ForeignKey("decisions.id"), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("title", Text, nullable=False),
    Column("notes", Text, nullable=True),
    Column("assignee", String(200), nullable=True),
    Column("due_at", UtcDateTime, nullable=True),
    Column("status", String(16), nullable=False),  # open | done
    Column("created_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    Column("completed_by", String(200), nullable=True),
    Index(None, "status", "due_at"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True),
    Column("source", String(100), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("errors", Json, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("body_size", Integer, nullable=False),
    Column("content_type", String(200), nullable=True),
    Column("file", String(500), nullable=True),
    Column("line", Integer, nullable=True),
    Column("status", String(16), nullable=False),  # held | replayed | discarded
    Index(None, "status", "id"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("verb", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(300), nullable=False),
    Column("detail", Json, nullable=False),
    # The hash chain (opsloop/store/ledger.py): SHA-256 of this row's fields and the previous
    # row's hash; and, for a row about a decision or an action, the digest of that row's
    # content as of this entry.
    Column("digest", LargeBinary(32), nullable=True),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    Index(None, "object_type", "object_id"),
)

# One row: the end of the audit hash chain. Appenders lock it (PostgreSQL) to take the next ids
# in order, so the chain's order is the id order even with many writers.
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", Id, nullable=False),
    Column("last_hash", LargeBinary(32), nullable=False),
)

# Per playbook version, the document its decisions' details are deflated against.
decision_dictionaries = Table(
    "decision_dictionaries",
    metadata,
    Column("playbook_version_id", Id, ForeignKey("playbook_versions.id"), primary_key=True),
    Column("sample", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# --- accounts ------------------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # lower case
    Column("role", String(16), nullable=False),  # owner | reviewer | viewer
    Column("password_hash", String(200), nullable=False),  # Argon2id, PHC string
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("disabled_at", UtcDateTime, nullable=True),
    Column("last_login_at", UtcDateTime, nullable=True),
)

# Browser sessions. The cookie carries the signed session key; only its SHA-256 is stored.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(300), nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("scope", String(16), nullable=False),  # read | review | admin
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the token
    Column("prefix", String(16), nullable=False),  # its first characters, to recognise it
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_by", String(200), nullable=True),
)

# Failed sign-ins, counted per email and client address over a sliding window.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index(None, "email", "ip", "at"),
    Index(None, "at"),
)

# Values generated once per installation and shared by every process: the session signing key.
instance_values = Table(
    "instance_values",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# --- learning ------------------------------------------------------------------------------

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("playbook_id", Id, ForeignKey("playbooks.id"), nullable=True),
    # What the model is for: `<playbook>:<predicts>`, or a triage model's name.
    Column("name", String(120), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # champion | challenger | retired
    Column("kind", String(32), nullable=False),  # tabular | text
    Column("algorithm", String(100), nullable=False),
    Column("features", Json, nullable=False),
    Column("metrics", Json, nullable=False),
    # The data window, row counts and label balance the model was trained on.
    Column("training", Json, nullable=False),
    Column("labels_hash", String(64), nullable=False),
    Column("artifact", LargeBinary, nullable=False),
    Column("artifact_sha256", String(64), nullable=False),
    Column("library_versions", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("name", "version"),
    Index(None, "name", "status"),
)

llm_calls = Table(
    "llm_calls",
    metadata,
    Column("id", Id, primary_key=True),
    Column("decision_id", Id, ForeignKey("decisions.id"), nullable=True, index=True),
    Column("purpose", String(32), nullable=False),  # classify | draft | summarize
    Column("model", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("status", String(16), nullable=False),  # ok | failed
    Column("error", Text, nullable=True),
    Column("prompt_tokens", Integer, nullable=True),
    Column("completion_tokens", Integer, nullable=True),
    Column("cost", Float, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

llm_cache = Table(
    "llm_cache",
    metadata,
    Column("request_hash", String(64), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("response", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

backtests = Table(
    "backtests",
    metadata,
    Column("id", Id, primary_key=True),
    Column("playbook", String(80), nullable=False, index=True),
    Column("content_hash", String(64), nullable=False),
    Column("since", UtcDateTime, nullable=False),
    Column("until", UtcDateTime, nullable=False),
    Column("report", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
)

# --- perception: sources, their runs, contracts, identities ----------------------------------

sources = Table(
    "sources",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("spec", Json, nullable=False),  # the definition as applied, without its secret
    Column("secret", Text, nullable=True),  # never shown, never logged
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
    # Pulled sources: the cursor after the last committed batch, and when to sync next.
    Column("checkpoint", Json, nullable=True),
    Column("checkpoint_at", UtcDateTime, nullable=True),
    Column("next_sync_at", UtcDateTime, nullable=True),
)

source_runs = Table(
    "source_runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("source", String(100), nullable=False),
    Column("mode", String(16), nullable=False),  # sync | backfill
    Column("status", String(16), nullable=False),  # running | ok | failed
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("heartbeat_at", UtcDateTime, nullable=False),
    Column("rows_in", Integer, nullable=False),
    Column("events_stored", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("ignored", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("checkpoint_before", Json, nullable=True),
    Column("checkpoint_after", Json, nullable=True),
    Index(None, "source", "id"),
)

source_stats = Table(
    # Daily counters per source for the quality report, added to in the ingest transaction.
    "source_stats",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("received", Integer, nullable=False),
    Column("stored", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("ignored", Integer, nullable=False),
    Column("late", Integer, nullable=False),
)

contracts = Table(
    "contracts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("spec", Json, nullable=False),
    Column("yaml", Text, nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
    Column("applied_by", String(200), nullable=False),
    Column("active", Boolean, nullable=False),
    UniqueConstraint("event_type", "version"),
    Index(None, "active"),
)

identities = Table(
    # Identity stitching: an anonymous visitor's subject joins the subject they became.
    "identities",
    metadata,
    Column("alias", String(300), primary_key=True),  # visitor:3f2a...
    Column("subject", String(300), nullable=False),  # lead:42
    Column("source", String(100), nullable=False),
    Column("linked_at", UtcDateTime, nullable=False),
    Index(None, "subject"),
)


# --- in-process runtime --------------------------------------------------------------------

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("payload", Json, nullable=False),
    Column("ordering_key", String(300), nullable=True),
    Column("status", String(16), nullable=False),  # todo | doing | failed
    Column("attempts", Integer, nullable=False),
    Column("run_at", UtcDateTime, nullable=False),
    Column("locked_by", String(64), nullable=True),
    Column("locked_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # Claims walk todo jobs in id order and stop at the batch size; an index on run_at would
    # make the database read and sort every due job first.
    Index(None, "status", "id"),
    Index(None, "ordering_key", "id"),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
)

playbook_runs = Table(
    # One row per run of a scheduled playbook: (playbook, due time) is claimed once, so a
    # restart or a second process never runs a period twice (opsloop/service/decide/schedules.py).
    "playbook_runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("playbook_id", Id, ForeignKey("playbooks.id"), nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # queued | done
    Column("subjects", Integer, nullable=False),  # subjects looked at
    Column("selected", Integer, nullable=False),
    Column("decided", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    UniqueConstraint("playbook_id", "due_at"),
)

sequences = Table(
    # A chosen option's `steps`, run one step at a time (opsloop/service/deliver/sequences.py).
    # `position` is the next step's path ("2", "3.then.0"); `plan` the option as it was when
    # the sequence started, so a new playbook version never changes a running sequence.
    "sequences",
    metadata,
    Column("id", Id, primary_key=True),
    Column("decision_id", Id, ForeignKey("decisions.id"), nullable=False, unique=True),
    Column("playbook", String(80), nullable=False),
    Column("option", String(100), nullable=False),
    Column("subject", String(300), nullable=False),
    Column(
        "status", String(16), nullable=False
    ),  # active | waiting | completed | stopped | skipped
    Column("position", String(200), nullable=True),
    Column("plan", Json, nullable=False),
    Column("next_at", UtcDateTime, nullable=True),  # a wait's end, a wait_for's deadline
    Column("steps_done", Integer, nullable=False),
    Column("stop_reason", Text, nullable=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Index(None, "subject", "status"),
    Index(None, "status", "next_at"),
)

review_digests = Table(
    # One digest per recipient per period: claimed before it is sent, so two processes (or a
    # restart) never send the same period twice (opsloop/service/review/deadlines.py).
    "review_digests",
    metadata,
    Column("id", Id, primary_key=True),
    Column("recipient", String(320), nullable=False),  # an email address, or channel:<name>
    Column("period_start", UtcDateTime, nullable=False),
    Column("waiting", Integer, nullable=False),
    Column("overdue", Integer, nullable=False),
    Column("sent_at", UtcDateTime, nullable=False),
    Column("error", Text, nullable=True),
    UniqueConstraint("recipient", "period_start"),
)

weekly_reports = Table(
    # One weekly report per recipient per ISO week: claimed before it is sent, so two processes
    # (or a restart) never send the same week twice (opsloop/service/learn/reports.py).
    "weekly_reports",
    metadata,
    Column("id", Id, primary_key=True),
    Column("recipient", String(320), nullable=False),
    Column("week", String(10), nullable=False),  # the ISO week, 2026-W47
    Column("sent_at", UtcDateTime, nullable=False),
    Column("error", Text, nullable=True),
    # '' for the business's report; a playbook's name for its own (`report: to:`).
    Column("scope", String(80), nullable=False, server_default=""),
    UniqueConstraint("recipient", "week", "scope"),
)

report_summaries = Table(
    # The language model's summary of a week's report, written when the report was first
    # sent, so the Reports page shows what the email said. `scope`: '' for the business's
    # report, else the playbook whose own report it is (`report: to:`).
    "report_summaries",
    metadata,
    Column("week", String(10), primary_key=True),
    Column("scope", String(80), primary_key=True, server_default=""),
    Column("text", Text, nullable=False),
    Column("model", String(200), nullable=False),
    Column("written_at", UtcDateTime, nullable=False),
)

settings_values = Table(
    # Settings an owner saved in the browser (opsloop/service/live_settings.py): one JSON value
    # per key; a secret's value is sealed with the data folder's key (opsloop/store/secret_box.py).
    # Environment variables and opsloop.toml win over these.
    "settings_values",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(320), nullable=False),
)

job_errors = Table(
    # PostgreSQL: the last error of a Procrastinate job that failed, by Procrastinate's job id
    # (it keeps only the status); opsloop/runtime/procrastinate.py. Unused on SQLite.
    "job_errors",
    metadata,
    Column("job_id", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(64), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("interval_seconds", Float, nullable=False),
    Column("next_run_at", UtcDateTime, nullable=False),
)

documents = Table(
    # The business's documents (opsloop/service/ask/documents.py): one row per name in a
    # collection; adding the same name again makes the next version and replaces its passages.
    "documents",
    metadata,
    Column("id", Id, primary_key=True),
    Column("collection", String(100), nullable=False),
    Column("name", String(500), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),  # SHA-256 of the bytes as added
    Column("media_type", String(100), nullable=False),
    Column("source", String(200), nullable=False),  # upload | cli | folder:<path> | api
    Column("size", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(320), nullable=False),
    UniqueConstraint("collection", "name"),
)

document_passages = Table(
    # A document's text cut along its headings (opsloop/knowledge/chunking.py); `ordinal` is
    # the passage's place in the document, the `#p3` of its link.
    "document_passages",
    metadata,
    Column("id", Id, primary_key=True),
    Column("document_id", Id, ForeignKey("documents.id"), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("heading", Text, nullable=False),
    Column("text", Text, nullable=False),
    UniqueConstraint("document_id", "ordinal"),
)

questions = Table(
    # Every question asked of the operations chat (opsloop/service/ask/chat.py): who asked,
    # how it was answered (`router` or `llm`), the tools called with their arguments, the
    # records cited, and the language model's calls, tokens and cost for it.
    "questions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("asked_at", UtcDateTime, nullable=False),
    Column("asked_by", String(320), nullable=False, index=True),  # an email or token:NAME
    Column("permission", String(16), nullable=False),  # read | review | admin
    Column("question", Text, nullable=False),
    Column("route", String(16), nullable=False),  # router | llm
    Column("answer", Text, nullable=False),
    Column("tools", Json, nullable=False),
    Column("citations", Json, nullable=False),
    Column("llm_calls", Integer, nullable=False),
    Column("prompt_tokens", Integer, nullable=True),
    Column("completion_tokens", Integer, nullable=True),
    Column("cost", Float, nullable=True),
    Column("error", Text, nullable=True),
)
