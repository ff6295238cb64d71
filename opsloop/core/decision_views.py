"""Decisions as readers see them: a row of a list (`GET /api/decisions`, `opsloop decisions`) and
a decision's whole story (`GET /api/decisions/{id}`, `opsloop decisions ID`), with the reviews and
outcome the store reads for it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict

from opsloop.core.action_views import ActionDetail
from opsloop.core.audit_entries import AuditEntry
from opsloop.core.decisions import DecisionStatus, Verdict
from opsloop.core.event_views import EventView
from opsloop.core.explanations import Explanation
from opsloop.core.playbooks import Mode


class DecisionFields(TypedDict):
    """A decision's own fields, those of `opsloop.core.decisions.Decision`, as a dict."""

    id: int
    playbook: str
    playbook_version: int
    subject: str
    event_id: int
    mode: Mode
    status: DecisionStatus
    choice: str | None
    final_choice: str | None
    """What was acted on: the choice, or a reviewer's override; None until decided."""
    score: float | None
    needs_approval: bool
    created_at: datetime
    decided_at: datetime | None
    why: str
    sampled: bool
    """An `auto` decision picked for a person to review after the fact."""


class DecisionSummary(DecisionFields):
    """A decision in a list."""

    reasons: str
    """The scorecard lines and table rows that gave points (else `why`)."""


class ReviewRow(TypedDict):
    """One `reviews` row: a person's verdict on a decision."""

    id: int
    decision_id: int
    verdict: Verdict
    option: str | None
    """The option chosen instead, for an override."""
    reason: str | None
    reviewer: str
    created_at: datetime
    draft: str | None
    """The reply as the reviewer finalized it, when the option sends an AI-prepared draft."""


class OutcomeRow(TypedDict):
    """One `outcomes` row: what happened after a decision."""

    id: int
    decision_id: int
    event_id: int | None
    """The success or failure event; None when the window closed without one."""
    kind: Literal["success", "failure"]
    occurred_at: datetime
    after_seconds: float
    """From the triggering event to the outcome."""
    created_at: datetime


class InputEvent(TypedDict):
    id: int
    type: str
    payload: dict[str, Any]


class DecisionInputs(TypedDict, total=False):
    """What the playbook decided on, as it was then (a failed decision keeps only `event`)."""

    features: dict[str, Any]
    """Feature values by name."""
    entity: dict[str, Any]
    """The subject's traits, free-form."""
    event: InputEvent
    version: int


class DecisionRecord(DecisionFields):
    """A decision with what it decided on and why."""

    explanation: Explanation
    inputs: DecisionInputs


class DecisionDetail(DecisionRecord):
    """Everything about one decision: the decision, its triggering event, reviews, actions
    with every delivery attempt, the outcome, and the audit trail of the decision and its
    actions."""

    trigger: EventView | None
    """None when retention has deleted the event."""
    reviews: list[ReviewRow]
    actions: list[ActionDetail]
    outcome: OutcomeRow | None
    audit: list[AuditEntry]
    """Oldest first, without the ledger's bookkeeping entries."""
