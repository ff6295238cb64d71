"""Historical exports: a CSV of past leads, sessions or support messages, turned into events so
models can learn from the business's own history (`opsloop import`).

Each row is one subject `<kind>:<id>` and one event at the row's time; its other columns are
the event's payload and the subject's traits. How it ended (`outcome_column`) becomes a later
success or failure event, and the category a person gave it (`label_column`) a later labelled
event, each one second after the row: features computed as of the row's event (at its
trigger) must never see the answer. For the same reason the outcome and label columns are kept
out of the payload and traits.

A labelled row gives a (text, label) pair for a text classifier: the labelled event's payload
is `{"label": ..., "event_type": ..., "event_key": ...}`, naming the row's event by its type
and idempotency key (same source), whose payload holds the text columns.

Files as people export them: the separator is found from the first lines (`,`, `;`, tab or
`|`) unless `delimiter` says it; month-only times (`%b`) roll the year forward where the months
go back in file order (`year_rollover`); and a file with no time at all can be read in its own
order (`file_order`), each row one minute after the one before from a fixed start: order-only
times, which the import marks as such.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

from opsloop.core.errors import FieldError, InvalidInput
from opsloop.core.events import (
    EVENT_TYPE_PATTERN,
    SUBJECT_KIND_PATTERN,
    NewEvent,
    did_you_mean,
    validate_events,
)
from opsloop.core.times import event_time
from opsloop.perception.big_integers import whole_number

# The outcome comes one second after the row: as-of features at the row's time never see it.
AFTER_ROW = timedelta(seconds=1)

ORDER_STEP = timedelta(minutes=1)
"""With `file_order`, each row is this long after the one before (its outcome, one second
after it, is long before the next row)."""
ORDER_START_YEAR = 2000
"""With `file_order`, the first row is at 1 January of `year`, or of this year when none is
given: plainly not a real date."""

DELIMITERS = (",", ";", "\t", "|")
"""The separators `sniff_delimiter` tries, preferred in this order on a tie."""
SNIFF_RECORDS = 50

YearRollover = Literal["auto", "never", "always"]
ROLLOVERS: tuple[YearRollover, ...] = ("auto", "never", "always")
ROLLOVER_SHARE = 3
"""`auto` trusts the file's order when the months go back at most once per this many changes
of month (a time-ordered file goes back once a year, about once per twelve changes; a file
in no order goes back about every second change)."""

YES = frozenset({"true", "yes", "y", "t", "1", "1.0", "won", "win", "converted", "success"})
NO = frozenset({"false", "no", "n", "f", "0", "0.0", "lost", "lose", "failed", "failure"})

_INT = re.compile(r"^-?(0|[1-9]\d*)$")
_FLOAT = re.compile(r"^-?((0|[1-9]\d*)\.\d*|\.\d+|(0|[1-9]\d*))([eE][-+]?\d+)?$")
_EPOCH = re.compile(r"^\d{10}(\d{3})?$")
_SLASHED = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$"
)
# Tried in order when no time format is given (after ISO 8601, day/month slashes and RFC 2822).
COMMON_FORMATS = (
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d %b %Y",
    "%d %B %Y",
    "%d-%b-%Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%b %d %Y",
    "%B %d %Y",
)
_YEAR_DIRECTIVES = ("%Y", "%y", "%G")
_DAY_DIRECTIVES = ("%d", "%j")


@dataclass(frozen=True, slots=True)
class HistorySpec:
    """How the columns of an export map to events. Event types default from the subject kind."""

    kind: str
    time_column: str | None = None
    """None only with `file_order`."""
    id_column: str | None = None
    time_format: str | None = None
    year: int | None = None
    """The year of times whose format has none (`%b`); the caller fills in the current year.
    With `file_order`, the year the order-only times start in."""
    event_type: str | None = None
    outcome_column: str | None = None
    success_event: str | None = None
    failure_event: str | None = None
    record_failures: bool = True
    label_column: str | None = None
    label_event: str | None = None
    delimiter: str | None = None
    """The separator between cells; None: found from the file's first lines."""
    year_rollover: YearRollover = "auto"
    """Times without a year (`%b`): `auto` rolls the year forward where the months go back in
    file order, and refuses a file whose months go back too often to be in time order;
    `always` rolls forward at every step back; `never` keeps every row in `year`."""
    file_order: bool = False
    """The file has no time column and its rows are in time order: order-only times."""

    @property
    def row_type(self) -> str:
        return self.event_type or f"{self.kind}.imported"

    @property
    def success_type(self) -> str:
        return self.success_event or f"{self.kind}.converted"

    @property
    def failure_type(self) -> str | None:
        return (self.failure_event or f"{self.kind}.lost") if self.record_failures else None

    @property
    def label_type(self) -> str:
        return self.label_event or f"{self.kind}.labelled"

    @property
    def special_columns(self) -> dict[str, str]:
        """Role → column for the columns that are not payload."""
        roles = {
            "id_column": self.id_column,
            "time_column": self.time_column,
            "outcome_column": self.outcome_column,
            "label_column": self.label_column,
        }
        return {role: column for role, column in roles.items() if column}

    def check(self, header: list[str], delimiter: str = ",") -> None:
        """Raise InvalidInput naming every option that does not fit the file's header (read
        with `delimiter`)."""
        errors: list[FieldError] = []
        if self.file_order and self.time_column:
            errors.append(
                FieldError(
                    "file_order",
                    "is for a file without a time column; give --time-column or --file-order",
                )
            )
        elif not self.file_order and not self.time_column:
            errors.append(
                FieldError(
                    "time_column",
                    "is needed: the column saying when each row happened (or --file-order when "
                    "the file has none and its rows are in time order)",
                )
            )
        if self.delimiter is not None and len(self.delimiter) != 1:
            errors.append(FieldError("delimiter", "must be one character, e.g. ; or tab"))
        if self.year_rollover not in ROLLOVERS:
            errors.append(FieldError("year_rollover", f"must be one of {', '.join(ROLLOVERS)}"))
        if not SUBJECT_KIND_PATTERN.match(self.kind):
            errors.append(
                FieldError("subject_kind", "must start with a lowercase letter and use a-z, 0-9, _")
            )
        types = {
            "event_type": self.row_type,
            "success_event": self.success_type,
            "failure_event": self.failure_type,
            "label_event": self.label_type,
        }
        for role, type_ in types.items():
            if type_ is not None and not re.match(EVENT_TYPE_PATTERN, type_):
                errors.append(
                    FieldError(role, f"{type_!r} must look like `lead.created`: dot-separated")
                )
        seen: dict[str, str] = {}
        for role, column in self.special_columns.items():
            if column not in header:
                columns = ", ".join(header)
                # Split on the wrong separator, the header's one name is no near miss.
                hint = _separator_hint(header, delimiter, column)
                near = "" if hint else did_you_mean(column, header)
                errors.append(
                    FieldError(role, f"no column {column!r}{near} (columns: {columns}){hint}")
                )
            elif column in seen:
                errors.append(FieldError(role, f"{column!r} is already the {seen[column]}"))
            seen[column] = role
        if errors:
            raise InvalidInput(errors)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    line: int
    raw: bytes
    events: list[NewEvent] = field(default_factory=list)
    problem: InvalidInput | None = None


