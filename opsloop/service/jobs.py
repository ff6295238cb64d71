"""The kinds of background job the service runs, by name: the one place these strings live.

A kind is stored with every queued job, so its name outlives a release: renaming one strands
the jobs already queued under the old name. The stage that enqueues a kind imports its name
from here, and so does `OpsLoop`, which registers every handler without importing the stages
(a handler imports its stage when a job of its kind runs; docs/performance.md#cli-start-up).
It imports nothing of ours: it is shared plumbing, which may not import a stage.
"""

from __future__ import annotations

DELIVER = "deliver"
"""Send one action through its channel (payload: `action_id`); `service/deliver/outbox.py`."""

DECIDE_WITH_LLM = "decide_with_llm"
"""Decide one event for a playbook that asks the language model (payload: `playbook`,
`event_id`); `service/decide/llm_decisions.py`."""

DECIDE_ABSENCE = "decide_absence"
"""Decide one absence window when it closes (payload: `playbook`, `event_id` of the `after`
event); `service/decide/absences.py`."""

SCHEDULES_DUE = "schedules_due"
"""Periodic, every minute: claim and queue the scheduled playbooks' due runs;
`service/decide/schedules.py`."""

RUN_SCHEDULE = "run_schedule"
"""One run of a scheduled playbook (payload: `playbook`, `run_id`)."""

SEQUENCE_STEP = "sequence_step"
"""One step of a sequence (payload: `sequence_id`, `position`); `service/deliver/sequences.py`."""

REVIEW_DEADLINE = "review_deadline"
"""A waiting decision's review deadline passed (payload: `decision_id`, `then`);
`service/review/deadlines.py`."""

REVIEW_DIGEST = "review_digest"
"""Periodic (every `review_digest_minutes`): one message per reviewer saying what waits."""

WEEKLY_REPORT = "weekly_report"
"""Periodic, every hour: email the last ended ISO week's report to the owners, once per
(recipient, week); `service/learn/reports.py`."""

SYNC_DUE = "sync_due_sources"
"""Periodic, every minute: queue a `SYNC_SOURCE` job per pulled source that is due."""

SYNC_SOURCE = "sync_source"
"""Sync one pulled source (payload: `source`); `service/ingest/syncing.py`."""

TRAIN_MODEL = "train_model"
"""Train one playbook's model (payload: `playbook`, `reason`); queued when a served artifact
is rejected."""

RETRAIN_DUE = "retrain_models"
"""Periodic, every 10 minutes: retrain the models whose playbook says `retrain:` and whose
time came; `service/learn/training.py`."""

CLOSE_OUTCOMES = "close_outcome_windows"
"""Periodic, every 10 minutes: close the outcome windows that have passed."""

DOCUMENTS_SYNC = "documents_sync"
"""Periodic, every 5 minutes: the documents folder mirrored into the `folder` collection;
`service/ask/documents.py`."""

RETENTION = "retention"
"""Periodic (every `retention_interval_minutes`): purge what the retention settings let go;
`service/retention.py`."""

# --- queues: one per stage, so `opsloop worker --queues deliver` runs deliveries only ---------

QUEUES: dict[str, str] = {
    DELIVER: "deliver",
    REVIEW_DEADLINE: "review",
    REVIEW_DIGEST: "review",
    WEEKLY_REPORT: "learn",
    SEQUENCE_STEP: "deliver",
    DECIDE_WITH_LLM: "decide",
    DECIDE_ABSENCE: "decide",
    SCHEDULES_DUE: "decide",
    RUN_SCHEDULE: "decide",
    SYNC_DUE: "ingest",
    SYNC_SOURCE: "ingest",
    TRAIN_MODEL: "learn",
    RETRAIN_DUE: "learn",
    CLOSE_OUTCOMES: "learn",
    RETENTION: "maintenance",
    DOCUMENTS_SYNC: "ingest",
}
"""The queue of each kind (PostgreSQL; on SQLite every process runs every queue)."""
