"""Identity stitching: which subjects are another subject under an earlier name.

A row says `alias` (an anonymous visitor, `visitor:3f2a…`, or a user's earlier id) is the same
person as `subject` (`lead:42`). The table is kept flat — a subject is never itself an alias —
so finding every name a subject had is one indexed read, and so is resolving an alias.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from opsloop.store.schema import identities

_CHUNK = 400  # stay well under SQLite's bound-parameter limit

_RESOLVE = select(identities.c.alias, identities.c.subject).where(
    identities.c.alias.in_(bindparam("aliases", expanding=True))
)
_ALIASES = select(identities.c.alias, identities.c.subject).where(
    identities.c.subject.in_(bindparam("subjects", expanding=True))
)


def resolve(conn: Connection, aliases: Iterable[str]) -> dict[str, str]:
    """alias → the subject it is linked to, for the aliases that are linked."""
    wanted = sorted(set(aliases))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        found.update(conn.execute(_RESOLVE, {"aliases": wanted[start : start + _CHUNK]}).all())
    return found


def aliases_of(conn: Connection, subjects: Iterable[str]) -> dict[str, list[str]]:
    """subject → the aliases linked to it, for the subjects that have any."""
    wanted = sorted(set(subjects))
    found: dict[str, list[str]] = defaultdict(list)
    for start in range(0, len(wanted), _CHUNK):
        for alias, subject in conn.execute(_ALIASES, {"subjects": wanted[start : start + _CHUNK]}):
            found[subject].append(alias)
    return dict(found)


def link(conn: Connection, alias: str, subject: str, *, source: str, at: datetime) -> str:
    """Record that `alias` is `subject`; return the subject `alias` now stands for.

    The first link of an alias holds: a visitor who signs in as a second user (a shared
    computer) stays with the first, and their earlier history is not moved between people.
    Linking to a subject that is itself an alias links to what that alias stands for, and the
    aliases of a subject that becomes an alias follow it, so the table stays flat."""
    target = resolve(conn, [subject]).get(subject, subject)
    if target == alias:
        return alias  # the two are already one (an alias linked back): nothing to record
    conn.execute(
        _insert(conn.dialect.name),
        {"alias": alias, "subject": target, "source": source, "linked_at": at},
    )
    current = resolve(conn, [alias])[alias]
    if current == target:
        # `alias` may have been a subject with aliases of its own: they now stand for `target`.
        conn.execute(update(identities).where(identities.c.subject == alias).values(subject=target))
    return current


@functools.cache
def _insert(dialect: str) -> Any:
    statement = (sqlite_insert if dialect == "sqlite" else pg_insert)(identities)
    return statement.on_conflict_do_nothing(index_elements=[identities.c.alias])
