"""What the review stage shows: the inbox (the inbox page, `opsloop review`), and the evidence a
playbook's autonomy rests on (`GET /api/playbooks/{name}/readiness`, `opsloop playbook
readiness`, `promote`)."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from opsloop.core.decisions import DecisionStatus
from opsloop.core.playbooks import Mode
from opsloop.service.review.previews import ActionPreview


class ReadinessFigures(TypedDict):
    """How often reviewers agreed with the playbook, judged on the lower bound
    (`opsloop.learning.readiness.Readiness`, as a dict)."""

    ready: bool
    reviewed: int
    agreed: int
    overridden: int
    rejected: int
    agreement: float | None
    """None before any review."""
    lower_bound: float
    """The Wilson 95% lower bound of the agreement: what the target is judged on."""
    target: float
    min_reviews: int
    window: int
    """How many of the latest reviews are counted."""
    why: str


class ReadinessReport(ReadinessFigures):
    """A playbook's readiness for `auto`, with its current mode."""

    playbook: str
    mode: Mode


class ModeChange(TypedDict):
    """A playbook's mode after `change_mode`, and the evidence at that moment."""

    playbook: str
    mode: Mode
    changed: bool
    """False when it was in that mode already."""
    readiness: ReadinessFigures


class DraftSource(TypedDict):
    """A passage of the business's documents given to the AI for its draft; `n` is the number
    the draft cites it by ([2]), `cited` whether it did."""

    n: int
    cited: bool
    document_id: int
    document_name: str
    heading: str
    excerpt: str
    link: str


class InboxItem(TypedDict):
    """One decision as the inbox shows it, with what a reviewer needs to act on it."""

    id: int
    playbook: str
    playbook_version: int
    subject: str
    status: DecisionStatus
    mode: Mode
    choice: str | None
    final_choice: str | None
    score: float | None
    why: str
    created_at: datetime
    needs_approval: bool
    awaiting: bool
    """It still waits for a person."""
    after_the_fact: bool
    """A sampled `auto` decision: its actions ran already; the review is a second opinion."""
    holds: list[str]
    """Why a person must look at it (the guardrails')."""
    labels: dict[str, str]
    """Option name → its label, for the version that made the decision."""
    alternatives: list[str]
    """The options to override with."""
    drafted: list[str]
    """The options that send an AI-drafted reply."""
    draft: str | None
    draft_error: str | None
    draft_cited: str | None
    """The draft with its [n] markers: where each claim came from (see `draft_sources`)."""
    draft_sources: list[DraftSource]
    message: str | None
    """The message a text-triage playbook read."""
    due_at: datetime | None
    """When its review is due (the playbook's `review.within`); None: no deadline."""
    who: str | None
    """The subject as people know it: the entity's name and company (`Ana Silva, Acme`)."""
    preview: list[ActionPreview]
    """While it waits: what approving it would send, rendered as the outbox would."""
    overdue: bool
    """It still waits, past its deadline."""


class Inbox(TypedDict):
    items: list[InboxItem]
    waiting: dict[str, int]
    """How many decisions wait, per playbook."""
    total: int
