"""Queries on the event ledger and on entities (subjects' merged traits)."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.core.event_views import Entity
from opsloop.core.events import Event, HistoryEvent, NewEvent, subject_kind
from opsloop.store import identities as identity_store
from opsloop.store.bulk import insert_deferred, insert_returning_ids, reserve_ids, run_many
from opsloop.store.database import current_tx
from opsloop.store.schema import entities, events, identities
from opsloop.store.types import UtcDateTime, json_dumps

_CHUNK = 400  # stay well under SQLite's bound-parameter limit

# Hot statements are built once: building and cache-keying a statement on every call costs more
# than running it. `expanding` parameters take a list, rendered as IN (?, ?, …) at run time.
# One source at a time: on SQLite, `source = ? AND key IN (…)` uses the unique index on both
# columns.
_BY_KEYS = select(events.c.idempotency_key, events.c.id).where(
    events.c.source == bindparam("source"),
    events.c.idempotency_key.in_(bindparam("keys", expanding=True)),
)
# On PostgreSQL the same query walks every row of the source whenever the planner's statistics
# are stale (autovacuum off, a bulk load): it takes `source = $1` for a handful of rows and
# filters the keys, so a 1,000-event batch slowed from 0.25 s to 2 s over 100,000 events. One
# index probe per key, forced by LATERAL … LIMIT 1 (never flattened into a join), is the same
# plan whatever the statistics say: both columns of the unique index, at most one row each.
# Run straight on the driver: it is in every ingest transaction, and SQLAlchemy's statement
# and result handling cost about half a round trip.
_BY_KEYS_PG = (
    "SELECT k.key, e.id FROM unnest(%(keys)s::varchar[]) AS k(key) CROSS JOIN LATERAL ("
    " SELECT id FROM events WHERE source = %(source)s AND idempotency_key = k.key LIMIT 1) AS e"
)
_TRAITS = select(entities.c.subject, entities.c.traits).where(
    entities.c.subject.in_(bindparam("subjects", expanding=True))
)
_PROFILES = select(entities.c.subject, entities.c.traits, entities.c.trusted_traits).where(
    entities.c.subject.in_(bindparam("subjects", expanding=True))
)
_PROFILES_LOCKED = _PROFILES.with_for_update()
_HISTORY_ALL = (
    select(
        events.c.subject,
        events.c.type,
        events.c.occurred_at,
        events.c.payload,
        events.c.source,
        events.c.id,
    )
    .where(
        events.c.subject.in_(bindparam("subjects", expanding=True)),
        events.c.type.in_(bindparam("types", expanding=True)),
    )
    .order_by(events.c.occurred_at, events.c.id)
)
_HISTORY = {
    (False, False): _HISTORY_ALL,
    (True, False): _HISTORY_ALL.where(events.c.occurred_at > bindparam("since")),
    (False, True): _HISTORY_ALL.where(events.c.occurred_at <= bindparam("until")),
    (True, True): _HISTORY_ALL.where(
        events.c.occurred_at > bindparam("since"), events.c.occurred_at <= bindparam("until")
    ),
}
_SET_TRAITS = (
    update(entities)
    .where(entities.c.subject == bindparam("key"))
    .values(
        traits=bindparam("traits"),
        trusted_traits=bindparam("trusted"),
        updated_at=bindparam("now"),
    )
)
ACTION_SOURCE = "action"
"""Who set a trait an `update_traits` action wrote: the business's own playbook, trusted."""


