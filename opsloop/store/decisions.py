"""Decisions and reviews. A decision's inputs and explanation are one compact blob
(opsloop/store/explanations.py), decoded here for every reader."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, String, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from opsloop.core.decision_views import ReviewRow
from opsloop.core.decisions import Decision, DecisionDraft
from opsloop.store import explanations
from opsloop.store.bulk import insert_deferred, insert_returning_ids
from opsloop.store.explanations import DICTIONARIES
from opsloop.store.ledger import decision_digest
from opsloop.store.schema import decisions, events, playbook_versions, playbooks, reviews

_CHUNK = 400

# Not a stored status: pending decisions plus sampled `auto` ones nobody has reviewed yet.
TO_REVIEW = "to_review"


@dataclass(frozen=True, slots=True)
class Stored:
    id: int
    digest: bytes
    """The ledger's digest of the decision as stored (opsloop/store/ledger.py)."""


def insert_decisions(
    conn: Connection,
    drafts: list[tuple[DecisionDraft, int, int]],
    now: datetime,
) -> list[int]:
    """Store drafts given as (draft, playbook id, version id); return ids in order."""
    return [stored.id for stored in store_decisions(conn, drafts, now)]


def store_decisions(
    conn: Connection,
    drafts: list[tuple[DecisionDraft, int, int]],
    now: datetime,
    *,
    at_commit: bool = False,
) -> list[Stored]:
    """`insert_decisions`, with each decision's ledger digest for its audit row. `at_commit`:
    nothing later in the transaction reads these decisions or refers to them, so on
    PostgreSQL they may be sent with its last statements (`bulk.insert_deferred`)."""
    if not drafts:
        return []
    plains = [explanations.document(d.inputs, d.explanation) for d, _, _ in drafts]
    # A version's dictionary is made from its first batch: the longest document, which is a
    # full explanation rather than an error's short one.
    samples: dict[int, bytes] = {}
    for (_, _, version_id), plain in zip(drafts, plains, strict=True):
        if len(plain) > len(samples.get(version_id, b"")):
            samples[version_id] = plain
    compressors = DICTIONARIES.compressors(conn, samples, now)
    rows = [
        {
            "playbook_id": playbook_id,
            "playbook_version_id": version_id,
            "subject": d.subject,
            "event_id": d.event_id,
            "mode": d.mode,
            "status": d.status,
            "choice": d.choice,
            "final_choice": d.choice if d.status == "auto" else None,
            "score": d.score,
            "needs_approval": d.needs_approval,
            "created_at": now,
            "decided_at": now if d.status in ("auto", "logged", "error") else None,
            "sampled": d.sampled,
            "detail": compressors[version_id].compress(plain),
        }
        for (d, playbook_id, version_id), plain in zip(drafts, plains, strict=True)
    ]
    ids = (insert_deferred if at_commit else insert_returning_ids)(conn, decisions, rows)
    return [
        Stored(new_id, decision_digest({**row, "id": new_id}, plain, ()))
        for new_id, row, plain in zip(ids, rows, plains, strict=True)
    ]


_LAST_TRIGGERS = (
    select(decisions.c.subject, func.max(events.c.occurred_at))
    .join(events, events.c.id == decisions.c.event_id)
    .where(
        decisions.c.playbook_id == bindparam("playbook_id"),
        decisions.c.subject.in_(bindparam("subjects", expanding=True)),
    )
    .group_by(decisions.c.subject)
)


# PostgreSQL without fresh statistics plans `subject IN (…)` as a scan of the playbook's whole
# history; driving the lookup from the list of subjects makes it one index probe per subject,
# whatever the statistics say.
_wanted = (
    func.unnest(bindparam("subjects", type_=ARRAY(String)))
    .table_valued("subject")
    .render_derived(name="wanted")
)
_LAST_TRIGGERS_PG = select(
    _wanted.c.subject,
    select(func.max(events.c.occurred_at))
    .select_from(decisions.join(events, events.c.id == decisions.c.event_id))
    .where(
        decisions.c.subject == _wanted.c.subject,
        decisions.c.playbook_id == bindparam("playbook_id"),
    )
    .scalar_subquery(),
)


def last_trigger_times(
    conn: Connection, playbook_id: int, subjects: list[str]
) -> dict[str, datetime]:
    """Per subject, when the latest event this playbook decided on occurred (for cooldowns)."""
    query = _LAST_TRIGGERS if conn.dialect.name == "sqlite" else _LAST_TRIGGERS_PG
    found: dict[str, datetime] = {}
    for start in range(0, len(subjects), _CHUNK):
        params = {"playbook_id": playbook_id, "subjects": subjects[start : start + _CHUNK]}
        for subject, at in conn.execute(query, params):
            if at is not None:
                found[subject] = at
    return found


