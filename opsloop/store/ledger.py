"""The audit trail's hash chain, and digests of the decisions and actions it describes.

Every audit row stores `prev_hash` (the previous row's hash; 32 zero bytes for the first) and
`hash` = SHA-256 of a canonical encoding (orjson, sorted keys) of `prev_hash` and the row's own
fields. A row about a decision or an action also stores `digest`: SHA-256 of that row's
content as of the end of the transaction that wrote the audit row — for a decision its
playbook version, subject, trigger event, mode, status, choice, final choice, score, inputs and
explanation, and its reviews (verdict, option, reason, reviewer, reply); for an action its
kind, request, guarded flag, idempotency key, status, attempts and result.

Rows are appended last in their transaction (`Tx.before_commit`), under a lock on the one-row
`ledger_head` table: the appender takes the next ids and the previous hash from it and writes
them back, so ids are gapless and the chain's order is the id order, however many processes
write. On SQLite the write lock already makes writers take turns.

The canonical encoding reads JSON values back the way the database returns them (numbers as
PostgreSQL's `jsonb` gives them back), so a hash computed when a row is written is the hash a
later check computes from the stored row.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, bindparam, insert, select

from opsloop.store.bulk import run_many
from opsloop.store.database import LastWrite, Tx, current_tx
from opsloop.store.explanations import DICTIONARIES, UnreadableDetail
from opsloop.store.schema import actions, audit, decisions, reviews
from opsloop.store.types import json_dumps, json_loads, to_sqlite_text

Fields = Mapping[Any, Any]
"""A row's fields by name (a dict, or a row's `_mapping`)."""

GENESIS = bytes(32)
"""The `prev_hash` of the first row."""
DESCRIBED = ("decision", "action")
"""Object types whose audit rows carry a digest of the described row."""

_PENDING = "audit"  # key of the rows waiting to be appended in Tx.scratch
_INSERT = insert(audit)
_EXACT_FLOAT = 2**53


# --- the canonical encoding ---------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def as_stored(value: Any) -> Any:
    """A JSON column's value as any backend gives it back: through the JSON encoding, with
    every number an int when it is a whole number below 2**53 and a float otherwise (jsonb
    turns 1e16 into 10000000000000000 and -0.0 into 0)."""
    if value is None:
        return None
    try:
        return _numbers(value)  # plain JSON values (the usual case) need no round trip
    except _NotPlain:
        return _numbers(json_loads(json_dumps(value)))


class _NotPlain(Exception):
    """A value JSON encoding changes (a tuple, a set, a datetime, a key that is no string)."""


def _numbers(value: Any) -> Any:
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is int and -_EXACT_FLOAT < value < _EXACT_FLOAT:  # the usual number: as it is
        return value
    if isinstance(value, str | bool):  # their subclasses
        return value
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise _NotPlain
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            return None  # stored as null
        if float(value).is_integer() and abs(value) < _EXACT_FLOAT:
            return int(value)
        return float(value)
    raise _NotPlain


def _number(value: float | None) -> Any:
    return None if value is None else _numbers(value)


def _time(value: datetime | None) -> str | None:
    return None if value is None else to_sqlite_text(value)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).hex()


def row_hash(row: Fields) -> bytes:
    """The hash of an audit row (its fields and `prev_hash`)."""
    fields = {
        "prev": _hex(row["prev_hash"]),
        "id": int(row["id"]),
        "at": _time(row["at"]),
        "actor": row["actor"],
        "verb": row["verb"],
        "object_type": row["object_type"],
        "object_id": str(row["object_id"]),
        "detail": as_stored(row["detail"]),
        "digest": _hex(row["digest"]),
    }
    return hashlib.sha256(canonical(fields)).digest()


def decision_digest(row: Fields, plain: bytes, review_rows: Sequence[Fields]) -> bytes:
    """A decision's content: the row, its document (inputs and explanation) and its reviews."""
    fields = {
        "decision": int(row["id"]),
        "playbook": int(row["playbook_id"]),
        "version": int(row["playbook_version_id"]),
        "subject": row["subject"],
        "event": int(row["event_id"]),
        "mode": row["mode"],
        "status": row["status"],
        "choice": row["choice"],
        "final_choice": row["final_choice"],
        "score": _number(row["score"]),
        "needs_approval": bool(row["needs_approval"]),
        "sampled": bool(row["sampled"]),
        "created_at": _time(row["created_at"]),
        "decided_at": _time(row["decided_at"]),
        "detail": hashlib.sha256(plain).hexdigest(),
        "reviews": [
            [
                r["verdict"],
                r["option"],
                r["reason"],
                r["reviewer"],
                _time(r["created_at"]),
                r["draft"],
            ]
            for r in review_rows
        ],
    }
    return hashlib.sha256(canonical(fields)).digest()