@dataclass(frozen=True, slots=True)
class Rollover:
    """Where month-only times rolled into the next year: the row at `line` and those after it
    are in `year`."""

    line: int
    before: str
    """The previous row's time cell (`Dec`)."""
    after: str
    """This row's (`Jan`)."""
    year: int


class HistoryFile:
    """An export opened for reading: the separator found, the header checked against the spec
    (InvalidInput names every option that does not fit), and, for month-only times, the
    file's order checked. `rows()` then reads it once; `rollovers` fills in as it goes."""

    def __init__(
        self, path: Path, spec: HistorySpec, *, source: str, received_at: datetime
    ) -> None:
        self.path = path
        self.spec = spec
        self.source = source
        self.received_at = received_at
        self.delimiter = spec.delimiter or sniff_delimiter(path)
        self.sniffed = spec.delimiter is None
        self.header = _header(path, self.delimiter)
        spec.check(self.header, self.delimiter)
        self.order_only = spec.file_order
        self.order_start = datetime(spec.year or ORDER_START_YEAR, 1, 1, tzinfo=UTC)
        year = spec.year or received_at.year
        self.times = TimeReader(
            spec.time_format, year=year, day_month=self._day_month(), rollover=self._rolls(year)
        )

    @property
    def rollovers(self) -> list[Rollover]:
        return self.times.rollovers

    def rows(self) -> Iterator[HistoryRow]:
        """The file's rows as events, or each bad row with its problem."""
        for position, (line, cells, raw) in enumerate(_rows(self.path, self.delimiter)):
            order_at = self.order_start + position * ORDER_STEP if self.order_only else None
            try:
                events = _events(
                    self.path,
                    self.spec,
                    self.header,
                    cells,
                    raw,
                    line,
                    self.times,
                    order_at,
                    source=self.source,
                    received_at=self.received_at,
                )
            except InvalidInput as exc:
                yield HistoryRow(line, raw, problem=exc)
            else:
                yield HistoryRow(line, raw, events)

    def _day_month(self) -> str | None:
        if self.spec.time_format or not self.spec.time_column:
            return None
        return _day_month_order(self.path, self.header, self.spec.time_column, self.delimiter)

    def _rolls(self, year: int) -> bool:
        """Whether month-only times roll the year forward; raise InvalidInput (`auto`) when
        the months go back too often for the file's order to be time."""
        if not self.spec.time_column or not TimeReader.lacks_year(self.spec.time_format):
            return False
        if self.spec.year_rollover != "auto":
            return self.spec.year_rollover == "always"
        index = self.header.index(self.spec.time_column)
        probe = TimeReader(self.spec.time_format, year=year)
        changes = backs = 0
        first: tuple[int, str, str] | None = None
        previous: tuple[tuple[int, ...], str] | None = None
        for line, cells, _ in _rows(self.path, self.delimiter):
            cell = cells[index].strip() if index < len(cells) else ""
            try:
                at = probe.parse(cell)
            except ValueError:
                continue
            key = (at.month, at.day, at.hour, at.minute, at.second, at.microsecond)
            if previous is not None and key != previous[0]:
                changes += 1
                if key < previous[0]:
                    backs += 1
                    first = first or (line, previous[1], cell)
            previous = (key, cell)
        if backs * ROLLOVER_SHARE <= changes:
            return True
        assert first is not None
        line, before, after = first
        raise InvalidInput.single(
            "year_rollover",
            f"the months go back {backs:,} times in file order (the first at line {line}: "
            f"{after} after {before}) in {changes:,} changes of month: the rows are not in "
            "time order, so which year each one is in cannot be told. If every row is in "
            f"{year}, give --year-rollover never; if the file is in time order, "
            "--year-rollover always; or export the time with its year",
        )


