"""Decisions, reviews and actions as the rest of the system sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from opsloop.core.playbooks import Mode

DecisionStatus = Literal["logged", "pending", "approved", "overridden", "rejected", "auto", "error"]
DECISION_STATUSES: tuple[DecisionStatus, ...] = (
    "logged",
    "pending",
    "approved",
    "overridden",
    "rejected",
    "auto",
    "error",
)
# A decision is acted on (its option's actions run) in these statuses.
ACTED_STATUSES: frozenset[str] = frozenset({"approved", "overridden", "auto"})
REVIEWED_STATUSES: frozenset[str] = frozenset({"approved", "overridden", "rejected"})

Verdict = Literal["approve", "override", "reject"]
VERDICTS: tuple[Verdict, ...] = ("approve", "override", "reject")

ActionStatus = Literal["pending", "delivering", "retrying", "delivered", "dead", "cancelled"]
ACTION_STATUSES: tuple[ActionStatus, ...] = (
    "pending",
    "delivering",
    "retrying",
    "delivered",
    "dead",
    "cancelled",
)


def initial_status(mode: Mode, *, needs_approval: bool, acts: bool = True) -> DecisionStatus:
    """Where a fresh decision starts. Guardrails hold in every mode: `auto` still waits for a
    person when the chosen option is guarded, and `shadow` never acts at all. In `recommend`,
    a choice that does nothing (`acts=False`: an option without actions, in a playbook that does
    not learn from reviews) has nothing for a person to approve: it is `logged` at once rather
    than waiting in the inbox, unless something holds it for a person (a guardrail, an upset
    message)."""
    if mode == "shadow":
        return "logged"
    if mode == "auto" and not needs_approval:
        return "auto"
    if mode == "recommend" and not acts and not needs_approval:
        return "logged"
    return "pending"


@dataclass(frozen=True, slots=True)
class DecisionDraft:
    """What reasoning produced for one playbook and one triggering event, before it is stored."""

    playbook: str
    subject: str
    event_id: int
    mode: Mode
    choice: str | None
    score: float | None
    status: DecisionStatus
    needs_approval: bool
    inputs: dict[str, Any]
    explanation: dict[str, Any]
    sampled: bool = False
    """An `auto` decision picked for a person to review after the fact."""


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    verdict: Verdict
    reviewer: str
    option: str | None = None
    reason: str | None = None
    draft: str | None = None
    """The reply as the reviewer finalized it, for an option that sends `{{ draft }}`."""


@dataclass(frozen=True, slots=True)
class Decision:
    id: int
    playbook: str
    playbook_version: int
    subject: str
    event_id: int
    mode: Mode
    status: DecisionStatus
    choice: str | None
    final_choice: str | None
    score: float | None
    needs_approval: bool
    created_at: datetime
    decided_at: datetime | None
    why: str
    explanation: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    sampled: bool = False