def action_digest(row: Fields) -> bytes:
    fields = {
        "action": int(row["id"]),
        "decision": int(row["decision_id"]),
        "position": int(row["position"]),
        "kind": row["kind"],
        "request": as_stored(row["request"]),
        "guarded": bool(row["guarded"]),
        "idempotency_key": row["idempotency_key"],
        "status": row["status"],
        "attempts": int(row["attempts"]),
        "result": as_stored(row["result"]),
    }
    return hashlib.sha256(canonical(fields)).digest()


# --- reading what the audit rows describe ------------------------------------------------------

DECISION_COLUMNS = (
    decisions.c.id,
    decisions.c.playbook_id,
    decisions.c.playbook_version_id,
    decisions.c.subject,
    decisions.c.event_id,
    decisions.c.mode,
    decisions.c.status,
    decisions.c.choice,
    decisions.c.final_choice,
    decisions.c.score,
    decisions.c.needs_approval,
    decisions.c.sampled,
    decisions.c.created_at,
    decisions.c.decided_at,
    decisions.c.detail,
)
_DECISIONS = select(*DECISION_COLUMNS).where(decisions.c.id.in_(bindparam("ids", expanding=True)))
_REVIEWS = (
    select(
        reviews.c.decision_id,
        reviews.c.verdict,
        reviews.c.option,
        reviews.c.reason,
        reviews.c.reviewer,
        reviews.c.created_at,
        reviews.c.draft,
    )
    .where(reviews.c.decision_id.in_(bindparam("ids", expanding=True)))
    .order_by(reviews.c.decision_id, reviews.c.id)
)
ACTION_COLUMNS = (
    actions.c.id,
    actions.c.decision_id,
    actions.c.position,
    actions.c.kind,
    actions.c.request,
    actions.c.guarded,
    actions.c.idempotency_key,
    actions.c.status,
    actions.c.attempts,
    actions.c.result,
)
_ACTIONS = select(*ACTION_COLUMNS).where(actions.c.id.in_(bindparam("ids", expanding=True)))
_CHUNK = 400


def decision_digests(conn: Connection, ids: Iterable[int]) -> dict[int, bytes | None]:
    """Digest of each stored decision (None: its detail no longer inflates)."""
    wanted = sorted(set(ids))
    found: dict[int, bytes | None] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = {"ids": wanted[start : start + _CHUNK]}
        rows = [row._mapping for row in conn.execute(_DECISIONS, chunk)]
        by_decision: dict[int, list[Fields]] = {}
        for review in conn.execute(_REVIEWS, chunk):
            by_decision.setdefault(review.decision_id, []).append(review._mapping)
        for row in rows:
            found[row["id"]] = digest_of_decision(conn, row, by_decision.get(row["id"], []))
    return found


def digest_of_decision(
    conn: Connection, row: Fields, review_rows: Sequence[Fields]
) -> bytes | None:
    try:
        plain = DICTIONARIES.plain(conn, row["playbook_version_id"], bytes(row["detail"]))
    except UnreadableDetail:
        return None
    return decision_digest(row, plain, review_rows)


def action_digests(conn: Connection, ids: Iterable[int]) -> dict[int, bytes]:
    wanted = sorted(set(ids))
    found: dict[int, bytes] = {}
    for start in range(0, len(wanted), _CHUNK):
        for row in conn.execute(_ACTIONS, {"ids": wanted[start : start + _CHUNK]}):
            found[row.id] = action_digest(row._mapping)
    return found


# --- appending ----------------------------------------------------------------------------------


