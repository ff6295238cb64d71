"""A backtest's report: what a playbook version would have decided over stored history
(opsloop/learning/backtest.py builds it, the service times and keeps it, the store reads it back;
`POST /api/backtests`, `opsloop backtest` and the playbook page show it). Times are ISO 8601
text, so the report reads the same fresh and back from the database's JSON."""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict


class VersionRef(TypedDict):
    label: str
    """For people: `draft`, `version 3`."""
    number: int | None
    """None for a draft."""
    content_hash: str


class ComparedWith(TypedDict):
    """The active version the report compares with."""

    label: str
    number: int | None
    same_as_version: bool
    """The replayed version is the active one."""


class ReportPeriod(TypedDict):
    since: str
    until: str
    data_end: str | None
    """When the latest event read occurred."""


class Counts(TypedDict):
    events_scanned: int
    triggers: int
    skipped_by_cooldown: int
    decisions: int
    held_for_review: int
    failed: int


class ChoiceShare(TypedDict):
    choice: str
    label: str
    decisions: int
    share: float | None


class Agreeing(TypedDict):
    """A replay's choices against the options people said were right."""

    compared: int
    not_decided: int
    """Reviewed decisions the replay made no decision for."""
    agreed: int
    rate: float | None
    lower_bound: float | None
    """The Wilson 95% lower bound of `rate`."""


class Agreement(Agreeing):
    reviewed: int
    rejected: int
    """Rejections name no option, so they are counted apart."""
    active: NotRequired[Agreeing]
    """The active version's replay, when there is one."""


Transition = TypedDict("Transition", {"from": str | None, "to": str | None, "count": int})
"""How many decisions went from one choice to another (a functional TypedDict: `from` is a
keyword)."""


class ChangedDecision(TypedDict):
    subject: str
    event_id: int
    occurred_at: str
    old_choice: str | None
    new_choice: str | None
    old_score: float | None
    new_score: float | None
    old_points: float
    new_points: float
    score_difference: float | None


class Changes(TypedDict):
    """Decision by decision against the active version replayed over the same events."""

    method: str
    compared: int
    changed: int
    score_changed: int
    newly_decided: int
    no_longer_decided: int
    transitions: list[Transition]
    """The commonest first."""
    examples: list[ChangedDecision]


class ChoiceScore(TypedDict):
    choice: str | None
    score: float | None


class LiveExample(TypedDict):
    event_id: int
    subject: str
    stored: ChoiceScore
    replayed: ChoiceScore


class LiveRecord(TypedDict):
    """How many of the active version's stored decisions its replay reproduces."""

    version: int | None
    stored: int
    reproduced: int
    different: int
    not_replayed: int
    examples: list[LiveExample]


class ChoiceOutcome(TypedDict):
    choice: str
    decisions: int
    success: int
    failure: int
    open: int
    """Windows that had not closed by the end of the data."""
    success_rate: float | None


class Outcomes(TypedDict):
    success: list[str]
    """The playbook's success event types."""
    failure: list[str]
    within: str
    """The outcome window, as written (`14d`)."""
    by_choice: list[ChoiceOutcome]


class ErrorCount(TypedDict):
    where: str
    message: str
    count: int


class Errors(TypedDict):
    decisions: int
    """Decisions where an expression failed."""
    failed: int
    """Decisions that failed outright (no choice)."""
    by_message: list[ErrorCount]


class Timings(TypedDict):
    replay_seconds: float
    compare_seconds: float
    read_seconds: NotRequired[float]
    prepare_seconds: NotRequired[float]
    total_seconds: NotRequired[float]
    """The last three are the service's: reading and preparing the history, and all of it."""


class SequenceStepCount(TypedDict):
    step: str
    """The step's label, or its action in words."""
    would_send: int
    median_after_hours: float
    """Median time from the trigger to this send."""


class SentStep(TypedDict):
    step: str
    at: str


class SequenceTimeline(TypedDict):
    subject: str
    started_at: str
    sent: list[SentStep]
    ended: str
    """completed | stopped | running (past the end of the data)"""
    ended_at: str | None


class SequenceReplay(TypedDict):
    """What an option's sequence would have sent over the period, and when it would have
    stopped (opsloop/learning/replay_sequences.py)."""

    option: str
    started: int
    sends: list[SequenceStepCount]
    completed: int
    stopped: int
    """Ended by a `stop_when` event: the subject acted."""
    running_at_data_end: int
    median_hours_to_stop: float | None
    examples: list[SequenceTimeline]


class BacktestReport(TypedDict):
    playbook: str
    version: VersionRef
    compared_with: ComparedWith | None
    """None when the playbook has no active version."""
    period: ReportPeriod
    counts: Counts
    choices: list[ChoiceShare]
    agreement: Agreement
    changes: Changes | None
    live_record: LiveRecord | None
    outcomes: Outcomes | None
    """None when the playbook declares no outcome."""
    errors: Errors
    sequences: NotRequired[list[SequenceReplay]]
    """For options with `steps`: what their sequences would have sent and when they stopped."""
    notes: NotRequired[list[str]]
    timings: Timings


class BacktestRun(BacktestReport):
    """A report as the backtest that made it returns it."""

    id: int | None
    """The kept report's id; None when it was not kept."""


class SavedBacktest(BacktestReport):
    """A kept report as read back (`GET /api/backtests/{id}`)."""

    id: int
    created_at: datetime
    created_by: str


class BacktestRow(TypedDict):
    """One `backtests` row."""

    id: int
    playbook: str
    content_hash: str
    since: datetime
    until: datetime
    report: BacktestRun
    created_at: datetime
    created_by: str
