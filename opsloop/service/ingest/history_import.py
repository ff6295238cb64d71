"""Import: a historical CSV export stored as events, for features, training and backtests.

The events go through the same path as `opsloop ingest` (`storing.store_events`), in
batches, with `decide=False`: history is stored without running the playbooks it would
trigger, so importing 12,000 past leads never emails 12,000 people. Bad rows are quarantined
with their file and line, and the import goes on.

Each import is recorded in the audit trail (`history.imported`, about the file) with what it
stored and how its times were read. `file_order_imports` reads those records back: the
imports whose times are only the file's order (`--file-order`), so a training report can say
"times are file order, not real dates".
"""

from __future__ import annotations

import logging
from array import array
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from opsloop.core.events import NewEvent
from opsloop.learning.split_checks import label_order_warning
from opsloop.perception.history import (
    ORDER_STEP,
    HistoryFile,
    HistoryRow,
    HistorySpec,
    Rollover,
    count_data_rows,
)
from opsloop.service.context import Context
from opsloop.service.ingest import storing
from opsloop.store import audit

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
    delimiter: str = ","
    sniffed: bool = True
    """The separator was found from the file's first lines (not given)."""
    rollovers: list[Rollover] = field(default_factory=list)
    """Where month-only times rolled into the next year (the months went back in file order)."""
    rows_by_year: dict[int, int] = field(default_factory=dict)
    """Rows read without a problem, by the year of their time."""
    order_only: bool = False
    """The times are only the file's order (`file_order`): one minute apart from
    `order_start`, not real dates."""
    order_start: datetime | None = None
    label_order: str | None = None
    """Why a time-ordered hold-out would mislead on these labels (or outcomes): they come
    grouped in time order, most likely a file sorted by label. None when they look mixed."""


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
    actor: str = "opsloop",
) -> Imported:
    now = ctx.clock()
    opened = HistoryFile(path, spec, source=source, received_at=now)
    total = count_data_rows(path)
    report = Imported(
        delimiter=opened.delimiter,
        sniffed=opened.sniffed,
        order_only=opened.order_only,
        order_start=opened.order_start if opened.order_only else None,
    )
    labels = _Labels(spec)
    years: Counter[int] = Counter()
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

    for row in opened.rows():
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
            years[row.events[0].occurred_at.year] += 1
            labels.add(row)
            rows_in_batch += 1
            if rows_in_batch >= batch_size:
                flush()
        if progress is not None:
            progress(report.rows, max(total, report.rows))
    flush()
    report.rollovers = list(opened.rollovers)
    report.rows_by_year = dict(sorted(years.items()))
    report.label_order = labels.warning()
    _record(ctx, path, spec, report, source=source, actor=actor, now=now)
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


class _Labels:
    """The label (or outcome) of each row stored, with its time: enough to tell whether the
    labels come grouped in time order (`split_checks.label_order`)."""

    def __init__(self, spec: HistorySpec) -> None:
        self.wanted: dict[str, str] = {}
        if spec.label_column:
            self.wanted[spec.label_type] = "label"
        elif spec.outcome_column:
            self.wanted[spec.success_type] = "success"
            if spec.failure_type:
                self.wanted[spec.failure_type] = "failure"
        self.codes: dict[str, int] = {}
        self.times = array("d")
        self.labels = array("l")

    def add(self, row: HistoryRow) -> None:
        for event in row.events[1:]:
            kind = self.wanted.get(event.type)
            if kind is None:
                continue
            value = str(event.payload.get("label")) if kind == "label" else kind
            self.times.append(row.events[0].occurred_at.timestamp())
            self.labels.append(self.codes.setdefault(value, len(self.codes)))
            return

    def warning(self) -> str | None:
        if len(self.codes) < 2:
            return None
        order = sorted(range(len(self.times)), key=self.times.__getitem__)  # stable: file order
        names = {code: name for name, code in self.codes.items()}
        return label_order_warning([names[self.labels[i]] for i in order])


@dataclass(frozen=True, slots=True)
class FileOrderImport:
    """An import whose times are only the file's order (`opsloop import --file-order`)."""

    file: str
    source: str
    imported_at: datetime
    event_types: tuple[str, ...]
    """The event types it stored (the rows', their outcomes' and labels')."""
    first_at: datetime | None
    last_at: datetime | None


def file_order_imports(ctx: Context, event_types: Collection[str]) -> list[FileOrderImport]:
    """The imports, oldest first, that stored events of any of `event_types` with order-only
    times: their rows were in time order but had no date (`opsloop import --file-order`), so
    each is one minute after the one before from 1 January 2000 (or of `--year`). A training
    or backtest report on those events should say "times are file order, not real dates":
    windows (`within: 7d`), days-since features and dated test periods mean nothing there.

    Read from the audit trail (`history.imported` entries), so it holds for every import ever
    made, whichever process made it."""
    wanted = set(event_types)
    with ctx.db.read() as conn:
        entries = audit.of_type(conn, "history")
    found: list[FileOrderImport] = []
    for entry in entries:
        detail = entry["detail"]
        stored = set(detail.get("event_types") or [])
        if entry["verb"] != "history.imported" or detail.get("times") != "file_order":
            continue
        if not detail.get("stored") or not stored & wanted:
            continue
        found.append(
            FileOrderImport(
                file=str(detail.get("path") or entry["object_id"]),
                source=str(detail.get("source") or ""),
                imported_at=entry["at"],
                event_types=tuple(sorted(stored)),
                first_at=_moment(detail.get("first_at")),
                last_at=_moment(detail.get("last_at")),
            )
        )
    return found


def _record(
    ctx: Context,
    path: Path,
    spec: HistorySpec,
    report: Imported,
    *,
    source: str,
    actor: str,
    now: datetime,
) -> None:
    """The import in the audit trail: what it stored and how it read the times."""
    times = "file_order" if report.order_only else "column"
    detail = {
        "path": str(path),
        "source": source,
        "rows": report.rows,
        "refused": report.refused,
        "stored": report.stored,
        "event_types": sorted(report.stored_by_type),
        "times": times,
        "time_column": spec.time_column,
        "first_at": report.first_at.isoformat() if report.first_at else None,
        "last_at": report.last_at.isoformat() if report.last_at else None,
        "delimiter": report.delimiter,
        "year_rollovers": [
            {"line": r.line, "before": r.before, "after": r.after, "year": r.year}
            for r in report.rollovers
        ],
    }
    if report.order_only:
        detail["order_step_seconds"] = int(ORDER_STEP.total_seconds())
    with ctx.db.transaction() as tx:
        audit.record(tx.conn, now, actor, "history.imported", path.name[:300], detail)


def _moment(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
