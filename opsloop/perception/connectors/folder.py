"""A drop folder: CSV and JSONL files put in a folder are read once, then moved aside.

Files matching `pattern` are read oldest first, in batches of rows; a file is moved to `done`
only once its last batch is committed (`Batch.after_commit`). A malformed line is rejected
with its file and line, and the rest of the file is read.

The checkpoint names the file being read, its content hash and the last committed line, so
a run killed halfway through a large file goes on after that line; a file whose content
changed under the same name is read from its start. Each row's key is the `key` column, or
the file's SHA-256 and the line, so a file read twice (the move after the commit was lost)
stores nothing twice.

With a mapping, rows are plain records (`{"column": value}`; numbers and true/false read as
such, empty cells as null). Without one, files are in `opsloop ingest`'s event format
(opsloop/perception/files.py).
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from opsloop.core.errors import Unavailable
from opsloop.core.sources import FolderConfig
from opsloop.perception.big_integers import beyond_range
from opsloop.perception.files import _typed, read_rows
from opsloop.perception.records import Batch, Record, Rejected

SUFFIXES = (".csv", ".jsonl", ".ndjson")
BATCH_ROWS = 500

Row = tuple[int, bytes, Any, str | None]
"""(line, raw bytes, the row's value or None, why it could not be read or None)."""


def fetch(
    config: FolderConfig,
    checkpoint: dict[str, Any] | None,
    *,
    backfill: bool = False,
    event_files: bool = False,
) -> Iterator[Batch]:
    folder = Path(config.path).expanduser()
    done = Path(config.done).expanduser() if config.done else folder / "processed"
    if not folder.is_dir():
        raise Unavailable(f"the drop folder {folder} does not exist", retryable=True)
    # A pattern reaching into subfolders must not pick up the files already moved aside.
    new = [path for path in _files(folder, config.pattern) if done not in path.parents]
    # A backfill reads the processed files again too, leaving them where they are.
    seen = _files(done, config.pattern) if backfill and done.is_dir() else []
    resume = None if backfill else checkpoint
    for path in new:
        yield from _read(path, config, resume, done=done, event_files=event_files)
    for path in seen:
        yield from _read(path, config, None, done=None, event_files=event_files)


def _files(folder: Path, pattern: str) -> list[Path]:
    found = [
        path
        for path in folder.glob(pattern)
        if path.is_file() and path.suffix.lower() in SUFFIXES and not path.name.startswith(".")
    ]
    return sorted(found, key=lambda path: (path.stat().st_mtime, path.name))


def _read(
    path: Path,
    config: FolderConfig,
    checkpoint: dict[str, Any] | None,
    *,
    done: Path | None,
    event_files: bool,
) -> Iterator[Batch]:
    digest = _sha256(path)
    mark = {"file": path.name, "sha256": digest}
    moves: list[Callable[[], None]] = [lambda: _move(path, done, digest)] if done else []
    after = 0
    if checkpoint and checkpoint.get("file") == path.name and checkpoint.get("sha256") == digest:
        if checkpoint.get("done"):  # committed, but the move did not happen
            yield Batch([], {**mark, "done": True}, after_commit=moves)
            return
        after = int(checkpoint.get("line", 0))
    records: list[Record] = []
    rejected: list[Rejected] = []
    last = after
    for line, raw, value, error in _rows(path, config, event_files=event_files):
        if line and line <= after:
            continue
        last = max(last, line)
        where = f"{path.name} line {line}" if line else path.name
        key = _key(config, value, digest, line) if error is None else None
        if error is None and key is None:
            error = f"has no value in the key column `{config.key}`"
        if error is not None:
            rejected.append(Rejected(where, error, raw, file=path.name, line=line or None))
        else:
            assert key is not None
            records.append(Record(value, where=where, key=key, raw=raw))
        if len(records) + len(rejected) >= BATCH_ROWS:
            yield Batch(records, {**mark, "line": last}, rejected)
            records, rejected = [], []
    yield Batch(records, {**mark, "done": True}, rejected, after_commit=moves)


def _key(config: FolderConfig, value: Any, digest: str, line: int) -> str | None:
    if config.key is None:
        return f"{digest}:{line}"
    found = value.get(config.key) if isinstance(value, dict) else None
    if found is None and isinstance(value, dict) and isinstance(value.get("payload"), dict):
        found = value["payload"].get(config.key)  # an event file: the column is in the payload
    return None if found is None or found == "" else str(found)


def _rows(path: Path, config: FolderConfig, *, event_files: bool) -> Iterator[Row]:
    try:
        if event_files:
            for row in read_rows(path):
                yield row.line, row.raw, row.item, row.error
        elif path.suffix.lower() == ".csv":
            yield from _csv(path, config)
        else:
            yield from _jsonl(path, config)
    except UnicodeDecodeError as exc:
        yield 0, b"", None, f"is not {config.encoding} text ({exc.reason} at byte {exc.start})"


def _csv(path: Path, config: FolderConfig) -> Iterator[Row]:
    # utf-8-sig: a spreadsheet's byte-order mark must not become part of the first column.
    encoding = "utf-8-sig" if config.encoding.lower() in ("utf-8", "utf8") else config.encoding
    with path.open(newline="", encoding=encoding) as handle:
        reader = csv.reader(handle, delimiter=config.delimiter)
        header = [cell.strip() for cell in next(reader, [])]
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, b"", None, f"is not valid CSV: {exc}"
                continue
            if not any(cell.strip() for cell in row):
                continue
            raw = config.delimiter.join(row).encode()
            if len(row) != len(header):
                problem = f"has {len(row)} cells but the header has {len(header)}"
                yield reader.line_num, raw, None, problem
                continue
            cells = {
                column: None if cell == "" else _typed(cell)
                for column, cell in zip(header, row, strict=True)
            }
            yield reader.line_num, raw, cells, None


def _jsonl(path: Path, config: FolderConfig) -> Iterator[Row]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.rstrip(b"\r\n")
            if not text.strip():
                continue
            try:
                decoded = text.decode(config.encoding)
                value = orjson.loads(decoded)
            except UnicodeDecodeError as exc:
                yield number, text, None, f"is not {config.encoding} text: {exc.reason}"
            except orjson.JSONDecodeError as exc:
                yield number, text, None, f"malformed JSON: {exc.msg}"
            else:
                # orjson would give such an integer as a rounded float: the row is refused.
                too_big = beyond_range(decoded, data=value)
                if too_big:
                    yield number, text, None, "; ".join(str(problem) for problem in too_big)
                else:
                    yield number, text, value, None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _move(path: Path, done: Path | None, digest: str) -> None:
    """Move a finished file aside; a name already taken there gets the content hash added."""
    if done is None or not path.exists():
        return
    done.mkdir(parents=True, exist_ok=True)
    target = done / path.name
    if target.exists():
        target = done / f"{path.stem}.{digest[:12]}{path.suffix}"
    shutil.move(path, target)