def sniff_delimiter(path: Path) -> str:
    """The separator of a CSV file, from its first records: of `DELIMITERS`, the one that
    splits the header into the most columns and every sampled record into as many. A file
    that none splits evenly gets the one most frequent in its header; one line gets `,`."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            sample = handle.read(1 << 16)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    cut = len(sample) == 1 << 16  # the last record may be cut short: not counted
    best: tuple[int, str] | None = None
    for candidate in DELIMITERS:
        reader = csv.reader(io.StringIO(sample), delimiter=candidate)
        try:
            records = [
                cells
                for cells in itertools.islice(reader, SNIFF_RECORDS + 1)
                if any(cell.strip() for cell in cells)
            ]
        except csv.Error:
            continue
        if cut and len(records) > 1:
            records.pop()
        records = records[:SNIFF_RECORDS]
        if not records:
            return ","
        width = len(records[0])
        even = width > 1 and all(len(cells) == width for cells in records)
        if even and (best is None or width > best[0]):
            best = (width, candidate)
    if best is not None:
        return best[1]
    first_line = sample.split("\n", 1)[0]
    counts = {c: first_line.count(c) for c in DELIMITERS}
    most = max(DELIMITERS, key=lambda c: counts[c])
    return most if counts[most] else ","


def count_data_rows(path: Path) -> int:
    """Rows after the header, for a progress bar (a quoted cell spanning lines counts more)."""
    with path.open("rb") as handle:
        return max(sum(1 for line in handle if line.strip()) - 1, 0)


def cell_value(cell: str) -> Any:
    """A CSV cell with a sensible type: numbers, true/false and yes/no as booleans, empty as
    missing (None). Numbers with a leading zero (`01234`: zip codes, account numbers) and whole
    numbers beyond 64 bits, which no stored number holds exactly, stay text."""
    text = cell.strip()
    if not text:
        return None
    if _INT.match(text):
        whole = whole_number(text)
        return text if whole is None else whole
    if _FLOAT.match(text):
        return float(text)
    lowered = text.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    return text


def outcome_of(cell: str) -> Literal["success", "failure"] | None:
    """`success`, `failure`, or None when the cell is empty (not known yet); ValueError else."""
    text = cell.strip().lower()
    if not text:
        return None
    if text in YES:
        return "success"
    if text in NO:
        return "failure"
    raise ValueError(
        f"{cell.strip()!r} is neither yes (true, yes, 1, won, converted) nor no (false, no, 0, "
        "lost); leave the cell empty when the outcome is not known"
    )


class TimeReader:
    """Turns a time column's cells into UTC datetimes (a time without a zone is UTC).

    Without a format: ISO 8601, `d/m/Y` or `m/d/Y` (whichever the file's values allow; see
    `_day_month_order`), RFC 2822, Unix seconds or milliseconds, then `COMMON_FORMATS`. With a
    strptime format: that format, with `%b` and `%B` (short and full month names) accepted for
    each other. A format without a year takes `year`; one without a day takes day 1 and puts
    the rows of a month one second apart in file order, so their order is kept.
    """

    def __init__(
        self,
        fmt: str | None,
        *,
        year: int,
        day_month: str | None = None,
        rollover: bool = False,
    ) -> None:
        self.fmt = fmt
        self.year = year
        self.day_month = day_month
        self._needs_year = self.lacks_year(fmt)
        self._needs_order = bool(fmt) and not any(d in str(fmt) for d in _DAY_DIRECTIVES)
        self._rows_in: dict[tuple[int, int], int] = {}
        self.rollover = rollover and self._needs_year
        """Roll `year` forward when a time (without a year) comes before the previous one."""
        self.rollovers: list[Rollover] = []
        self._last: tuple[tuple[int, ...], str] | None = None

    @staticmethod
    def lacks_year(fmt: str | None) -> bool:
        """A strptime format with no year in it (`%b`, `%d %b`)."""
        return bool(fmt) and not any(d in str(fmt) for d in _YEAR_DIRECTIVES)

    def parse(self, cell: str) -> datetime:
        """The cell's time as written (in `year` when it has none), nothing rolled or spaced."""
        text = cell.strip()
        if not text:
            raise ValueError("is empty")
        return self._parse(text) if self.fmt else self._guess(text)

    def read(self, cell: str, line: int = 0) -> datetime:
        text = cell.strip()
        at = self.parse(text)
        if self.rollover:
            key = (at.month, at.day, at.hour, at.minute, at.second, at.microsecond)
            if self._last is not None and key < self._last[0]:
                self.year += 1
                self.rollovers.append(Rollover(line, self._last[1], text, self.year))
                at = self._parse(text)
            self._last = (key, text)
        at = event_time(at)  # a time without a zone is UTC
        if self._needs_order:
            month = (at.year, at.month)
            position = self._rows_in.get(month, 0)
            self._rows_in[month] = position + 1
            at = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(
                seconds=position
            )
        return at

    def _parse(self, text: str) -> datetime:
        assert self.fmt is not None
        formats = [self.fmt]
        if "%b" in self.fmt:
            formats.append(self.fmt.replace("%b", "%B"))
        elif "%B" in self.fmt:
            formats.append(self.fmt.replace("%B", "%b"))
        for fmt in formats:
            try:
                if self._needs_year:
                    # The year goes in before parsing: strptime alone would take 1900, which
                    # has no 29 February.
                    return datetime.strptime(f"{text} {self.year}", f"{fmt} %Y")
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
        raise ValueError(f"{text!r} does not match the time format {self.fmt}")

    def _guess(self, text: str) -> datetime:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        slashed = _SLASHED.match(text)
        if slashed:
            return self._slashed(text, slashed)
        if _EPOCH.match(text):
            seconds = int(text) / (1000 if len(text) == 13 else 1)
            return datetime.fromtimestamp(seconds, UTC)
        try:
            return parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            pass
        for fmt in COMMON_FORMATS:
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
        raise ValueError(
            f"{text!r} is not a time OpsLoop recognizes (ISO 8601 such as 2026-01-10 or "
            "2026-01-10T09:30:00Z, 10/01/2026, 10.01.2026, 10 Jan 2026 …); give --time-format"
        )

    def _slashed(self, text: str, match: re.Match[str]) -> datetime:
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        order = self.day_month or _order_of(first, second)
        if order is None:
            raise ValueError(
                f"{text!r} could be day/month or month/day; give --time-format %d/%m/%Y or %m/%d/%Y"
            )
        day, month = (first, second) if order == "dm" else (second, first)
        hour = int(match[4] or 0)
        if match[7]:
            hour = hour % 12 + (12 if match[7].lower() == "pm" else 0)
        return datetime(year, month, day, hour, int(match[5] or 0), int(match[6] or 0))


