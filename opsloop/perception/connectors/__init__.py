"""Pull connectors: read a source's new records, batch by batch, each with a resumable cursor.

`fetch` is the one entry point the sync runner (opsloop/service/ingest/syncing.py) calls. Each
connector is a generator of `Batch`es and keeps these promises:

* a batch's `checkpoint` is where the next run starts if this batch was the last one
  committed: a run killed after batch N resumes after N;
* every record has a `key` (row id, file hash and line, Message-ID) so a batch read twice
  stores nothing twice;
* input that cannot be read as a record (a malformed CSV line) is a `Rejected` with its
  place, and the rest goes on;
* a failure that stops the run (the server answers 500, the database is down) raises
  `Unavailable`; nothing after the last committed batch is assumed done.

Connectors do not write to OpsLoop's database; they only read from the outside.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opsloop.core.sources import SourceSpec
from opsloop.perception.records import Batch

if TYPE_CHECKING:
    import httpx  # loaded with the HTTP connector, when an `http` source is pulled


def fetch(
    spec: SourceSpec,
    secret: str | None,
    checkpoint: dict[str, Any] | None,
    *,
    backfill: bool = False,
    http: httpx.Client | None = None,
) -> Iterator[Batch]:
    """The source's records since `checkpoint` (all of them with `backfill`), in batches."""
    # Imported here: a server that syncs no mailbox never loads imaplib, nor SQL drivers.
    if spec.kind == "http":
        from opsloop.perception.connectors import http_json

        assert spec.http is not None
        return http_json.fetch(spec.http, secret, checkpoint, backfill=backfill, client=http)
    if spec.kind == "folder":
        from opsloop.perception.connectors import folder

        assert spec.folder is not None
        return folder.fetch(
            spec.folder, checkpoint, backfill=backfill, event_files=spec.mapping is None
        )
    if spec.kind == "sql":
        from opsloop.perception.connectors import sql

        assert spec.sql is not None
        return sql.fetch(spec.sql, secret, checkpoint, backfill=backfill)
    if spec.kind == "imap":
        from opsloop.perception.connectors import imap

        assert spec.imap is not None
        return imap.fetch(spec.imap, secret, checkpoint, backfill=backfill)
    raise ValueError(f"a {spec.kind} source is not pulled; its signals are sent to OpsLoop")


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path (`meta.next_cursor`, `items.0.id`); None when absent."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.lstrip("-").isdigit():
            index = int(part)
            data = data[index] if -len(data) <= index < len(data) else None
        else:
            return None
    return data
