"""What sources hand to the pipeline: raw records, and the batches pull connectors produce.

A record is one signal before it means anything: a webhook body, a tracking call, a synced
row, a mail. The source's mapping turns it into events (opsloop/perception/mapping.py); the
contracts check and normalize them (opsloop/perception/normalize.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    """One raw item a source produced."""

    data: Any
    """The JSON value: a webhook body, a row as a dict, a mail as a dict."""
    where: str
    """Where it came from, for messages: `delivery evt_1`, `orders.csv line 12`, `UID 42`."""
    key: str | None = None
    """The sender's id for it (delivery id, row id, Message-ID): stored once per source."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """HTTP headers of a pushed record, names lowercased (mappings may read them)."""
    raw: bytes | None = None
    """The bytes as received, kept in quarantine when the record is refused."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input a connector could not even read as a record (a malformed CSV line)."""

    where: str
    reason: str
    raw: bytes
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """Records a pull connector read, and the cursor to keep once they are committed.

    The sync runner stores `records`, then saves `checkpoint`; a run killed in between
    fetches the batch again, and the records' keys store it once."""

    records: list[Record]
    checkpoint: dict[str, Any] | None
    rejected: list[Rejected] = field(default_factory=list)
    after_commit: list[Any] = field(default_factory=list)
    """Callables the runner calls once the batch and its checkpoint are committed (a drop
    folder moves the finished file aside)."""
