"""What the ingest stage shows of its data contracts and of the quarantine's replays (the
contracts and sources pages, `GET /api/contracts`, `opsloop contract`, `opsloop replay`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict

from opsloop.core.contracts import Additional
from opsloop.core.quarantine import QuarantinedItem

Origin = Literal["applied", "built-in"]


class ContractSummary(TypedDict):
    """One event type's contract in force (`list_contracts`)."""

    event_type: str
    origin: Origin
    version: int | None
    """The applied version; None for a built-in contract."""
    description: str
    fields: int
    """How many payload fields it has rules for."""
    traits: int
    additional: Additional
    applied_at: datetime | None
    applied_by: str | None


class ContractVersion(TypedDict):
    version: int
    applied_at: datetime
    applied_by: str
    active: bool


class ContractDetail(TypedDict):
    """One event type's contract (`get_contract`): the one in force, or the newest version of
    one that was removed (`origin` removed), with every applied version."""

    event_type: str
    origin: Origin | Literal["removed"]
    version: int | None
    spec: dict[str, Any]
    """The rules as stored: the JSON form of the contract's model, without defaults
    (opsloop/core/contracts.py, `Contract.spec`)."""
    yaml: str
    has_builtin: bool
    versions: list[ContractVersion]
    """Newest first."""


class ReplayAttempt(TypedDict):
    at: datetime
    actor: str
    ok: bool
    event_ids: list[int]
    """The events the replay stored (or found stored already)."""
    reason: str | None
    """Why the body was refused again."""


class ReplayableItem(QuarantinedItem):
    """A quarantined item with what a replay needs: the raw body, how it was refused, why it
    cannot be replayed, and the replays so far."""

    raw: bytes
    refused_as: str
    """`invalid`, `unauthorized` or `too_large`."""
    cannot_replay: str | None
    """Why it cannot be replayed, in words a person can act on; None when it can."""
    replays: list[ReplayAttempt]
