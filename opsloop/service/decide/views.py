"""What the decide stage shows of its playbooks (`GET /api/playbooks`, the playbooks pages,
`opsloop playbook list`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict

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
    """The event types that start it (`schedule.run` for a scheduled one; the `after` types of
    an absence)."""
    trigger_words: str
    """What starts it, in words: `lead.created, demo.requested`; `3 days after
    signup.completed unless project.created`; `At 08:00 every day (Europe/Berlin)`."""
    next_run: str | None
    """A scheduled playbook's next due time (ISO 8601, UTC); None for the others."""
    options: list[str]


class VersionEntry(TypedDict):
    version: int
    created_at: datetime
    created_by: str
    file: str


class ScheduledRun(TypedDict):
    """One run of a scheduled playbook: `skipped` is a new schedule's first, past due time."""

    due_at: str
    status: str
    """queued | done | skipped"""
    subjects: int
    """Subjects of the playbook's kind looked at."""
    selected: int
    """Of those, the ones `select` picked."""
    decided: int


class ScheduleView(TypedDict):
    description: str
    """`At 08:00 every day (Europe/Berlin)`, `Every 6 hours`."""
    timezone: str
    """The schedule's time zone (`Europe/Berlin`; an interval's is UTC)."""
    next_runs: list[str]
    """The next due times, ISO 8601 in UTC."""
    last_runs: list[ScheduledRun]
    """Newest first."""


class PlaybookDetail(TypedDict):
    """A stored playbook (`get_playbook`): its mode, its active version's source, every
    version (newest first), and for a scheduled playbook its next and last runs."""

    name: str
    mode: Mode
    version: int | None
    """The active version; None when none is active."""
    source: str | None
    versions: list[VersionEntry]
    schedule: ScheduleView | None


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


class TemplateNeed(TypedDict):
    """Something a playbook template uses outside OpsLoop, and whether it is set up."""

    what: str
    """For people: `a language model`, `an email channel (a mail server)`, `the chat channel
    'sales'`."""
    ready: bool
    fix: str | None
    """When not ready: what to set, naming the setting."""
    setting: Literal["llm", "email", "delivery"]
    """The part of the settings page that shows it (`/settings#llm`)."""


class InstalledTemplate(TypedDict):
    """The playbook of a template's name, when there is one."""

    version: int | None
    """Its active version."""
    mode: Mode
    as_shipped: bool
    """Its active version is the template's text, unchanged."""


class TemplateSummary(TypedDict):
    """A built-in playbook offered as a template (`list_templates`)."""

    name: str
    description: str
    subject: str
    trigger: list[str]
    """The event types that start it."""
    trigger_words: str
    options: list[str]
    """Each option's label, in the playbook's order."""
    uses_llm: bool
    needs: list[TemplateNeed]
    installed: InstalledTemplate | None
    overlaps: list[str]
    """Installed playbooks (of other names) that start on one of the same events: installed
    together, both decide on each of those events."""


class TemplateDetail(TemplateSummary):
    """A template with the YAML it installs (`get_template`): the built-in file with `mode:
    recommend`."""

    source: str
