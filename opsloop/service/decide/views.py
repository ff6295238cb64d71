"""What the decide stage shows of its playbooks (`GET /api/playbooks`, the playbooks pages,
`opsloop playbook list`)."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from opsloop.core.decision_views import DecisionSummary
from opsloop.core.playbooks import Mode


class PlaybookSummary(TypedDict):
    """One active playbook (`list_playbooks`), as its active version defines it."""

    name: str
    mode: Mode
    version: int
    description: str
    subject: str
    """The kind of subject it decides about: `lead`, `ticket` …"""
    trigger: list[str]
    """The event types that start it."""
    options: list[str]


class VersionEntry(TypedDict):
    version: int
    created_at: datetime
    created_by: str
    file: str


class PlaybookDetail(TypedDict):
    """A stored playbook (`get_playbook`): its mode, its active version's source, and every
    version, newest first."""

    name: str
    mode: Mode
    version: int | None
    """The active version; None when none is active."""
    source: str | None
    versions: list[VersionEntry]


class PlaybookVersion(TypedDict):
    """One stored version of a playbook with its source (`get_playbook_version`)."""

    name: str
    version: int
    source: str
    created_at: datetime
    created_by: str
    file: str
    active: bool


class EventDecisions(TypedDict):
    """The decisions an event has led to so far (`POST /api/events?wait=decision`)."""

    decisions: list[DecisionSummary]
    pending: list[str]
    """Playbooks still deciding on it: those that ask the language model, whose job is queued
    or running."""
