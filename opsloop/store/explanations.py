"""A decision's inputs and explanation, stored as one compact blob (`decisions.detail`).

The two are one JSON document, `{"inputs": ..., "explanation": ...}`, deflated with a preset
dictionary per playbook version: the document of the first decision that version made, kept in
`decision_dictionaries`. What a version's decisions share — scorecard labels and conditions,
the score formula, rules, option names, the document's keys, the `why` sentence's wording — is
then stored once per version instead of once per decision: about 200 bytes a decision instead
of 2 KB, with the full explanation intact.

Stored form: a format byte, then the compressed document.
- 2 (written now): a Zstandard frame compressed against the dictionary as raw content, with
  its size and a checksum of the document, so a blob inflated against the wrong dictionary
  fails the checksum instead of reading as something else. About 2 µs a decision to compress
  and 1 µs to read, for the size deflate gives.
- 1 (still read): a zlib stream that names its dictionary by Adler-32. Deflate took 12 µs a
  decision, a tenth of a 1,000-event batch's time.
The document is encoded as the JSON columns encoded it before (orjson, non-string keys
allowed), so readers get the same values.
"""

from __future__ import annotations

import threading
import weakref
import zlib
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

import zstandard
from sqlalchemy import Connection, Engine, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.store.database import current_tx
from opsloop.store.schema import decision_dictionaries
from opsloop.store.types import json_bytes, json_loads

DEFLATE = 1
"""The first byte of a blob written before 2026-12-06 (read, no longer written)."""
ZSTD = 2
"""The first byte of a blob written now."""
_LEVEL = 3  # level 5 saves 12% of the size for 2.5 times the time; level 1 saves no time
DICTIONARY_LIMIT = 12 * 1024
"""A dictionary longer than this is cut to its first bytes (the structure comes first)."""


class UnreadableDetail(ValueError):
    """A stored blob that does not inflate: altered, or its dictionary was."""


def document(inputs: dict[str, Any], explanation: dict[str, Any]) -> bytes:
    """The plain document: what is compressed, and what the ledger's digests cover."""
    return json_bytes({"inputs": inputs, "explanation": explanation})


