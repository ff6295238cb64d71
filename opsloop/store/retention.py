"""What the retention job deletes, in small batches: old events nothing refers to, the empty
profiles they leave behind, raw bodies of quarantined items already dealt with, failed jobs,
cached language-model answers, expired sessions and old failed sign-ins.

Candidates are found in a read transaction and deleted by id in a short write transaction
that checks the conditions again, so a purge never holds SQLite's write lock for a scan.
Decisions, their explanations, reviews, actions, outcomes and the audit trail are never
deleted here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    delete,
    exists,
    false,
    func,
    or_,
    select,
    update,
)

from opsloop.store.schema import (
    decisions,
    entities,
    events,
    jobs,
    llm_cache,
    login_failures,
    outcomes,
    quarantine,
    sessions,
)

_newer = events.alias("newer")


Kinds = frozenset[tuple[str, str]]
"""(subject kind, event type) pairs: `("lead", "page.viewed")`."""


def _of(pairs: Kinds) -> ColumnElement[bool]:
    """Events of these types about subjects of these kinds."""
    if not pairs:
        return false()
    return or_(
        *(
            and_(events.c.type == type_, events.c.subject.startswith(f"{kind}:", autoescape=True))
            for kind, type_ in sorted(pairs)
        )
    )


def _purgeable_event(
    before: datetime, keep_types: Kinds, keep_newest: Kinds
) -> ColumnElement[bool]:
    """An event older than `before` (by when it occurred and when it arrived) that no decision
    or outcome refers to, not of a type a feature reads over all history for its subject's kind
    (`keep_types`), and not the newest of its subject and type when a feature reads the newest
    of that type (`keep_newest`: `days_since` and `last` without a window)."""
    referenced = exists().where(decisions.c.event_id == events.c.id)
    linked = events.c.id.in_(
        select(outcomes.c.event_id).where(outcomes.c.event_id.is_not(None)).scalar_subquery()
    )
    newest_kept = (
        and_(
            _of(keep_newest),
            ~exists().where(
                _newer.c.subject == events.c.subject,
                # `type || ''`: SQLite would otherwise look this up by (type, occurred_at) and
                # read every newer event of the type, of every subject, for each candidate.
                _newer.c.type + "" == events.c.type,
                _newer.c.occurred_at > events.c.occurred_at,
            ),
        )
        if keep_newest
        else false()
    )
    kept_type = _of(keep_types)
    return and_(
        events.c.received_at < before,
        events.c.occurred_at < before,
        ~referenced,
        ~linked,
        ~or_(kept_type, newest_kept),
    )


def event_candidates(
    conn: Connection,
    *,
    before: datetime,
    keep_types: Kinds,
    keep_newest: Kinds,
    after_id: int,
    limit: int,
) -> list[int]:
    """Ids of purgeable events after `after_id`, in id order."""
    query = (
        select(events.c.id)
        .where(events.c.id > after_id, _purgeable_event(before, keep_types, keep_newest))
        .order_by(events.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def delete_events(
    conn: Connection,
    ids: list[int],
    *,
    before: datetime,
    keep_types: Kinds,
    keep_newest: Kinds,
) -> int:
    if not ids:
        return 0
    result = conn.execute(
        delete(events).where(
            events.c.id.in_(ids), _purgeable_event(before, keep_types, keep_newest)
        )
    )
    return int(result.rowcount)


def _body_purgeable(before: datetime) -> ColumnElement[bool]:
    return and_(
        quarantine.c.status != "held",
        quarantine.c.received_at < before,
        func.length(quarantine.c.body) > 0,
    )


def body_candidates(conn: Connection, *, before: datetime, limit: int) -> list[int]:
    query = (
        select(quarantine.c.id)
        .where(_body_purgeable(before))
        .order_by(quarantine.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def empty_bodies(conn: Connection, ids: list[int], *, before: datetime) -> int:
    """Empty the raw bodies; the item keeps its reason, errors and original size, so readers
    show the body as cut to nothing (`body_truncated`)."""
    if not ids:
        return 0
    result = conn.execute(
        update(quarantine).where(quarantine.c.id.in_(ids), _body_purgeable(before)).values(body=b"")
    )
    return int(result.rowcount)


def delete_failed_jobs(conn: Connection, *, before: datetime, limit: int) -> int:
    ids = select(jobs.c.id).where(jobs.c.status == "failed", jobs.c.run_at < before).limit(limit)
    found = list(conn.execute(ids).scalars())
    if not found:
        return 0
    result = conn.execute(delete(jobs).where(jobs.c.id.in_(found), jobs.c.status == "failed"))
    return int(result.rowcount)


def delete_llm_cache(conn: Connection, *, before: datetime, limit: int) -> int:
    keys = select(llm_cache.c.request_hash).where(llm_cache.c.created_at < before).limit(limit)
    found = list(conn.execute(keys).scalars())
    if not found:
        return 0
    result = conn.execute(
        delete(llm_cache).where(
            llm_cache.c.request_hash.in_(found), llm_cache.c.created_at < before
        )
    )
    return int(result.rowcount)


def delete_login_failures(conn: Connection, *, before: datetime, limit: int) -> int:
    """Failed sign-ins older than the window they are counted over (sign-in prunes these too;
    this catches the ones nobody came back for)."""
    ids = select(login_failures.c.id).where(login_failures.c.at <= before).limit(limit)
    found = list(conn.execute(ids).scalars())
    if not found:
        return 0
    return int(conn.execute(delete(login_failures).where(login_failures.c.id.in_(found))).rowcount)


def delete_expired_sessions(conn: Connection, *, before: datetime, limit: int) -> int:
    ids = select(sessions.c.id).where(sessions.c.expires_at <= before).limit(limit)
    found = list(conn.execute(ids).scalars())
    if not found:
        return 0
    return int(conn.execute(delete(sessions).where(sessions.c.id.in_(found))).rowcount)


def _profile_purgeable(before: datetime) -> ColumnElement[bool]:
    """A subject last seen before `before` with no events left and no decision: what is left
    of an anonymous visitor once retention took its page views."""
    return and_(
        entities.c.last_seen_at < before,
        ~exists().where(events.c.subject == entities.c.subject),
        ~exists().where(decisions.c.subject == entities.c.subject),
    )


def profile_candidates(
    conn: Connection, *, before: datetime, after: str, limit: int
) -> tuple[list[str], str | None]:
    """Subjects after `after`, in order, whose profile nothing refers to: those without
    traits, and the last subject looked at (None: no more)."""
    query = (
        select(entities.c.subject, entities.c.traits)
        .where(entities.c.subject > after, _profile_purgeable(before))
        .order_by(entities.c.subject)
        .limit(limit)
    )
    rows = conn.execute(query).all()
    if not rows:
        return [], None
    return [subject for subject, traits in rows if not traits], str(rows[-1][0])


def delete_profiles(conn: Connection, subjects: list[str], *, before: datetime) -> int:
    """Delete these profiles if they are still empty and unreferenced (checked again here,
    in the deleting transaction)."""
    if not subjects:
        return 0
    still = [
        subject
        for subject, traits in conn.execute(
            select(entities.c.subject, entities.c.traits).where(
                entities.c.subject.in_(subjects), _profile_purgeable(before)
            )
        )
        if not traits
    ]
    if not still:
        return 0
    return int(conn.execute(delete(entities).where(entities.c.subject.in_(still))).rowcount)
