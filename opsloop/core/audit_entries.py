"""An audit entry as readers see it: who did what to which object, when. The store reads these
(without the hash chain's columns, which are for `opsloop audit verify`); a decision's story and
a quarantined item's replays are made of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict


class AuditEntry(TypedDict):
    id: int
    at: datetime
    actor: str
    verb: str
    """`decision.reviewed`, `action.delivered`, `input.replayed` …"""
    object_type: str
    object_id: str
    detail: dict[str, Any]
    """What the verb records (a version, an error, the events a replay made): its keys
    depend on the verb."""