def idempotency_key(spec: HistorySpec, path: Path, line: int, raw: bytes) -> str:
    """The same row imported again gets the same key, so it is stored once. With an id column
    the key is the row's content (the file may be re-exported in another order or under
    another name); without one the row's id is its line, so the file name and line count too."""
    digest = hashlib.sha256(spec.kind.encode() + b"\x1f")
    if not spec.id_column:
        digest.update(f"{path.name}\x1f{line}\x1f".encode())
    digest.update(raw)
    return f"import-{digest.hexdigest()}"


def _events(
    path: Path,
    spec: HistorySpec,
    header: list[str],
    cells: list[str],
    raw: bytes,
    line: int,
    times: TimeReader,
    order_at: datetime | None,
    *,
    source: str,
    received_at: datetime,
) -> list[NewEvent]:
    if len(cells) != len(header):
        raise InvalidInput.single("", f"has {len(cells)} cells but the header has {len(header)}")
    if any("\x00" in cell for cell in cells):
        raise InvalidInput.single("", "contains a NUL character, which cannot be stored")
    row = dict(zip(header, cells, strict=True))
    errors: list[FieldError] = []
    if spec.id_column:
        key = row[spec.id_column].strip()
        if not key:
            errors.append(FieldError(spec.id_column, "the id column is empty"))
    else:
        key = f"{path.stem}-{line}"
    at: datetime | None = order_at
    if spec.time_column:
        try:
            at = times.read(row[spec.time_column], line)
        except ValueError as exc:
            errors.append(FieldError(spec.time_column, f"the time column {exc}"))
    outcome = None
    if spec.outcome_column:
        try:
            outcome = outcome_of(row[spec.outcome_column])
        except ValueError as exc:
            errors.append(FieldError(spec.outcome_column, f"the outcome column: {exc}"))
    if errors:
        raise InvalidInput(errors)
    assert at is not None

    special = set(spec.special_columns.values())
    values = {
        column: value
        for column, cell in row.items()
        if column not in special and (value := cell_value(cell)) is not None
    }
    subject = f"{spec.kind}:{key}"
    row_key = idempotency_key(spec, path, line, raw)
    items: list[dict[str, Any]] = [
        {
            "type": spec.row_type,
            "subject": subject,
            "occurred_at": at,
            "payload": values,
            "traits": values,
            "idempotency_key": row_key,
        }
    ]
    later = at + AFTER_ROW
    outcome_type = {"success": spec.success_type, "failure": spec.failure_type}.get(outcome or "")
    if outcome_type and spec.outcome_column:
        items.append(
            {
                "type": outcome_type,
                "subject": subject,
                "occurred_at": later,
                "payload": {
                    "column": spec.outcome_column,
                    "value": cell_value(row[spec.outcome_column]),
                },
                "idempotency_key": f"{row_key}.outcome",
            }
        )
    label = row[spec.label_column].strip() if spec.label_column else ""
    if label:
        items.append(
            {
                "type": spec.label_type,
                "subject": subject,
                "occurred_at": later,
                "payload": {"label": label, "event_type": spec.row_type, "event_key": row_key},
                "idempotency_key": f"{row_key}.label",
            }
        )
    return validate_events(items, source=source, received_at=received_at)


