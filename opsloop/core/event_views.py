"""Events and entities as readers see them (`GET /api/events`, `opsloop events`): the shapes the
store reads and the service hands to the edges, which serialize them or show their fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict


class EventView(TypedDict):
    """One stored event: `dataclasses.asdict` of `opsloop.core.events.Event`."""

    id: int
    source: str
    type: str
    subject: str
    occurred_at: datetime
    received_at: datetime
    payload: dict[str, Any]
    """As the sender shaped it (after the source's mapping): free-form."""
    traits: dict[str, Any]
    """The traits the event set on its subject, free-form; `{}` when none."""
    idempotency_key: str | None


class Entity(TypedDict):
    """A subject's current profile: one `entities` row."""

    subject: str
    kind: str
    """The subject's kind: `lead` for `lead:42`."""
    traits: dict[str, Any]
    """Merged from the subject's events, free-form."""
    first_seen_at: datetime
    last_seen_at: datetime
    updated_at: datetime
    trusted_traits: dict[str, str] | None
    """Trait → the trusted source that set it (public sources may not change these)."""
