"""Identity stitching in the store, on SQLite and PostgreSQL: a link is made once, the first one
holds, chains stay flat, and a subject's history includes what its aliases did."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from opsloop.core.events import NewEvent
from opsloop.store import events as event_store
from opsloop.store import identities
from opsloop.store.database import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def link(db: Database, alias: str, subject: str) -> str:
    with db.transaction() as tx:
        return identities.link(tx.conn, alias, subject, source="site", at=T0)


def test_a_link_is_made_once_and_the_first_one_holds(db: Database) -> None:
    assert link(db, "visitor:a", "lead:1") == "lead:1"
    assert link(db, "visitor:a", "lead:1") == "lead:1"
    # The same browser later signs in as someone else: its past stays with the first person.
    assert link(db, "visitor:a", "lead:2") == "lead:1"
    with db.read() as conn:
        assert identities.resolve(conn, ["visitor:a", "visitor:b"]) == {"visitor:a": "lead:1"}
        assert identities.aliases_of(conn, ["lead:1", "lead:2"]) == {"lead:1": ["visitor:a"]}


def test_chains_stay_flat_so_one_read_finds_every_earlier_name(db: Database) -> None:
    link(db, "visitor:a", "lead:old")
    link(db, "lead:old", "lead:new")  # an alias call: the user's id changed
    link(db, "visitor:b", "lead:old")  # linking to an alias links to what it stands for
    with db.read() as conn:
        assert identities.resolve(conn, ["visitor:a", "visitor:b", "lead:old"]) == {
            "visitor:a": "lead:new",
            "visitor:b": "lead:new",
            "lead:old": "lead:new",
        }
    assert link(db, "lead:new", "visitor:a") == "lead:new"  # a link back changes nothing


def test_a_subjects_history_includes_its_aliases_events_in_time_order(db: Database) -> None:
    def event(subject: str, minutes: int) -> NewEvent:
        at = T0 + timedelta(minutes=minutes)
        return NewEvent("site", "page.viewed", subject, at, at, {"m": minutes}, {}, None)

    with db.transaction() as tx:
        event_store.insert_events(
            tx.conn,
            [event("visitor:a", 1), event("lead:1", 2), event("visitor:a", 3), event("lead:9", 4)],
        )
    link(db, "visitor:a", "lead:1")
    with db.read() as conn:
        history = event_store.fetch_history(
            conn, ["lead:1", "lead:9"], {"page.viewed"}, since=None, until=None
        )
    assert [e.payload["m"] for e in history["lead:1"]] == [1, 2, 3]
    assert [e.payload["m"] for e in history["lead:9"]] == [4]
    assert "visitor:a" not in history

    # Asked for the alias and its subject at once (both in one batch), the alias's events are
    # its subject's only: counted once.
    with db.read() as conn:
        both = event_store.fetch_history(
            conn, ["visitor:a", "lead:1"], {"page.viewed"}, since=None, until=None
        )
    assert [e.payload["m"] for e in both["lead:1"]] == [1, 2, 3]
    assert "visitor:a" not in both


def test_a_link_made_earlier_in_the_transaction_is_in_the_history(db: Database) -> None:
    """The history read finds the aliases as the transaction sees them: one linked before it,
    and one linked in the same transaction just before the read."""
    link(db, "visitor:a", "lead:1")
    with db.transaction() as tx:
        event_store.insert_events(
            tx.conn,
            [
                NewEvent("site", "page.viewed", subject, T0, T0, {}, {}, None)
                for subject in ("visitor:a", "visitor:b", "lead:1", "lead:2")
            ],
        )
    with db.transaction() as tx:
        assert identities.aliases_of(tx.conn, ["lead:1", "lead:2"]) == {"lead:1": ["visitor:a"]}
        # A link in the same transaction: the history after it must include visitor:b's view.
        identities.link(tx.conn, "visitor:b", "lead:2", source="site", at=T0)
        history = event_store.fetch_history(
            tx.conn, ["lead:1", "lead:2"], {"page.viewed"}, since=None, until=None
        )
    assert {subject: len(events) for subject, events in history.items()} == {
        "lead:1": 2,
        "lead:2": 2,
    }