def find_by_idempotency(
    conn: Connection,
    keys: Iterable[tuple[str, str]],
    *,
    reserve: Mapping[str, int] | None = None,
) -> dict[tuple[str, str], int]:
    """Ids of stored events with these (source, idempotency_key) pairs.

    On PostgreSQL, `reserve` (table → count) takes ids for the transaction's coming inserts
    into `events` and `decisions` in the same round trip (`bulk.reserve_ids`)."""
    by_source: dict[str, set[str]] = defaultdict(set)
    for source, key in keys:
        by_source[source].add(key)
    found: dict[tuple[str, str], int] = {}
    ahead = conn.dialect.name == "postgresql" and bool(reserve)
    pending: Mapping[str, int] | None = (reserve or {}) if ahead else None
    for source, source_keys in by_source.items():
        wanted = sorted(source_keys)
        for start in range(0, len(wanted), _CHUNK):
            params = {"source": source, "keys": wanted[start : start + _CHUNK]}
            rows: Sequence[Any]
            if conn.dialect.name == "sqlite":
                rows = conn.execute(_BY_KEYS, params).all()
            elif pending is not None:
                rows = _known_and_ahead(conn, params, pending)
                pending = None
            else:
                driver = conn.connection.driver_connection
                assert driver is not None
                rows = driver.execute(_BY_KEYS_PG, params).fetchall()
            for key, event_id in rows:
                found[(source, key)] = int(event_id)
    if pending is not None:  # nothing keyed to look up: the rest alone
        _known_and_ahead(conn, {"source": "", "keys": []}, pending)
    return found


_RESERVABLE = ("events", "decisions")
# The ids `bulk._next_ids` takes, as an array column of this one statement.
_IDS_ARRAY = (
    "ARRAY(SELECT nextval(pg_get_serial_sequence('{table}', 'id'))"
    " FROM generate_series(1, %({table})s))"
)
_BY_KEYS_AND_AHEAD_PG = (
    f"WITH known AS ({_BY_KEYS_PG}) SELECT ARRAY(SELECT ARRAY[key, id::text] FROM known), "
    + ", ".join(_IDS_ARRAY.format(table=table) for table in _RESERVABLE)
)


def _known_and_ahead(
    conn: Connection,
    params: dict[str, Any],
    reserve: Mapping[str, int],
) -> list[tuple[str, str]]:
    """The duplicate check and the reserved ids in one statement; returns the duplicate
    check's (key, id) pairs."""
    unknown = set(reserve) - set(_RESERVABLE)
    if unknown:
        raise ValueError(f"cannot reserve ids for {sorted(unknown)}")
    counts = {table: reserve.get(table, 0) for table in _RESERVABLE}
    tx = current_tx(conn)
    if tx is not None:
        # Often a transaction's first statement: its BEGIN then goes with it.
        with tx.pipelined() as driver:
            cursor = driver.execute(_BY_KEYS_AND_AHEAD_PG, {**params, **counts})
    else:
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.execute(_BY_KEYS_AND_AHEAD_PG, {**params, **counts})
    row = cursor.fetchone()
    assert row is not None  # one row, always
    known, *ids = row
    taken = zip(_RESERVABLE, ids, strict=True)
    reserve_ids(conn, {table: [int(i) for i in got] for table, got in taken})
    return [(key, event_id) for key, event_id in known]


def insert_events(conn: Connection, new: list[NewEvent], *, with_touch: bool = False) -> list[int]:
    """Insert events (already deduplicated) and return their ids in the same order.
    `with_touch`: the caller's next statement is `touch_and_merge` for these events, and
    nothing reads them before it; PostgreSQL then sends a few of them in its round trip
    (`bulk.insert_deferred`)."""
    if not new:
        return []
    rows = [
        {
            "source": e.source,
            "type": e.type,
            "subject": e.subject,
            "occurred_at": e.occurred_at,
            "received_at": e.received_at,
            "payload": e.payload,
            "traits": e.traits or None,
            "idempotency_key": e.idempotency_key,
        }
        for e in new
    ]
    if with_touch:
        return insert_deferred(conn, events, rows)
    return insert_returning_ids(conn, events, rows)


def get_events(conn: Connection, ids: Iterable[int]) -> dict[int, Event]:
    wanted = list(ids)
    found: dict[int, Event] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(select(events).where(events.c.id.in_(wanted[start : start + _CHUNK])))
        for row in rows:
            found[row.id] = as_event(row)
    return found