def parse(plain: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    doc = json_loads(plain)
    return doc["inputs"], doc["explanation"]


class Compressor:
    """Compresses documents against one dictionary, digested once. Zstandard's compressors
    must not be shared between threads: each thread that writes decisions gets its own, over
    the one digested dictionary (read-only, so shared)."""

    def __init__(self, dictionary: bytes) -> None:
        self._dictionary = _digested(dictionary)
        self._local = threading.local()

    def compress(self, plain: bytes) -> bytes:
        worker = getattr(self._local, "worker", None)
        if worker is None:
            worker = self._local.worker = zstandard.ZstdCompressor(
                level=_LEVEL, dict_data=self._dictionary, write_checksum=True, write_dict_id=False
            )
        return _ZSTD_BYTE + worker.compress(plain)


_ZSTD_BYTE = bytes((ZSTD,))
_readers = threading.local()


@lru_cache(maxsize=256)
def _digested(dictionary: bytes) -> zstandard.ZstdCompressionDict:
    """A dictionary ready to compress and read with (cached: digesting it takes a while)."""
    digested = zstandard.ZstdCompressionDict(dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    digested.precompute_compress(level=_LEVEL)
    return digested


def inflate(blob: bytes, dictionary: bytes) -> bytes:
    if not blob or blob[0] not in (ZSTD, DEFLATE):
        raise UnreadableDetail(f"unknown format {blob[:1]!r}")
    if blob[0] == DEFLATE:
        return _inflate_deflate(blob, dictionary)
    # One reader per thread and dictionary (not thread-safe, and cheap to keep).
    readers: dict[bytes, zstandard.ZstdDecompressor] = _readers.__dict__.setdefault("by", {})
    reader = readers.get(dictionary)
    if reader is None:
        if len(readers) >= 256:
            readers.clear()
        reader = readers[dictionary] = zstandard.ZstdDecompressor(dict_data=_digested(dictionary))
    try:
        return reader.decompress(blob[1:])
    except zstandard.ZstdError as exc:
        raise UnreadableDetail(str(exc)) from None


def _inflate_deflate(blob: bytes, dictionary: bytes) -> bytes:
    try:
        worker = zlib.decompressobj(15, zdict=dictionary)
        plain = worker.decompress(blob[1:]) + worker.flush()
    except zlib.error as exc:
        raise UnreadableDetail(str(exc)) from None
    if not worker.eof:
        raise UnreadableDetail("the stream is cut short")
    return plain


# --- dictionaries ------------------------------------------------------------------------------

_BY_VERSION = select(
    decision_dictionaries.c.playbook_version_id, decision_dictionaries.c.sample
).where(decision_dictionaries.c.playbook_version_id.in_(bindparam("ids", expanding=True)))
_ONE = select(decision_dictionaries.c.sample).where(
    decision_dictionaries.c.playbook_version_id == bindparam("id")
)


def dictionaries_for_writing(
    conn: Connection, samples: dict[int, bytes], now: datetime
) -> dict[int, bytes]:
    """The dictionary of each playbook version in `samples` (version id → a document of one
    of its decisions), made from that sample for a version that has none yet. Two writers
    making the first decisions of one version at once (PostgreSQL) agree: the second waits on
    the unique key, inserts nothing, and reads the first one's."""
    found = _read(conn, samples)
    missing = [version for version in samples if version not in found]
    if missing:
        insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
        conn.execute(
            insert(decision_dictionaries).on_conflict_do_nothing(
                index_elements=[decision_dictionaries.c.playbook_version_id]
            ),
            [
                {
                    "playbook_version_id": version,
                    "sample": samples[version][:DICTIONARY_LIMIT],
                    "created_at": now,
                }
                for version in missing
            ],
        )
        found.update(_read(conn, missing))
    return found


def _read(conn: Connection, versions: Iterable[int]) -> dict[int, bytes]:
    wanted = sorted(set(versions))
    if not wanted:
        return {}
    if len(wanted) == 1:  # the usual case, and a statement the driver caches
        sample = conn.execute(_ONE, {"id": wanted[0]}).scalar()
        return {} if sample is None else {wanted[0]: bytes(sample)}
    return {int(v): bytes(s) for v, s in conn.execute(_BY_VERSION, {"ids": wanted})}


class Dictionaries:
    """Dictionaries per database engine, for writing and for reading.

    A version's dictionary never changes once committed. Writers use only dictionaries known
    to be committed: one read or made inside a transaction joins the cache when that
    transaction commits, so a dictionary from a transaction that rolled back is never used to
    compress. Readers may cache what they read at once: each blob carries a check (the
    document's checksum; Adler-32 of the dictionary in the older format), so a wrong entry
    shows up as a mismatch and is read again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writing: weakref.WeakKeyDictionary[Engine, dict[int, Compressor]] = (
            weakref.WeakKeyDictionary()
        )
        self._reading: weakref.WeakKeyDictionary[Engine, dict[int, bytes]] = (
            weakref.WeakKeyDictionary()
        )

    def compressors(
        self, conn: Connection, samples: dict[int, bytes], now: datetime
    ) -> dict[int, Compressor]:
        """A compressor per playbook version in `samples` (see `dictionaries_for_writing`)."""
        known = self._of(self._writing, conn.engine)
        found = {version: known[version] for version in samples if version in known}
        missing = {version: sample for version, sample in samples.items() if version not in found}
        if missing:
            made = {
                version: Compressor(dictionary)
                for version, dictionary in dictionaries_for_writing(conn, missing, now).items()
            }
            found.update(made)
            tx = current_tx(conn)
            if tx is not None:
                tx.after_commit(lambda: self._remember(known, made))
        return found

    def plain(self, conn: Connection, version: int, blob: bytes) -> bytes:
        """The document stored in `blob`, a decision of playbook version `version`."""
        known = self._of(self._reading, conn.engine)
        dictionary = known.get(version)
        if dictionary is not None:
            try:
                return inflate(blob, dictionary)
            except UnreadableDetail:
                pass  # a stale entry, or a damaged blob: read the dictionary again to tell
        fresh = _read(conn, [version]).get(version)
        if fresh is None:
            raise UnreadableDetail(f"playbook version {version} has no decision dictionary")
        with self._lock:
            known[version] = fresh
        return inflate(blob, fresh)

    def decode(
        self, conn: Connection, version: int, blob: bytes
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return parse(self.plain(conn, version, blob))

    def _of(self, caches: weakref.WeakKeyDictionary[Engine, Any], engine: Engine) -> Any:
        with self._lock:
            known = caches.get(engine)
            if known is None:
                known = caches[engine] = {}
            return known

    def _remember(self, known: dict[int, Compressor], made: dict[int, Compressor]) -> None:
        with self._lock:
            known.update(made)


DICTIONARIES = Dictionaries()
"""Shared by every reader and writer in the process (entries are per database engine)."""
