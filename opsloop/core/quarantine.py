"""What the quarantine keeps of refused input, shared by the store that keeps it, the service
that shows and replays it, and the web edge that reads an oversized body only this far."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict

KEEP_BYTES = 64 * 1024
"""What is kept of a body refused for its size: enough to recognize the sender."""

HeldStatus = Literal["held", "replayed", "discarded"]


class RefusedField(TypedDict):
    field: str
    """Where in the body (`events[3].type`); empty when the whole body was refused."""
    message: str


class QuarantineRow(TypedDict):
    """One `quarantine` row: a refused body with the reason."""

    id: int
    source: str
    received_at: datetime
    reason: str
    errors: list[RefusedField]
    body: bytes
    """As received, up to KEEP_BYTES."""
    body_size: int
    """Of the body as received."""
    content_type: str | None
    file: str | None
    """The file a refused row came from (`opsloop ingest`), with its `line`."""
    line: int | None
    status: HeldStatus


class QuarantinedItem(TypedDict):
    """A quarantined item as readers see it (`GET /api/quarantine`): the row with its body as
    text."""

    id: int
    source: str
    received_at: datetime
    reason: str
    errors: list[RefusedField]
    body_size: int
    content_type: str | None
    file: str | None
    line: int | None
    status: HeldStatus
    body: str
    """Decoded as UTF-8, undecodable bytes replaced."""
    body_truncated: bool
    """Only the start of the body was kept."""


def readable(row: QuarantineRow) -> QuarantinedItem:
    """The row as readers see it: its body as text."""
    body = row["body"]
    return {
        "id": row["id"],
        "source": row["source"],
        "received_at": row["received_at"],
        "reason": row["reason"],
        "errors": row["errors"],
        "body_size": row["body_size"],
        "content_type": row["content_type"],
        "file": row["file"],
        "line": row["line"],
        "status": row["status"],
        "body": body.decode("utf-8", errors="replace"),
        "body_truncated": row["body_size"] > len(body),
    }