_COLUMNS = (
    decisions,
    playbooks.c.name.label("playbook_name"),
    playbook_versions.c.version.label("playbook_version"),
)


def _select() -> Any:
    return (
        select(*_COLUMNS)
        .join(playbooks, playbooks.c.id == decisions.c.playbook_id)
        .join(playbook_versions, playbook_versions.c.id == decisions.c.playbook_version_id)
    )


def exists_for(conn: Connection, playbook_id: int, event_id: int) -> bool:
    """Has this playbook decided on this event? (At most once: a unique constraint.)"""
    query = select(decisions.c.id).where(
        decisions.c.playbook_id == playbook_id, decisions.c.event_id == event_id
    )
    return conn.execute(query).first() is not None


def get_decision(conn: Connection, decision_id: int, *, lock: bool = False) -> Decision | None:
    query = _select().where(decisions.c.id == decision_id)
    if lock and conn.dialect.name != "sqlite":
        query = query.with_for_update(of=decisions)
    row = conn.execute(query).first()
    return _decision(conn, row) if row else None


def list_decisions(
    conn: Connection,
    *,
    status: str | None = None,
    playbook: str | None = None,
    subject: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Decision]:
    query = _select().order_by(decisions.c.id.desc()).limit(limit)
    if status == TO_REVIEW:
        unreviewed = ~select(reviews.c.id).where(reviews.c.decision_id == decisions.c.id).exists()
        query = query.where(
            or_(decisions.c.status == "pending", decisions.c.sampled.is_(True) & unreviewed)
        )
    elif status:
        query = query.where(decisions.c.status == status)
    if playbook:
        query = query.where(playbooks.c.name == playbook)
    if subject:
        query = query.where(decisions.c.subject == subject)
    if before_id:
        query = query.where(decisions.c.id < before_id)
    return [_decision(conn, row) for row in conn.execute(query)]


def for_events(conn: Connection, event_ids: Collection[int]) -> list[Decision]:
    """The decisions these events led to, in the order they were made. Found through the
    (event, playbook) index: no ORDER BY … LIMIT, which would walk every decision by id."""
    if not event_ids:
        return []
    rows = conn.execute(_select().where(decisions.c.event_id.in_(list(event_ids))))
    return sorted((_decision(conn, row) for row in rows), key=lambda d: d.id)


def settle(
    conn: Connection, decision_id: int, *, status: str, final_choice: str | None, at: datetime
) -> bool:
    """Move a pending decision to its reviewed status; False if it was no longer pending."""
    result = conn.execute(
        update(decisions)
        .where(decisions.c.id == decision_id, decisions.c.status == "pending")
        .values(status=status, final_choice=final_choice, decided_at=at)
    )
    return result.rowcount == 1


def insert_review(
    conn: Connection,
    *,
    decision_id: int,
    verdict: str,
    option: str | None,
    reason: str | None,
    reviewer: str,
    at: datetime,
    draft: str | None = None,
) -> int:
    new_id: int = conn.execute(
        insert(reviews).returning(reviews.c.id),
        {
            "decision_id": decision_id,
            "verdict": verdict,
            "option": option,
            "reason": reason,
            "reviewer": reviewer,
            "created_at": at,
            "draft": draft,
        },
    ).scalar_one()
    return new_id


def recent_verdicts(conn: Connection, playbook_id: int, limit: int) -> list[str]:
    """The playbook's latest review verdicts, newest first: the evidence for readiness."""
    query = (
        select(reviews.c.verdict)
        .join(decisions, decisions.c.id == reviews.c.decision_id)
        .where(decisions.c.playbook_id == playbook_id)
        .order_by(reviews.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def reviews_of(conn: Connection, decision_id: int) -> list[ReviewRow]:
    query = select(reviews).where(reviews.c.decision_id == decision_id).order_by(reviews.c.id)
    # Rows of `select(reviews)`: the table's columns are ReviewRow's keys.
    return [cast(ReviewRow, dict(row._mapping)) for row in conn.execute(query)]


def _decision(conn: Connection, row: Any) -> Decision:
    inputs, explanation = DICTIONARIES.decode(conn, row.playbook_version_id, bytes(row.detail))
    return Decision(
        id=row.id,
        playbook=row.playbook_name,
        playbook_version=row.playbook_version,
        subject=row.subject,
        event_id=row.event_id,
        mode=row.mode,
        status=row.status,
        choice=row.choice,
        final_choice=row.final_choice,
        score=row.score,
        needs_approval=row.needs_approval,
        created_at=row.created_at,
        decided_at=row.decided_at,
        why=explanation.get("why", ""),
        explanation=explanation,
        inputs=inputs,
        sampled=row.sampled,
    )
