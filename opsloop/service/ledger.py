"""Checking the ledger: `opsloop audit verify`.

Walks the audit hash chain in id order and recomputes every row's hash; then checks that each
decision and action still matches the digest on its latest audit row. Everything is read in
pages of a few thousand rows from one snapshot, so memory stays flat however long the ledger
is, and the answer describes one moment even while the server writes. It names the first
problem it finds — in the chain, in id order; then decisions, then actions, by id — because
one change usually breaks many checks after it.

What it proves is in docs/ledger.md: someone with write access to the database who rewrites
the whole chain from the start, head included, is caught only by comparing the head hash with
a copy kept elsewhere, which is why the head hash is printed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from opsloop.service.context import Context
from opsloop.store import ledger

PAGE = 2000

Progress = Callable[[str, int, int], None]
"""Called with (what is being checked, how many so far, how many in all)."""


@dataclass(frozen=True, slots=True)
class Verification:
    intact: bool
    problem: str | None
    """The first problem found, in words: which row, and what is wrong with it."""
    audit_rows: int
    decisions: int
    actions: int
    head_id: int
    head_hash: str
    """Hex SHA-256 of the last audit row: note it (or export it) to catch a rewrite of the
    whole chain later."""


def verify(
    ctx: Context,
    *,
    expect: tuple[int, str] | None = None,
    progress: Progress | None = None,
) -> Verification:
    """`expect`: (audit row id, hex hash) noted from an earlier run; the chain must still
    pass through that row with that hash, which catches a rewrite of the whole chain."""
    report = progress or (lambda what, done, total: None)
    with ctx.db.snapshot() as conn:
        head_id, head_hash = ledger.head(conn)
        counts = {"audit_rows": 0, "decisions": 0, "actions": 0}
        problem = (
            _chain(conn, head_id, head_hash, counts, report)
            or _noted(conn, expect)
            or _decisions(conn, counts, report)
            or _actions(conn, counts, report)
        )
    return Verification(
        intact=problem is None,
        problem=problem,
        head_id=head_id,
        head_hash=head_hash.hex(),
        **counts,
    )


def _chain(
    conn: Connection, head_id: int, head_hash: bytes, counts: dict[str, int], report: Progress
) -> str | None:
    prev_id: int | None = None
    prev_hash = ledger.GENESIS
    after = 0
    while page := ledger.audit_page(conn, after, PAGE):
        chain_problem: tuple[int, str] | None = None
        for index, row in enumerate(page):
            found = _link(row, prev_id, prev_hash, head_id)
            if found is not None:
                chain_problem = (index, found)
                break
            prev_id, prev_hash = row["id"], bytes(row["hash"])
        checked = page if chain_problem is None else page[: chain_problem[0] + 1]
        removed = _removed(conn, checked)
        if removed is not None:
            return removed
        if chain_problem is not None:
            return chain_problem[1]
        counts["audit_rows"] += len(page)
        after = page[-1]["id"]
        report("audit rows", counts["audit_rows"], head_id)
    if prev_id != head_id or prev_hash != head_hash:
        if prev_id is None or prev_id < head_id:
            first = 1 if prev_id is None else prev_id + 1
            return f"{_rows(first, head_id)} missing (the ledger's head is row {head_id})"
        return f"audit row {head_id} was altered (the ledger's head records another hash)"
    return None


def _noted(conn: Connection, expect: tuple[int, str] | None) -> str | None:
    if expect is None:
        return None
    row_id, noted = expect
    found = ledger.audit_page(conn, row_id - 1, 1)
    row = found[0] if found else None
    if row is None or row["id"] != row_id:
        return f"audit row {row_id}, whose hash you noted, is not in the ledger"
    if bytes(row["hash"]).hex() != noted.lower():
        return (
            f"audit row {row_id} no longer has the hash you noted: the chain was rewritten "
            "from that row or earlier"
        )
    return None


def _link(row: ledger.Fields, prev_id: int | None, prev_hash: bytes, head_id: int) -> str | None:
    row_id = row["id"]
    if row_id > head_id:
        return f"audit row {row_id} was added outside the ledger (the chain ends at row {head_id})"
    stored_hash, stored_prev = row["hash"], row["prev_hash"]
    if stored_hash is None or stored_prev is None:
        return f"audit row {row_id} was added outside the ledger (it has no hash)"
    if ledger.row_hash({**row, "prev_hash": bytes(stored_prev)}) != bytes(stored_hash):
        return f"audit row {row_id} was altered (its hash does not match)"
    if bytes(stored_prev) == prev_hash:
        return None
    if prev_id is None:
        return (
            f"{_rows(1, row_id - 1)} missing (row {row_id} does not follow the start of the ledger)"
            if row_id > 1
            else f"audit row {row_id} was altered (it does not start the chain)"
        )
    if row_id > prev_id + 1:
        return (
            f"{_rows(prev_id + 1, row_id - 1)} missing (row {row_id} does not follow row {prev_id})"
        )
    return f"audit row {prev_id} was altered (row {row_id} does not follow it)"


def _rows(first: int, last: int) -> str:
    return f"audit row {first} is" if first == last else f"audit rows {first} to {last} are"


def _removed(conn: Connection, rows: list[ledger.Fields]) -> str | None:
    """The first row of `rows` that describes a decision or action no longer stored."""
    described = [
        (row["id"], row["object_type"], int(row["object_id"]))
        for row in rows
        if row["object_type"] in ledger.DESCRIBED
        and row["digest"] is not None
        and str(row["object_id"]).isdigit()
    ]
    if not described:
        return None
    present = {
        kind: ledger.existing(conn, kind, [key for _, k, key in described if k == kind])
        for kind in ledger.DESCRIBED
    }
    for audit_id, kind, key in described:
        if key not in present[kind]:
            return f"{kind} {key} was removed (audit row {audit_id} describes it)"
    return None


def _decisions(conn: Connection, counts: dict[str, int], report: Progress) -> str | None:
    after = 0
    while page := ledger.decision_page(conn, after, PAGE):
        ids = [row["id"] for row, _ in page]
        latest = ledger.latest_digests(conn, "decision", ids)
        for row, review_rows in page:
            problem = _compare(
                "decision",
                row["id"],
                latest.get(row["id"]),
                ledger.digest_of_decision(conn, row, review_rows),
            )
            if problem:
                return problem
        counts["decisions"] += len(page)
        after = ids[-1]
        report("decisions", counts["decisions"], 0)
    return None


def _actions(conn: Connection, counts: dict[str, int], report: Progress) -> str | None:
    after = 0
    while page := ledger.action_page(conn, after, PAGE):
        ids = [row["id"] for row in page]
        latest = ledger.latest_digests(conn, "action", ids)
        for row in page:
            problem = _compare(
                "action", row["id"], latest.get(row["id"]), ledger.action_digest(row)
            )
            if problem:
                return problem
        counts["actions"] += len(page)
        after = ids[-1]
        report("actions", counts["actions"], 0)
    return None


def _compare(
    kind: str, key: int, latest: tuple[int, bytes] | None, digest: bytes | None
) -> str | None:
    if latest is None:
        return f"{kind} {key} is in no audit row (it was added outside the ledger)"
    audit_id, recorded = latest
    if digest is None:
        return f"{kind} {key} was altered after audit row {audit_id} (it can no longer be read)"
    if digest != recorded:
        return f"{kind} {key} was altered after audit row {audit_id}"
    return None
