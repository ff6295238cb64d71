"""Reading events from JSONL and CSV files, row by row, keeping the line of every problem.

CSV columns: `type`, `subject`, `occurred_at`, `idempotency_key` and `source` are event fields;
`traits.<name>` columns become traits; every other column goes into the payload (a leading
`payload.` is dropped). Empty cells are left out. Cells that look like numbers or booleans are
read as numbers and booleans, since CSV has no types and features add and compare numbers —
except numbers with a leading zero (`01234`: zip codes, account numbers) and whole numbers
beyond 64 bits, which stay text.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from opsloop.perception.big_integers import beyond_range, whole_number

EVENT_COLUMNS = ("type", "subject", "occurred_at", "idempotency_key", "source")
_INT = re.compile(r"^-?(0|[1-9]\d*)$")
_FLOAT = re.compile(r"^-?((0|[1-9]\d*)\.\d*|\.\d+|(0|[1-9]\d*))([eE][-+]?\d+)?$")


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    raw: bytes
    item: Any | None
    error: str | None = None


def read_rows(path: Path) -> Iterator[Row]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _jsonl(path)
    elif suffix == ".csv":
        yield from _csv(path)
    else:
        raise ValueError(
            f"{path}: unknown file type {suffix!r}; use .jsonl (one JSON event per line) or .csv"
        )


def count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(lines - 1, 0) if path.suffix.lower() == ".csv" else lines


def _jsonl(path: Path) -> Iterator[Row]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if b"\\u0000" in line:
                yield Row(
                    number,
                    line.rstrip(b"\r\n"),
                    None,
                    "contains \\u0000 (a NUL character), which cannot be stored",
                )
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Row(number, line.rstrip(b"\r\n"), None, f"malformed JSON: {exc.msg}")
                continue
            # orjson would give such an integer as a rounded float: the row is refused.
            too_big = beyond_range(line, data=value)
            if too_big:
                reason = "; ".join(str(problem) for problem in too_big)
                yield Row(number, line.rstrip(b"\r\n"), None, reason)
            else:
                yield Row(number, line.rstrip(b"\r\n"), value)


def _csv(path: Path) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            return
        for row in reader:
            line = reader.line_num
            raw = _raw(row)
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield Row(line, raw, None, f"has {len(row)} cells but the header has {len(header)}")
                continue
            yield Row(line, raw, _item(header, row))


def _item(header: list[str], row: list[str]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    payload: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    for column, cell in zip(header, row, strict=True):
        column = column.strip()
        if cell == "":
            continue
        if column in EVENT_COLUMNS:
            item[column] = cell
        elif column.startswith("traits."):
            traits[column[len("traits.") :]] = _typed(cell)
        else:
            payload[column.removeprefix("payload.")] = _typed(cell)
    if payload:
        item["payload"] = payload
    if traits:
        item["traits"] = traits
    return item


def _typed(cell: str) -> Any:
    text = cell.strip()
    if _INT.match(text):
        # A whole number beyond 64 bits (a long account number) stays text: it could not be
        # stored as a number without rounding.
        whole = whole_number(text)
        return cell if whole is None else whole
    if _FLOAT.match(text):
        number = float(text)
        return number if math.isfinite(number) else cell  # 1e999 is no number JSON can hold
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return cell


def _raw(row: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    return buffer.getvalue().rstrip("\r\n").encode()