def list_events(
    conn: Connection,
    *,
    subject: str | None = None,
    type: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Event]:
    query = select(events).order_by(events.c.id.desc()).limit(limit)
    if subject:
        query = query.where(events.c.subject == subject)
    if type:
        query = query.where(events.c.type == type)
    if before_id:
        query = query.where(events.c.id < before_id)
    return [as_event(row) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class HistoryWanted:
    """A history read (`fetch_history`'s arguments), to make with other statements."""

    subjects: list[str]
    types: set[str]
    since: datetime | None
    until: datetime | None

    def read(self, conn: Connection) -> dict[str, list[HistoryEvent]]:
        return fetch_history(conn, self.subjects, self.types, since=self.since, until=self.until)

    def covers(self, other: HistoryWanted) -> bool:
        """Everything `other` would read is in what this reads."""
        return (
            set(other.subjects) <= set(self.subjects)
            and other.types <= self.types
            and (self.since is None or (other.since is not None and self.since <= other.since))
            and (self.until is None or (other.until is not None and other.until <= self.until))
        )


@dataclass(frozen=True, slots=True)
class HistoryRead:
    """A history read made ahead, and what it asked for."""

    wanted: HistoryWanted
    events: dict[str, list[HistoryEvent]]


def fetch_history(
    conn: Connection,
    subjects: list[str],
    types: set[str],
    *,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, list[HistoryEvent]]:
    """The subjects' events of the given types in (since, until] (no bound where a side is
    None), oldest first, by subject.

    One query per chunk of subjects — `subject IN (...)` walks the (subject, occurred_at) index
    — so a batch of decisions reads its history at once. Callers narrow each subject's window
    further themselves.

    A subject's history includes the events of its aliases (store/identities.py): the page
    views of the anonymous visitor a lead was before signing up are the lead's. That costs one
    indexed read of the aliases per chunk (on PostgreSQL, a part of the history's statement).
    """
    history: dict[str, list[HistoryEvent]] = defaultdict(list)
    if not types:
        return history
    if conn.dialect.name != "sqlite":
        return _history_pg(conn, subjects, sorted(types), since, until)
    wanted_types = sorted(types)
    query = _HISTORY[(since is not None, until is not None)]
    for start in range(0, len(subjects), _CHUNK):
        chunk = subjects[start : start + _CHUNK]
        owner = {
            alias: subject
            for subject, aliases in identity_store.aliases_of(conn, chunk).items()
            for alias in aliases
        }
        params = {
            "subjects": [*chunk, *owner],
            "types": wanted_types,
            "until": until,
            "since": since,
        }
        # Rows come in (occurred_at, id) order, so an alias's events fall into place in its
        # subject's list without sorting again.
        for subject, type_, occurred_at, payload, source, event_id in conn.execute(query, params):
            history[owner.get(subject, subject)].append(
                HistoryEvent(type_, occurred_at, payload, source, event_id)
            )
    return history


# PostgreSQL: the history of a whole batch's subjects and of their aliases in one statement
# (one round trip, where a group of single events once read its aliases with the duplicate
# check and a batch in a round trip of its own). The lists go as arrays, so the
# statement's text is the same for 1 subject or 1,000: compiled and prepared once, where
# `IN (…400 parameters…)` was rendered, converted and parsed again on every call (a tenth of a
# batch's writer thread). Each name is one probe of an index whatever the planner's statistics
# say: `OFFSET 0` keeps each LATERAL subquery from being flattened into a join (which, on a
# table analyzed while empty, scanned all of `events` once per chunk), and the types are
# filtered outside it (inside, a stale plan ANDed the `type` index: every event of the type,
# per subject).
_PG_HISTORY_CHUNK = 5000
_PG_NAMES = (
    "SELECT s.owner, s.owner FROM unnest(CAST(:subjects AS varchar[])) AS s(owner)"
    " UNION ALL SELECT s.owner, i.alias FROM unnest(CAST(:subjects AS varchar[])) AS s(owner)"
    " CROSS JOIN LATERAL"
    " (SELECT alias FROM identities WHERE identities.subject = s.owner OFFSET 0) AS i"
)
_PG_HISTORY_SQL = """
SELECT w.owner, w.name, e.type, e.occurred_at, e.payload, e.source, e.id
FROM ({names}) AS w(owner, name)
CROSS JOIN LATERAL (
    SELECT type, occurred_at, payload, source, id FROM events
    WHERE events.subject = w.name{window}
    OFFSET 0
) AS e
WHERE e.type = ANY(CAST(:types AS varchar[]))
ORDER BY e.occurred_at, e.id
"""
_PG_WINDOWS = {
    (False, False): "",
    (True, False): " AND events.occurred_at > :since",
    (False, True): " AND events.occurred_at <= :until",
    (True, True): " AND events.occurred_at > :since AND events.occurred_at <= :until",
}


@functools.cache
def _pg_history(bounds: tuple[bool, bool]) -> Any:
    statement = text(_PG_HISTORY_SQL.format(names=_PG_NAMES, window=_PG_WINDOWS[bounds]))
    times = [name for name, bound in zip(("since", "until"), bounds, strict=True) if bound]
    statement = statement.bindparams(*(bindparam(name, type_=UtcDateTime) for name in times))
    return statement.columns(
        events.c.subject,
        identities.c.alias,
        events.c.type,
        events.c.occurred_at,
        events.c.payload,
        events.c.source,
        events.c.id,
    )


def _history_pg(
    conn: Connection,
    subjects: list[str],
    types: list[str],
    since: datetime | None,
    until: datetime | None,
) -> dict[str, list[HistoryEvent]]:
    history: dict[str, list[HistoryEvent]] = defaultdict(list)
    bounds = (since is not None, until is not None)
    for start in range(0, len(subjects), _PG_HISTORY_CHUNK):
        chunk = subjects[start : start + _PG_HISTORY_CHUNK]
        params = _pg_history_params(chunk, types, since, until)
        _add_history(history, conn.execute(_pg_history(bounds), params).all())
    return history


def _add_history(history: dict[str, list[HistoryEvent]], rows: Sequence[Any]) -> None:
    # A name that is both a subject of the chunk and another's alias comes twice: its events
    # are its owner's, as on SQLite.
    owner_of = {name: owner for owner, name, *_ in rows if owner != name}
    for owner, name, type_, occurred_at, payload, source, event_id in rows:
        if owner_of.get(name, name) == owner:
            history[owner].append(HistoryEvent(type_, occurred_at, payload, source, event_id))


@functools.cache
def _driver_sql(statement: Any) -> str:
    """A PostgreSQL statement as psycopg takes it, to send in a pipeline (`_touch_pg`)."""
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect(paramstyle="pyformat")  # type: ignore[no-untyped-call]
    return str(statement.compile(dialect=dialect)).strip()


def _pg_history_params(
    subjects: list[str], types: list[str], since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"subjects": subjects, "types": types}
    if since is not None:
        params["since"] = since
    if until is not None:
        params["until"] = until
    return params


def count_events(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(events)).scalar_one()


def count_by_source(conn: Connection) -> dict[str, int]:
    query = select(events.c.source, func.count()).group_by(events.c.source)
    return {str(source): int(count) for source, count in conn.execute(query)}


def as_event(row: Any) -> Event:
    """An `events` row as the domain sees it."""
    return Event(
        id=row.id,
        source=row.source,
        type=row.type,
        subject=row.subject,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        payload=row.payload,
        traits=row.traits or {},
        idempotency_key=row.idempotency_key,
    )


# --- entities ------------------------------------------------------------------------------


@dataclass(slots=True)
class Profiles:
    """Subjects' traits as merged so far, and which of them a trusted source set."""

    traits: dict[str, dict[str, Any]] = field(default_factory=dict)
    trusted: dict[str, dict[str, str]] = field(default_factory=dict)
    """subject → trait → the trusted source that set it."""
    created: set[str] = field(default_factory=set)
    """Subjects whose rows this transaction created (`touch_and_merge`): nothing was decided
    about them before."""
    history: HistoryRead | None = None
    """The history read with the touch, when one was asked for (`touch_and_merge`)."""


@dataclass(frozen=True, slots=True)
class TraitPatch:
    """One event's traits, to merge into its subject's profile."""

    traits: dict[str, Any]
    source: str
    trusted: bool
    """False for a public source (a tracking write key, an `allow_unsigned` webhook)."""


@dataclass(frozen=True, slots=True)
class KeptTrait:
    """A protected trait a public source tried to change and the merge kept as it was."""

    subject: str
    source: str
    trait: str
    set_by: str
    """The trusted source whose value was kept."""


def touch_entities(
    conn: Connection, seen: dict[str, tuple[datetime, datetime]], now: datetime
) -> Profiles:
    """Make sure each subject has an entity row, widen its first/last seen times to cover `seen`
    (subject → (earliest, latest) event time; a late event can move `first_seen_at` back), and
    return each subject's current traits and their provenance. The rows stay locked until the
    transaction ends, so the caller can merge trait patches safely."""
    profiles, _ = touch_and_merge(conn, seen, {}, now, protected=())
    return profiles


def touch_and_merge(
    conn: Connection,
    seen: dict[str, tuple[datetime, datetime]],
    patches: dict[str, list[TraitPatch]],
    now: datetime,
    *,
    protected: Collection[str],
    history: HistoryWanted | None = None,
) -> tuple[Profiles, list[KeptTrait]]:
    """`touch_entities`, then `apply_patches`, with each subject seen for the first time
    written once: its row goes in with its patches already merged, instead of going in empty
    and being updated (half the entity writes for new leads, customers and tickets). Existing
    subjects are merged as `apply_patches` merges them, their rows locked first.

    `history`: a history read to make too, its result in `Profiles.history` (PostgreSQL:
    in the upsert's round trip). It sees the events stored before this call."""
    if not seen:
        read = HistoryRead(history, history.read(conn)) if history is not None else None
        return Profiles(history=read), []
    # What each patched subject's profile would be if it were new; used for those that are.
    fresh = {
        subject: _merged(subject, {}, {}, in_order, protected)
        for subject, in_order in patches.items()
    }

    def starting(subject: str) -> tuple[dict[str, Any], dict[str, str] | None]:
        """The traits and trusted setters a new row for `subject` goes in with."""
        if subject not in fresh:
            return {}, None
        return fresh[subject][0], fresh[subject][1] or None

    if conn.dialect.name != "sqlite":
        subjects = sorted(seen)  # two writers lock the same subjects in one order
        rows = []
        for subject in subjects:
            traits, trusted = starting(subject)
            first, last = seen[subject]
            rows.append(
                {
                    "subject": subject,
                    "kind": subject_kind(subject),
                    "traits": traits,
                    "trusted": trusted,
                    "first_seen": first,
                    "last_seen": last,
                }
            )
        found, events_read = _touch_pg(conn, {"rows": json_dumps(rows), "now": now}, history)
        profiles = Profiles(
            history=HistoryRead(history, events_read)
            if history is not None and events_read is not None
            else None
        )
        inserted: set[str] = set()
        for subject, traits, trusted, is_new in found:
            profiles.traits[subject] = traits
            profiles.trusted[subject] = trusted or {}
            if is_new:
                inserted.add(subject)
    else:
        # SQLite: this writer holds the database, so what the read finds missing stays missing.
        profiles = get_profiles(conn, seen)
        inserted = {subject for subject in seen if subject not in profiles.traits}
        new_rows, seen_again = [], []
        for subject, (first, last) in seen.items():
            row = {
                "subject": subject,
                "kind": subject_kind(subject),
                "first_seen_at": first,
                "last_seen_at": last,
                "updated_at": now,
            }
            if subject in inserted:
                row["traits"], row["trusted_traits"] = starting(subject)
                profiles.traits[subject], profiles.trusted[subject] = {}, {}
                new_rows.append(row)
            else:
                seen_again.append({**row, "traits": {}})
        run_many(conn, _insert_of_entities(), new_rows)
        run_many(conn, _TOUCH_SQLITE, seen_again)
        if history is not None:
            profiles.history = HistoryRead(history, history.read(conn))
    profiles.created = inserted
    kept: list[KeptTrait] = []
    for subject in sorted(inserted & fresh.keys()):
        profiles.traits[subject], profiles.trusted[subject], kept_here = fresh[subject]
        kept.extend(kept_here)
    rest = {subject: in_order for subject, in_order in patches.items() if subject not in inserted}
    kept.extend(apply_patches(conn, profiles, rest, now, protected=protected))
    return profiles, kept


def _touch_pg(
    conn: Connection, params: dict[str, Any], history: HistoryWanted | None
) -> tuple[list[Any], dict[str, list[HistoryEvent]] | None]:
    """The upsert, sent in one round trip with the writes the transaction deferred to it (the
    events it is storing: `insert_events(with_touch=True)`) and the history read after it."""
    tx = current_tx(conn)
    if tx is None:
        found = list(conn.execute(_TOUCH_MERGED_PG, params))
        return found, history.read(conn) if history is not None else None
    together = (
        history is not None and bool(history.types) and len(history.subjects) <= _PG_HISTORY_CHUNK
    )
    read = None
    with tx.pipelined() as driver:
        cursor = driver.execute(_driver_sql(_TOUCH_MERGED_PG), params)
        if together:
            assert history is not None
            since, until = history.since, history.until
            read = driver.execute(
                _driver_sql(_pg_history((since is not None, until is not None))),
                _pg_history_params(history.subjects, sorted(history.types), since, until),
            )
    found = list(cursor.fetchall())
    if history is None:
        return found, None
    if read is None:
        return found, history.read(conn)
    read_history: dict[str, list[HistoryEvent]] = defaultdict(list)
    # As the statement's columns convert them: times in UTC (jsonb arrives decoded).
    rows = [(*row[:3], row[3].astimezone(UTC), *row[4:]) for row in read.fetchall()]
    _add_history(read_history, rows)
    return found, read_history


# One statement, however many subjects: the upsert locks each row (in subject order, so two
# writers touching the same subjects lock them in one order) and returns its traits, with the
# traits a new row starts with; `xmax = 0` marks a row this statement inserted rather than
# updated (PostgreSQL's usual test for which half of an upsert ran). The
# rows go as one JSON document: psycopg quotes and escapes an array of JSON texts element by
# element in Python (a fifth of a 1,000-event batch's writer thread), orjson writes the
# document at C speed and the server reads it back.
_TOUCH_MERGED_PG = text(
    """
    INSERT INTO entities (
        subject, kind, traits, trusted_traits, first_seen_at, last_seen_at, updated_at
    )
    SELECT wanted.subject, wanted.kind, wanted.traits, wanted.trusted,
        wanted.first_seen, wanted.last_seen, :now
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS wanted(
        subject text, kind text, traits jsonb, trusted jsonb,
        first_seen timestamptz, last_seen timestamptz
    )
    ON CONFLICT (subject) DO UPDATE SET
        first_seen_at = least(entities.first_seen_at, excluded.first_seen_at),
        last_seen_at = greatest(entities.last_seen_at, excluded.last_seen_at)
    RETURNING entities.subject, entities.traits, entities.trusted_traits, entities.xmax = 0
    """
)


@functools.cache
def _insert_of_entities() -> Any:
    return insert(entities)


# SQLite: widen a known subject's seen times (the insert half never runs: it was read first).
_touch_sqlite = sqlite_insert(entities)
_TOUCH_SQLITE = _touch_sqlite.on_conflict_do_update(
    index_elements=[entities.c.subject],
    set_={
        "first_seen_at": func.min(entities.c.first_seen_at, _touch_sqlite.excluded.first_seen_at),
        "last_seen_at": func.max(entities.c.last_seen_at, _touch_sqlite.excluded.last_seen_at),
    },
)


def ensure_entity(conn: Connection, subject: str, now: datetime) -> None:
    """Create the entity row if missing, leaving an existing row's seen times alone."""
    stmt = (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(entities)
    row = {
        "subject": subject,
        "kind": subject_kind(subject),
        "traits": {},
        "first_seen_at": now,
        "last_seen_at": now,
        "updated_at": now,
    }
    conn.execute(stmt.on_conflict_do_nothing(index_elements=[entities.c.subject]), row)


def merge_traits(conn: Connection, patches: dict[str, dict[str, Any]], now: datetime) -> None:
    """Apply trait patches to existing entity rows (call `touch_entities` first), as an
    `update_traits` action does: the business's own playbook, so a trusted write.

    A patch works like JSON Merge Patch (RFC 7396): keys replace, nested objects merge, and a
    key set to null is removed. The rows are locked first so concurrent writers cannot lose
    each other's updates on PostgreSQL (SQLite writers are already serialized).
    """
    if not patches:
        return
    current = get_profiles(conn, patches, lock=True)
    in_order = {
        subject: [TraitPatch(patch, ACTION_SOURCE, trusted=True)]
        for subject, patch in patches.items()
    }
    apply_patches(conn, current, in_order, now, protected=())


def apply_patches(
    conn: Connection,
    current: Profiles,
    patches: dict[str, list[TraitPatch]],
    now: datetime,
    *,
    protected: Collection[str],
) -> list[KeptTrait]:
    """Merge each subject's patches, in order, into `current` (read with `lock=True`) and write
    them back; `current` is updated in place so callers can use the merged traits.

    A trusted patch records itself as the setter of each trait it sets (and forgets the ones it
    removes). A public patch may not change or remove a `protected` trait a trusted source set:
    that key is skipped and returned as a `KeptTrait`; its other keys merge as usual, and a
    trait it sets is no longer counted as set by a trusted source."""
    if not patches:
        return []
    kept: list[KeptTrait] = []
    for subject, in_order in patches.items():
        merged, trusted, kept_here = _merged(
            subject,
            current.traits.get(subject, {}),
            current.trusted.get(subject, {}),
            in_order,
            protected,
        )
        kept.extend(kept_here)
        current.traits[subject] = merged
        current.trusted[subject] = trusted
    if conn.dialect.name != "sqlite" and len(patches) > 1:
        # One statement for all the rows (an executemany costs twice as much at 1,000).
        rows = [
            {
                "subject": subject,
                "kind": subject_kind(subject),
                "traits": current.traits[subject],
                "trusted": current.trusted[subject] or None,
            }
            for subject in patches
        ]
        conn.execute(_SET_TRAITS_PG, {"rows": json_dumps(rows), "now": now})
    else:
        updates = [
            {
                "key": subject,
                "traits": current.traits[subject],
                "trusted": current.trusted[subject] or None,
                "now": now,
            }
            for subject in patches
        ]
        run_many(conn, _SET_TRAITS, updates)
    return kept


def _merged(
    subject: str,
    traits: dict[str, Any],
    trusted_by: dict[str, str],
    in_order: list[TraitPatch],
    protected: Collection[str],
) -> tuple[dict[str, Any], dict[str, str], list[KeptTrait]]:
    """A subject's traits and their trusted setters after its patches, and what was kept."""
    merged = traits
    trusted = dict(trusted_by)
    kept: list[KeptTrait] = []
    for patch in in_order:
        changes = patch.traits
        if not patch.trusted:
            guarded = [
                key
                for key, value in changes.items()
                if key in protected and key in trusted and merged.get(key) != value
            ]
            kept.extend(KeptTrait(subject, patch.source, key, trusted[key]) for key in guarded)
            changes = {key: value for key, value in changes.items() if key not in guarded}
        before, merged = merged, merge_patch(merged, changes)
        for key, value in changes.items():
            if patch.trusted and value is not None:
                trusted[key] = patch.source
            elif value is not None and before.get(key) == value:
                continue  # a public source said the same again: still the trusted value
            else:
                trusted.pop(key, None)
    return merged, trusted, kept


# An upsert rather than `UPDATE … FROM unnest(…)`: the conflict check always probes the primary
# key, while the UPDATE's join is planned from statistics, and on a table whose statistics say
# empty that plan is a scan of every entity for each batch. The rows exist (touched or read
# with a lock first), so the INSERT half only names what a new row would need. The rows go as
# one JSON document (see `_TOUCH_MERGED_PG`); no trusted setter is stored as NULL, which reads
# back as None, as JSON's null does.
_SET_TRAITS_PG = text(
    """
    INSERT INTO entities (
        subject, kind, traits, trusted_traits, first_seen_at, last_seen_at, updated_at
    )
    SELECT changed.subject, changed.kind, changed.traits, changed.trusted, :now, :now, :now
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS changed(
        subject text, kind text, traits jsonb, trusted jsonb
    )
    ON CONFLICT (subject) DO UPDATE SET
        traits = excluded.traits,
        trusted_traits = excluded.trusted_traits,
        updated_at = excluded.updated_at
    """
)


def get_traits(conn: Connection, subjects: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Current traits of these subjects."""
    wanted = list(subjects)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), _CHUNK):
        for subject, traits in conn.execute(_TRAITS, {"subjects": wanted[start : start + _CHUNK]}):
            found[subject] = traits
    return found


def get_profiles(conn: Connection, subjects: Iterable[str], *, lock: bool = False) -> Profiles:
    """Current traits of these subjects and who set them; with `lock`, the rows stay locked
    until the transaction ends (PostgreSQL; SQLite's writer already holds the database)."""
    wanted = list(subjects)
    found = Profiles()
    query = _PROFILES_LOCKED if lock and conn.dialect.name != "sqlite" else _PROFILES
    for start in range(0, len(wanted), _CHUNK):
        chunk = _profiles(conn.execute(query, {"subjects": wanted[start : start + _CHUNK]}))
        found.traits.update(chunk.traits)
        found.trusted.update(chunk.trusted)
    return found


def trusted_traits(conn: Connection, subjects: Iterable[str]) -> dict[str, dict[str, str]]:
    """trait → the trusted source that set it, for the subjects that have any."""
    profiles = get_profiles(conn, subjects)
    return {subject: traits for subject, traits in profiles.trusted.items() if traits}


def _profiles(rows: Iterable[Any]) -> Profiles:
    found = Profiles()
    for subject, traits, trusted in rows:
        found.traits[subject] = traits
        found.trusted[subject] = trusted or {}
    return found


def get_entity(conn: Connection, subject: str) -> Entity | None:
    row = conn.execute(select(entities).where(entities.c.subject == subject)).first()
    # A row of `select(entities)`: the table's columns are Entity's keys.
    return cast(Entity, dict(row._mapping)) if row else None


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            # A patch object merges into {} when the target holds no object there (RFC 7396),
            # so nulls nested in it are dropped rather than stored.
            current = merged.get(key)
            merged[key] = merge_patch(current if isinstance(current, dict) else {}, value)
        else:
            merged[key] = value
    return merged
