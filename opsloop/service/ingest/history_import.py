"""Import: a historical CSV export stored as events, for features, training and backtests.

The events go through the same path as `opsloop ingest` (`storing.store_events`), in
batches, with `decide=False`: history is stored without running the playbooks it would
trigger, so importing 12,000 past leads never emails 12,000 people. Bad rows are quarantined
with their file and line, and the import goes on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from opsloop.core.events import NewEvent
from opsloop.perception.history import HistorySpec, count_data_rows, read_history
from opsloop.service.context import Context
from opsloop.service.ingest import storing

log = logging.getLogger(__name__)

KEEP_PROBLEMS = 5
GIVE_UP_AFTER = 100
"""When this many rows are refused before any is accepted, an option is wrong (the time format,
a column), not the data: stop rather than quarantine the whole file."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    file: str
    line: int
    message: str
    quarantine_id: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Imported:
    rows: int = 0
    """Data rows read, refused ones included."""
    refused: int = 0
    stored: int = 0
    """Events newly stored."""
    duplicates: int = 0
    """Events that were already stored (the rows were imported before)."""
    stored_by_type: Counter[str] = field(default_factory=Counter)
    problems: list[RowProblem] = field(default_factory=list)
    """The first few refused rows (all of them are in quarantine)."""
    first_at: datetime | None = None
    """The earliest and latest time of the events stored."""
    last_at: datetime | None = None
    gave_up: bool = False
    """The first `GIVE_UP_AFTER` rows were all refused, so the rest were not read."""
    in_future: int = 0
    """Events stored with a time after now: a month-only export given the wrong year, likely."""


Progress = Callable[[int, int], None]
"""Called with (rows done, rows in the file) as the import goes."""


def import_history(
    ctx: Context,
    path: Path,
    spec: HistorySpec,
    *,
    source: str = "import",
    batch_size: int = 500,
    progress: Progress | None = None,
) -> Imported:
    now = ctx.clock()
    total = count_data_rows(path)
    report = Imported()
    batch: list[NewEvent] = []
    rows_in_batch = 0

    def flush() -> None:
        nonlocal rows_in_batch
        rows_in_batch = 0
        if not batch:
            return
        accepted = storing.store_events(ctx, batch, decide=False)
        for event, answer in zip(batch, accepted, strict=True):
            if answer.status == "created":
                report.stored += 1
                report.stored_by_type[event.type] += 1
                at = event.occurred_at
                report.first_at = min(report.first_at or at, at)
                report.last_at = max(report.last_at or at, at)
                report.in_future += at > now
            else:
                report.duplicates += 1
        batch.clear()

    for row in read_history(path, spec, source=source, received_at=now):
        report.rows += 1
        if row.problem is not None:
            report.refused += 1
            item = storing.quarantine(
                ctx,
                source=source,
                body=row.raw,
                error=row.problem,
                file=str(path),
                line=row.line,
                quiet=True,
            )
            if len(report.problems) < KEEP_PROBLEMS:
                report.problems.append(RowProblem(str(path), row.line, str(row.problem), item))
            if report.refused == report.rows == GIVE_UP_AFTER:
                report.gave_up = True
                break
        else:
            batch.extend(row.events)  # a row's events share a transaction
            rows_in_batch += 1
            if rows_in_batch >= batch_size:
                flush()
        if progress is not None:
            progress(report.rows, max(total, report.rows))
    flush()
    log.log(
        logging.WARNING if report.refused else logging.INFO,
        "imported %s: %d rows, %d events stored, %d already stored, %d refused",
        path,
        report.rows,
        report.stored,
        report.duplicates,
        report.refused,
        extra={"file": str(path), "source": source},
    )
    return report