def _header(path: Path, delimiter: str = ",") -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle, delimiter=delimiter), [])
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    if not header:
        raise InvalidInput.single("file", "is empty; it needs a header row")
    return [column.strip() for column in header]


def _rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str], bytes]]:
    """(line, cells, raw) of each non-blank data row. `raw` is the row written back with `,`
    whatever the file's separator: the same row is the same row."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            next(reader, None)
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    yield reader.line_num, cells, _raw(cells)
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        except csv.Error as exc:  # past a broken quote the rows cannot be told apart
            raise InvalidInput.single("file", f"line {reader.line_num}: {exc}") from None


def _day_month_order(
    path: Path, header: list[str], column: str, delimiter: str = ","
) -> str | None:
    """`dm` or `md` for slashed dates (10/01/2026), decided once for the whole file: a value
    whose first number is over 12 shows day/month, a second number over 12 month/day. None when
    the file does not say (or says both), and each ambiguous value is then refused."""
    index = header.index(column)
    orders = set()
    for _, cells, _ in _rows(path, delimiter):
        match = _SLASHED.match(cells[index].strip()) if index < len(cells) else None
        if match:
            order = _order_of(int(match[1]), int(match[2]))
            if order:
                orders.add(order)
                if len(orders) > 1:
                    return None
    return orders.pop() if orders else None


def _order_of(first: int, second: int) -> str | None:
    if first > 12 >= second:
        return "dm"
    if second > 12 >= first:
        return "md"
    return None


def _separator_hint(header: list[str], delimiter: str, column: str) -> str:
    """`; did you mean --delimiter ';'?` when `column` is in the header once it is split on
    another separator: the file was read with the wrong one."""
    for candidate in DELIMITERS:
        if candidate == delimiter:
            continue
        names = [
            part.strip().strip('"').strip() for name in header for part in name.split(candidate)
        ]
        if column.strip() in names and column not in header:
            shown = "tab" if candidate == "\t" else candidate
            return f"; the column names hold {shown!r}: did you mean --delimiter {shown!r}?"
    return ""


def _raw(cells: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue().rstrip("\r\n").encode()


def _not_utf8(path: Path) -> InvalidInput:
    return InvalidInput.single(
        "file", "is not UTF-8 text; save it as CSV UTF-8 and import it again"
    )
