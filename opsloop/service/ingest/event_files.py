"""`opsloop ingest FILE`: events from a JSONL or CSV file (opsloop/perception/files.py), each
row validated on its own: a bad row goes to quarantine with its file and line, the rest are
stored in batches of `batch_size`, one transaction each, through `storing.store_events` (so a
running server or worker decides on them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opsloop.core.errors import InvalidInput
from opsloop.core.events import NewEvent, validate_events
from opsloop.perception.files import count_rows, read_rows
from opsloop.service.context import Context
from opsloop.service.ingest import storing

RowDone = Callable[[int, str | None], None]
"""Called after each row with its line and, for a refused row, why (None when it was kept)."""


@dataclass(frozen=True, slots=True)
class FileIngested:
    stored: int
    duplicates: int
    refused: int


def rows_in(path: Path) -> int:
    """How many rows the file holds, for a progress bar."""
    return count_rows(path)


def ingest_file(
    ctx: Context,
    path: Path,
    *,
    source: str,
    batch_size: int = 500,
    row_done: RowDone | None = None,
) -> FileIngested:
    stored = duplicates = refused = 0
    batch: list[NewEvent] = []

    def flush() -> None:
        nonlocal stored, duplicates
        if batch:
            accepted = storing.store_events(ctx, batch)
            stored += sum(1 for a in accepted if a.status == "created")
            duplicates += sum(1 for a in accepted if a.status == "duplicate")
            batch.clear()

    now = ctx.clock()
    for row in read_rows(path):
        problem: InvalidInput | None = InvalidInput.single("", row.error) if row.error else None
        if problem is None:
            try:
                batch.extend(validate_events([row.item], source=source, received_at=now))
            except InvalidInput as exc:
                problem = exc
        if problem is not None:
            refused += 1
            storing.quarantine(
                ctx, source=source, body=row.raw, error=problem, file=str(path), line=row.line
            )
        if len(batch) >= batch_size:
            flush()
        if row_done is not None:
            row_done(row.line, None if problem is None else str(problem))
    flush()
    return FileIngested(stored, duplicates, refused)