def append(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add audit rows (`at, actor, verb, object_type, object_id, detail`, and `digest` when the
    caller knows the described row's digest). In a `Database.transaction()` they are appended
    when it ends, so the digests show the described rows as the transaction leaves them;
    anywhere else, now."""
    tx = current_tx(conn)
    if tx is None:
        _write(conn, rows)
        return
    pending: list[dict[str, Any]] | None = tx.scratch.get(_PENDING)
    if pending is None:
        pending = tx.scratch[_PENDING] = []
        tx.before_commit(lambda: _write(conn, tx.scratch.pop(_PENDING)))
    pending.extend(rows)


# Every transaction that audits runs these two, straight on the driver's connection (in the
# same transaction): SQLAlchemy's statement and result handling would cost ten times the query.
_HEAD = "SELECT last_id, last_hash FROM ledger_head WHERE id = 1"
_MOVE_HEAD = {
    "sqlite": "UPDATE ledger_head SET last_id = ?, last_hash = ? WHERE id = 1",
    "postgresql": "UPDATE ledger_head SET last_id = %s, last_hash = %s WHERE id = 1",
}


def head(conn: Connection, *, lock: bool = False) -> tuple[int, bytes]:
    """(last id, last hash) of the chain; with `lock`, held until the transaction ends."""
    locking = lock and conn.dialect.name != "sqlite"
    driver = conn.connection.driver_connection
    assert driver is not None
    row = driver.execute(_HEAD + (" FOR UPDATE" if locking else "")).fetchone()
    if row is None:
        raise RuntimeError("the ledger has no head row: run `opsloop migrate`")
    return int(row[0]), bytes(row[1])


def _write(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    digests = _described(conn, rows)
    tx = current_tx(conn)
    # PostgreSQL remembers the head it commits (see `_APPEND_IF_HEAD`).
    remembering = tx if tx is not None and conn.dialect.name == "postgresql" else None
    if remembering is not None:
        _HEADS.hold(remembering)
    if remembering is not None and len(rows) <= _AT_ONCE:
        known = _HEADS.get(conn.engine)
        if known is not None:
            _append_if_head(remembering, rows, digests, known)
            return
    _append_locked(conn, rows, digests)


def _append_locked(
    conn: Connection, rows: list[dict[str, Any]], digests: dict[tuple[str, str], bytes]
) -> None:
    """Lock the head, append after it, move it."""
    tx = current_tx(conn)
    remembering = tx if tx is not None and conn.dialect.name == "postgresql" else None
    if tx is not None:
        tx.flush()  # the counters first, as in the one-statement append: one lock order
    # Everything above reads; from here on the head is locked until the commit.
    sealed = _seal(rows, digests, *head(conn, lock=True))
    run_many(conn, _INSERT, sealed)
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute(_MOVE_HEAD[conn.dialect.name], (sealed[-1]["id"], sealed[-1]["hash"]))
    if remembering is not None:
        _HEADS.remember_on_commit(remembering, sealed[-1])


def _seal(
    rows: list[dict[str, Any]],
    digests: dict[tuple[str, str], bytes],
    last_id: int,
    prev: bytes,
) -> list[dict[str, Any]]:
    """The rows as audit entries following (last_id, prev): ids, digests and hashes."""
    sealed = []
    for row in rows:
        last_id += 1
        entry = {
            "id": last_id,
            "at": row["at"],
            "actor": row["actor"],
            "verb": row["verb"],
            "object_type": row["object_type"],
            "object_id": str(row["object_id"]),
            "detail": row.get("detail") or {},
            "digest": row["digest"]
            if "digest" in row
            else digests.get((row["object_type"], str(row["object_id"]))),
            "prev_hash": prev,
        }
        entry["hash"] = prev = row_hash(entry)
        sealed.append(entry)
    return sealed


# PostgreSQL: the head this process last committed is most likely still the head (one server
# process is the usual deployment), so the rows are sealed against it and appended in one
# statement that moves the head only if it is still there. It is the transaction's last write,
# sent with its deferred writes and its COMMIT: one round trip instead of four (lock and read
# the head, insert, move it, commit). If another process moved the head first, the statement
# fails its guard (`opsloop_guard`, migration 0019): the append is undone and the rows take the
# locking path, in the same transaction (`Tx.last_write`). The writers of this process take
# turns from sealing to sending (`_Heads.hold`), so each seals against the head the one before
# it sent.
_AT_ONCE = 64
_APPEND_IF_HEAD = """
WITH moved AS (
    UPDATE ledger_head SET last_id = %(last_id)s, last_hash = %(last_hash)s
    WHERE id = 1 AND last_id = %(expected_id)s AND last_hash = %(expected_hash)s
    RETURNING id
)
INSERT INTO audit (id, at, actor, verb, object_type, object_id, detail, digest, prev_hash, hash)
SELECT * FROM unnest(
    %(id)s::bigint[], %(at)s::timestamptz[], %(actor)s::varchar[], %(verb)s::varchar[],
    %(object_type)s::varchar[], %(object_id)s::varchar[], %(detail)s::jsonb[],
    %(digest)s::bytea[], %(prev_hash)s::bytea[], %(hash)s::bytea[]
)
WHERE (SELECT opsloop_guard(count(*) = 1, 'the head of the audit ledger moved on') FROM moved)
"""


def _append_if_head(
    tx: Tx,
    rows: list[dict[str, Any]],
    digests: dict[tuple[str, str], bytes],
    known: tuple[int, bytes],
) -> None:
    """Append `rows` after `known` (last id, last hash) as the transaction's last write if
    that is still the head when it commits, else by the locking path."""
    sealed = _seal(rows, digests, *known)
    params: dict[str, Any] = {
        "last_id": sealed[-1]["id"],
        "last_hash": sealed[-1]["hash"],
        "expected_id": known[0],
        "expected_hash": known[1],
    }
    for column in (
        "id",
        "actor",
        "verb",
        "object_type",
        "object_id",
        "digest",
        "prev_hash",
        "hash",
    ):
        params[column] = [entry[column] for entry in sealed]
    params["at"] = [entry["at"].astimezone(UTC) for entry in sealed]
    params["detail"] = [json_dumps(entry["detail"]) for entry in sealed]
    engine, moved = tx.conn.engine, (sealed[-1]["id"], sealed[-1]["hash"])

    def sent() -> None:
        # The next writer of this process seals after these rows and sends at once: its
        # append waits in the server for this COMMIT (the head's row lock), not here for
        # the answer. Should this transaction not commit, that append finds the head
        # elsewhere and takes the locking path.
        _HEADS.remember(engine, moved, ahead=True)
        _HEADS.let_go(tx)

    def fell_back() -> None:
        _HEADS.forget(engine)
        _append_locked(tx.conn, rows, digests)

    tx.at_end(lambda: None if tx.committed else _HEADS.forget(engine))
    tx.last_write(LastWrite(_APPEND_IF_HEAD, params, fallback=fell_back, on_sent=sent))


class _Heads:
    """Per database engine, the ledger head as this process last committed it, and the turn
    of this process's writers at appending to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: weakref.WeakKeyDictionary[Engine, tuple[int, bytes]] = (
            weakref.WeakKeyDictionary()
        )
        # Re-entrant: a commit's callback may open a transaction that appends, in its thread.
        self._turns: weakref.WeakKeyDictionary[Engine, Any] = weakref.WeakKeyDictionary()

    def hold(self, tx: Tx) -> None:
        """Wait for this process's turn to append, and keep it until `tx` has sent its last
        round trip (`let_go`) or is over. Held from sealing to sending the append with the
        COMMIT (or, on the locking path, from locking the head to the transaction's end, as
        the server would make it wait anyway). Two writers of one process appending at once
        would otherwise both seal against the same head, and the second would take the
        locking path every time."""
        with self._lock:
            turn = self._turns.get(tx.conn.engine)
            if turn is None:
                turn = self._turns[tx.conn.engine] = threading.RLock()
        turn.acquire()
        held = tx.scratch.setdefault(_TURNS, [])
        held.append(turn)
        tx.at_end(lambda: self.let_go(tx))

    def let_go(self, tx: Tx) -> None:
        """Give up the turns `tx` holds (once: the transaction's end calls this again)."""
        held: list[Any] = tx.scratch.get(_TURNS, [])
        while held:
            held.pop().release()

    def get(self, engine: Engine) -> tuple[int, bytes] | None:
        with self._lock:
            return self._known.get(engine)

    def remember_on_commit(self, tx: Tx, last: dict[str, Any]) -> None:
        """Once `tx` commits, `last` (the last audit row it appended) is the head."""
        engine, moved = tx.conn.engine, (last["id"], last["hash"])
        tx.after_commit(lambda: self.remember(engine, moved))

    def remember(self, engine: Engine, head: tuple[int, bytes], *, ahead: bool = False) -> None:
        """`head` is the chain's head once the transaction that appended it commits; `ahead`:
        it is sent but not yet committed, and the next writer of this process seals after it
        (the one who sent it forgets it if it does not commit)."""
        with self._lock:  # commits may report out of order: keep the furthest
            known = self._known.get(engine)
            if ahead or known is None or head[0] > known[0]:
                self._known[engine] = head

    def forget(self, engine: Engine) -> None:
        """The remembered head may be wrong (a guard failed, or a transaction that sent its
        head did not commit): the next writer reads the head under its lock."""
        with self._lock:
            self._known.pop(engine, None)


_TURNS = "ledger.turns"  # in `Tx.scratch`: the turns the transaction holds, to give up once
_HEADS = _Heads()


def _described(conn: Connection, rows: list[dict[str, Any]]) -> dict[tuple[str, str], bytes]:
    """Digests of the decisions and actions the rows describe that came without one."""
    wanted: dict[str, set[int]] = {kind: set() for kind in DESCRIBED}
    for row in rows:
        kind, key = row["object_type"], str(row["object_id"])
        if kind in wanted and "digest" not in row and key.isdigit():
            wanted[kind].add(int(key))
    found: dict[tuple[str, str], bytes] = {}
    for decision_id, digest in decision_digests(conn, wanted["decision"]).items():
        if digest is not None:
            found[("decision", str(decision_id))] = digest
    for action_id, digest in action_digests(conn, wanted["action"]).items():
        found[("action", str(action_id))] = digest
    return found


# --- reading the chain back (`opsloop audit verify`) --------------------------------------------

_CHAIN = select(
    audit.c.id,
    audit.c.at,
    audit.c.actor,
    audit.c.verb,
    audit.c.object_type,
    audit.c.object_id,
    audit.c.detail,
    audit.c.digest,
    audit.c.prev_hash,
    audit.c.hash,
).order_by(audit.c.id)


def audit_page(conn: Connection, after_id: int, limit: int) -> list[Fields]:
    """Audit rows with ids above `after_id`, in id order, with their hashes."""
    rows = conn.execute(_CHAIN.where(audit.c.id > after_id).limit(limit))
    return [row._mapping for row in rows]


def decision_page(conn: Connection, after_id: int, limit: int) -> list[tuple[Fields, list[Fields]]]:
    """Decisions with ids above `after_id`, in id order, each with its reviews."""
    query = select(*DECISION_COLUMNS).where(decisions.c.id > after_id).order_by(decisions.c.id)
    rows = [row._mapping for row in conn.execute(query.limit(limit))]
    by_decision: dict[int, list[Fields]] = {}
    if rows:
        found = conn.execute(_REVIEWS, {"ids": [row["id"] for row in rows]})
        for review in found:
            by_decision.setdefault(review.decision_id, []).append(review._mapping)
    return [(row, by_decision.get(row["id"], [])) for row in rows]


def action_page(conn: Connection, after_id: int, limit: int) -> list[Fields]:
    query = select(*ACTION_COLUMNS).where(actions.c.id > after_id).order_by(actions.c.id)
    return [row._mapping for row in conn.execute(query.limit(limit))]


def latest_digests(conn: Connection, kind: str, ids: list[int]) -> dict[int, tuple[int, bytes]]:
    """For each decision or action id: (id, digest) of the latest audit row describing it."""
    found: dict[int, tuple[int, bytes]] = {}
    for start in range(0, len(ids), _CHUNK):
        keys = [str(i) for i in ids[start : start + _CHUNK]]
        query = select(audit.c.object_id, audit.c.id, audit.c.digest).where(
            audit.c.object_type == kind, audit.c.object_id.in_(keys), audit.c.digest.is_not(None)
        )
        for object_id, audit_id, digest in conn.execute(query):
            key = int(object_id)
            if key not in found or found[key][0] < audit_id:
                found[key] = (int(audit_id), bytes(digest))
    return found


def existing(conn: Connection, kind: str, ids: Iterable[int]) -> set[int]:
    """Which of these decision or action ids are still stored."""
    table = decisions if kind == "decision" else actions
    wanted = sorted(set(ids))
    found: set[int] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(conn.execute(select(table.c.id).where(table.c.id.in_(chunk))).scalars())
    return found
