"""The store's named queries behave the same on SQLite and on PostgreSQL.

Rows are built through the real query functions, never with hand-written SQL, so a test fails
when a query and the schema disagree on either backend."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from opsloop.core.decisions import DecisionDraft
from opsloop.core.events import NewEvent
from opsloop.store import actions as action_store
from opsloop.store import decisions as decision_store
from opsloop.store import events as event_store
from opsloop.store import identities
from opsloop.store import outcomes as outcome_store
from opsloop.store import playbooks as playbook_store
from opsloop.store import quarantine as quarantine_store
from opsloop.store.database import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


# --- factories ---------------------------------------------------------------------------------


def new_event(
    subject: str = "lead:1",
    type: str = "lead.created",
    *,
    at: datetime = T0,
    payload: dict[str, Any] | None = None,
    source: str = "api",
    key: str | None = None,
    traits: dict[str, Any] | None = None,
) -> NewEvent:
    return NewEvent(
        source=source,
        type=type,
        subject=subject,
        occurred_at=at,
        received_at=at + timedelta(seconds=1),
        payload=payload if payload is not None else {},
        traits=traits or {},
        idempotency_key=key,
    )


def make_playbook(conn: Connection, name: str = "lead-qualification") -> tuple[int, int]:
    """A playbook with one active version; returns (playbook id, version id)."""
    source = f"name: {name}\nmode: recommend\n"
    playbook_id = playbook_store.create_playbook(conn, name, "recommend", T0)
    version_id, number = playbook_store.add_version(
        conn,
        playbook_id=playbook_id,
        content_hash=hashlib.sha256(source.encode()).hexdigest(),
        source=source,
        file=f"{name}.yaml",
        created_by="ana",
        now=T0,
    )
    assert number == 1
    playbook_store.activate(conn, playbook_id, version_id, "recommend", T0)
    return playbook_id, version_id


def pending_draft(
    event_id: int,
    subject: str,
    *,
    score: float = 0.5,
    inputs: dict[str, Any] | None = None,
    why: str | None = None,
) -> DecisionDraft:
    """A recommend-mode decision choosing `call`, waiting for a person (why: the subject)."""
    return DecisionDraft(
        playbook="lead-qualification",
        subject=subject,
        event_id=event_id,
        mode="recommend",
        choice="call",
        score=score,
        status="pending",
        needs_approval=True,
        inputs=inputs or {},
        explanation={"why": why or subject},
    )


def make_decision(
    conn: Connection, subject: str = "lead:1", *, playbook: tuple[int, int] | None = None
) -> int:
    """A pending decision on a fresh triggering event; returns its id."""
    playbook_id, version_id = playbook or make_playbook(conn)
    [event_id] = event_store.insert_events(conn, [new_event(subject)])
    draft = pending_draft(
        event_id,
        subject,
        score=0.82,
        inputs={"company_size": 40},
        why="big company, visited pricing",
    )
    [decision_id] = decision_store.insert_decisions(conn, [(draft, playbook_id, version_id)], T0)
    return decision_id


def make_action(conn: Connection, decision_id: int, key: str = "act-1") -> int:
    [action_id] = action_store.insert_actions(
        conn,
        [
            {
                "decision_id": decision_id,
                "position": 0,
                "kind": "send_email",
                "request": {"to": "ana@example.com", "template": "welcome"},
                "guarded": False,
                "status": "pending",
                "attempts": 0,
                "idempotency_key": key,
                "next_attempt_at": None,
                "last_error": None,
                "result": None,
                "created_at": T0,
                "updated_at": T0,
                "delivered_at": None,
            }
        ],
    )
    return action_id


def outcome_row(decision_id: int, kind: str, *, after: timedelta) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "event_id": None,
        "kind": kind,
        "occurred_at": T0 + after,
        "after_seconds": after.total_seconds(),
        "created_at": T0 + after,
    }


# --- events ------------------------------------------------------------------------------------


def test_inserted_events_get_their_ids_back_in_the_order_given(db: Database) -> None:
    batch = [new_event(f"lead:{n}", payload={"n": n}) for n in range(600)]
    with db.transaction() as tx:
        [single] = event_store.insert_events(tx.conn, [new_event("lead:single")])
        ids = event_store.insert_events(tx.conn, batch)
        assert event_store.insert_events(tx.conn, []) == []

    assert len(ids) == 600
    assert ids == sorted(ids)
    assert single < ids[0]
    with db.read() as conn:
        stored = event_store.get_events(conn, [single, *ids])
    assert stored[single].subject == "lead:single"
    assert all(stored[i].subject == f"lead:{n}" for n, i in enumerate(ids))
    assert all(stored[i].payload == {"n": n} for n, i in enumerate(ids))


def test_events_are_found_by_source_and_idempotency_key(db: Database) -> None:
    with db.transaction() as tx:
        ids = event_store.insert_events(
            tx.conn,
            [
                new_event(source="stripe", key="evt_1"),
                new_event(source="hubspot", key="evt_1"),
                new_event(source="stripe", key="evt_2"),
                new_event(source="stripe"),
            ],
        )
        many = event_store.insert_events(
            tx.conn, [new_event(source="bulk", key=f"k{n}") for n in range(450)]
        )

    with db.read() as conn:
        found = event_store.find_by_idempotency(
            conn, [("stripe", "evt_1"), ("hubspot", "evt_1"), ("stripe", "evt_9"), ("x", "evt_2")]
        )
        assert found == {("stripe", "evt_1"): ids[0], ("hubspot", "evt_1"): ids[1]}
        assert event_store.find_by_idempotency(conn, []) == {}
        found_many = event_store.find_by_idempotency(conn, [("bulk", f"k{n}") for n in range(450)])
    assert found_many == {("bulk", f"k{n}"): event_id for n, event_id in enumerate(many)}


def test_ids_taken_with_the_duplicate_check_go_to_the_next_inserts(db: Database) -> None:
    """PostgreSQL takes the ids of a transaction's coming events and decisions in the same round
    trip as its duplicate check; the inserts use them, a bigger insert than reserved takes its
    own, and nothing found or stored changes. SQLite has nothing to reserve."""
    with db.transaction() as tx:
        [first] = event_store.insert_events(tx.conn, [new_event(source="stripe", key="evt_1")])
    with db.transaction() as tx:
        found = event_store.find_by_idempotency(
            tx.conn,
            [("stripe", "evt_1"), ("stripe", "evt_2"), ("hubspot", "evt_1")],
            reserve={"events": 3, "decisions": 2},
        )
        reserved = tx.scratch.get("reserved_ids", {})
        expected = list(reserved.get("events", []))
        two = event_store.insert_events(tx.conn, [new_event(key="a"), new_event(key="b")])
        [third] = event_store.insert_events(tx.conn, [new_event(key="c")])
        more = event_store.insert_events(tx.conn, [new_event(key="d"), new_event(key="e")])

    assert found == {("stripe", "evt_1"): first}
    if db.is_sqlite:
        assert reserved == {}
    else:
        assert len(expected) == 3
        assert reserved["events"] == []  # all three used
        assert len(reserved["decisions"]) == 2  # none used: a gap, as after a rollback
        assert [*two, third] == expected
        assert all(i > first for i in expected)
        assert min(more) > max(expected)
    with db.read() as conn:
        stored = event_store.get_events(conn, [*two, third, *more])
    assert [stored[i].idempotency_key for i in [*two, third, *more]] == ["a", "b", "c", "d", "e"]


def test_the_same_idempotency_key_cannot_be_stored_twice_for_one_source(db: Database) -> None:
    with db.transaction() as tx:
        event_store.insert_events(tx.conn, [new_event(source="stripe", key="evt_1")])
    with pytest.raises(sa.exc.IntegrityError), db.transaction() as tx:
        event_store.insert_events(tx.conn, [new_event(source="stripe", key="evt_1")])


def test_history_holds_only_wanted_types_within_the_window_oldest_first(db: Database) -> None:
    hour = timedelta(hours=1)
    with db.transaction() as tx:
        event_store.insert_events(
            tx.conn,
            [
                new_event("lead:1", "page.viewed", at=T0 + 3 * hour, payload={"path": "/b"}),
                new_event("lead:1", "page.viewed", at=T0 + 1 * hour, payload={"path": "/edge"}),
                new_event("lead:1", "email.opened", at=T0 + 2 * hour, payload={"id": 9}),
                new_event("lead:1", "page.viewed", at=T0 + 4 * hour, payload={"path": "/until"}),
                new_event("lead:1", "page.viewed", at=T0 + 5 * hour, payload={"path": "/late"}),
                new_event("lead:1", "lead.created", at=T0 + 2 * hour, payload={}),
                new_event("lead:2", "page.viewed", at=T0, payload={"path": "/x"}),
                new_event("lead:2", "page.viewed", at=T0, payload={"path": "/y"}),
                new_event("lead:3", "page.viewed", at=T0, payload={"path": "/z"}),
            ],
        )

    with db.read() as conn:
        history = event_store.fetch_history(
            conn,
            ["lead:1", "lead:2", "lead:4"],
            {"page.viewed", "email.opened"},
            since=T0 + hour,
            until=T0 + 4 * hour,
        )
        everything = event_store.fetch_history(
            conn, ["lead:2"], {"page.viewed"}, since=None, until=T0 + 10 * hour
        )
        nothing = event_store.fetch_history(
            conn, ["lead:3"], set(), since=None, until=T0 + 10 * hour
        )

    lead1 = history["lead:1"]
    assert [(e.type, e.occurred_at, e.payload) for e in lead1] == [
        ("email.opened", T0 + 2 * hour, {"id": 9}),
        ("page.viewed", T0 + 3 * hour, {"path": "/b"}),
        ("page.viewed", T0 + 4 * hour, {"path": "/until"}),
    ], "the window is (since, until]: the event at `since` is left out, the one at `until` kept"
    assert {e.source for e in lead1} == {"api"}
    assert history.get("lead:2", []) == [], "lead:2's events are before `since`"
    assert [e.payload["path"] for e in everything["lead:2"]] == ["/x", "/y"], (
        "ties keep ledger order"
    )
    assert nothing.get("lead:3", []) == [], "no types wanted, nothing read"
    assert history.get("lead:4", []) == []


def test_the_history_read_with_the_entity_upsert_is_the_history_read_alone(db: Database) -> None:
    """Ingest reads its decisions' history in the round trip of the entity upsert (PostgreSQL),
    after events it sends with that upsert: the same events as reading it on its own after
    the commit, the ones stored in that very transaction and an alias's included."""
    hour = timedelta(hours=1)
    with db.transaction() as tx:
        event_store.insert_events(
            tx.conn,
            [
                new_event("lead:1", "page.viewed", at=T0, payload={"path": "/old"}),
                new_event("visitor:9", "page.viewed", at=T0 + hour, payload={"path": "/anon"}),
            ],
        )
        identities.link(tx.conn, "visitor:9", "lead:1", source="site", at=T0)
    wanted = event_store.HistoryWanted(
        ["lead:1", "lead:2"], {"page.viewed", "lead.created"}, None, T0 + 5 * hour
    )
    fresh = [
        new_event("lead:1", "lead.created", at=T0 + 2 * hour, key="c1"),
        new_event("lead:2", "page.viewed", at=T0 + 3 * hour, payload={"path": "/p"}, key="c2"),
    ]
    with db.transaction() as tx:
        # As ingest does: the ids taken with the duplicate check, the events sent with the touch.
        event_store.find_by_idempotency(
            tx.conn, [("api", "c1"), ("api", "c2")], reserve={"events": 2, "decisions": 0}
        )
        event_store.insert_events(tx.conn, fresh, with_touch=True)
        profiles, _ = event_store.touch_and_merge(
            tx.conn,
            {e.subject: (e.occurred_at, e.occurred_at) for e in fresh},
            {},
            T0 + 4 * hour,
            protected=(),
            history=wanted,
        )
    with db.read() as conn:
        alone = wanted.read(conn)

    assert profiles.history is not None
    assert profiles.history.wanted == wanted
    read_ahead = {subject: events for subject, events in profiles.history.events.items() if events}
    assert read_ahead == {subject: events for subject, events in alone.items() if events}
    assert [e.payload.get("path", e.type) for e in read_ahead["lead:1"]] == [
        "/old",
        "/anon",
        "lead.created",
    ]
    assert all(e.occurred_at.tzinfo is UTC for e in read_ahead["lead:1"])
    assert [e.payload["path"] for e in read_ahead["lead:2"]] == ["/p"]


def test_a_history_read_ahead_serves_only_reads_it_covers() -> None:
    hour = timedelta(hours=1)
    ahead = event_store.HistoryWanted(["lead:1", "lead:2"], {"a", "b"}, T0, T0 + 5 * hour)
    assert ahead.covers(event_store.HistoryWanted(["lead:2"], {"a"}, T0 + hour, T0 + 2 * hour))
    for narrower_ahead_than_needed in (
        event_store.HistoryWanted(["lead:3"], {"a"}, T0 + hour, T0 + 2 * hour),
        event_store.HistoryWanted(["lead:1"], {"c"}, T0 + hour, T0 + 2 * hour),
        event_store.HistoryWanted(["lead:1"], {"a"}, None, T0 + 2 * hour),
        event_store.HistoryWanted(["lead:1"], {"a"}, T0 - hour, T0 + 2 * hour),
        event_store.HistoryWanted(["lead:1"], {"a"}, T0 + hour, None),
    ):
        assert not ahead.covers(narrower_ahead_than_needed)


def test_history_orders_by_instant_whatever_the_offset_it_arrived_with(db: Database) -> None:
    lisbon_morning = datetime(2026, 3, 2, 10, 30, tzinfo=timezone(timedelta(hours=2)))  # 08:30Z
    with db.transaction() as tx:
        event_store.insert_events(
            tx.conn,
            [
                new_event("lead:1", "page.viewed", at=T0, payload={"n": "09:00Z"}),
                new_event("lead:1", "page.viewed", at=lisbon_morning, payload={"n": "08:30Z"}),
            ],
        )
    with db.read() as conn:
        history = event_store.fetch_history(conn, ["lead:1"], {"page.viewed"}, since=None, until=T0)
    assert [e.payload["n"] for e in history["lead:1"]] == ["08:30Z", "09:00Z"]


# --- entities ----------------------------------------------------------------------------------


def entity(db: Database, subject: str) -> dict[str, Any]:
    with db.read() as conn:
        row = event_store.get_entity(conn, subject)
    assert row is not None, subject
    return row


def test_touching_entities_creates_them_and_widens_their_seen_times(db: Database) -> None:
    with db.transaction() as tx:  # one batch spanning a week sets both ends
        event_store.touch_entities(tx.conn, {"lead:7": (T0, T0 + timedelta(days=7))}, T0)
    assert (entity(db, "lead:7")["first_seen_at"], entity(db, "lead:7")["last_seen_at"]) == (
        T0,
        T0 + timedelta(days=7),
    )
    with db.transaction() as tx:
        event_store.touch_entities(
            tx.conn, {"lead:1": (T0 + timedelta(hours=2), T0 + timedelta(hours=2))}, T0
        )
        event_store.touch_entities(tx.conn, {"ticket:9": (T0, T0)}, T0)
    created = entity(db, "lead:1")
    assert created["kind"] == "lead"
    assert created["traits"] == {}
    assert created["first_seen_at"] == created["last_seen_at"] == T0 + timedelta(hours=2)
    assert entity(db, "ticket:9")["kind"] == "ticket"

    with db.transaction() as tx:  # an older event arrives late
        event_store.touch_entities(
            tx.conn, {"lead:1": (T0 + timedelta(hours=1), T0 + timedelta(hours=1))}, T0
        )
    assert entity(db, "lead:1")["last_seen_at"] == T0 + timedelta(hours=2)
    assert entity(db, "lead:1")["first_seen_at"] == T0 + timedelta(hours=1)

    with db.transaction() as tx:
        event_store.touch_entities(
            tx.conn, {"lead:1": (T0 + timedelta(hours=3), T0 + timedelta(hours=3))}, T0
        )
    assert entity(db, "lead:1")["last_seen_at"] == T0 + timedelta(hours=3)


def merge(db: Database, subject: str, *patches: dict[str, Any]) -> dict[str, Any]:
    for patch in patches:
        with db.transaction() as tx:
            event_store.touch_entities(tx.conn, {subject: (T0, T0)}, T0)
            event_store.merge_traits(tx.conn, {subject: patch}, T0 + timedelta(minutes=5))
    return entity(db, subject)["traits"]


def test_trait_patches_follow_json_merge_patch(db: Database) -> None:
    first = {
        "name": "Ana",
        "plan": "trial",
        "address": {"city": "Porto", "zip": "4000", "geo": {"lat": 41.1, "lon": -8.6}},
        "tags": ["a", "b"],
    }
    second = {
        "plan": None,  # null removes a key
        "address": {"zip": None, "street": "Rua Augusta", "geo": {"lat": 41.2}},  # objects merge
        "tags": ["c"],  # arrays are replaced, not merged
        "company": {"name": "Acme"},
        "missing": None,
    }
    assert merge(db, "lead:1", first, second) == {
        "name": "Ana",
        "address": {"city": "Porto", "street": "Rua Augusta", "geo": {"lat": 41.2, "lon": -8.6}},
        "tags": ["c"],
        "company": {"name": "Acme"},
    }
    row = entity(db, "lead:1")
    assert row["updated_at"] == T0 + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        # RFC 7396, appendix A
        pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="replace"),
        pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="add"),
        pytest.param({"a": "b"}, {"a": None}, {}, id="remove"),
        pytest.param({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}, id="remove-one"),
        pytest.param({"a": ["b"]}, {"a": "c"}, {"a": "c"}, id="array-to-scalar"),
        pytest.param({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}, id="scalar-to-array"),
        pytest.param(
            {"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}, id="nested"
        ),
        pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="arrays-replaced"),
        pytest.param({"e": None}, {"a": 1}, {"e": None, "a": 1}, id="target-null-kept"),
        pytest.param(
            {"a": "foo"}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}, id="object-over-scalar"
        ),
        pytest.param({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}, id="new-object"),
    ],
)
def test_trait_patches_match_the_rfc_7396_examples(
    db: Database, target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    with db.transaction() as tx:
        event_store.touch_entities(tx.conn, {"lead:1": (T0, T0)}, T0)
        tx.conn.execute(
            sa.update(event_store.entities)
            .where(event_store.entities.c.subject == "lead:1")
            .values(traits=target)
        )
    assert merge(db, "lead:1", patch) == expected


def test_trait_patches_for_several_subjects_apply_in_one_call(db: Database) -> None:
    with db.transaction() as tx:
        event_store.touch_entities(tx.conn, {"lead:1": (T0, T0), "lead:2": (T0, T0)}, T0)
        event_store.merge_traits(tx.conn, {"lead:1": {"n": 1}, "lead:2": {"n": 2}}, T0)
        event_store.merge_traits(tx.conn, {"lead:2": {"m": 3}}, T0)
    with db.read() as conn:
        assert event_store.get_traits(conn, ["lead:1", "lead:2", "lead:9"]) == {
            "lead:1": {"n": 1},
            "lead:2": {"n": 2, "m": 3},
        }


# --- times -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC), id="utc"),
        pytest.param(
            datetime(2026, 3, 2, 4, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5))), id="offset"
        ),
        pytest.param(datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), id="year-end"),
    ],
)
def test_aware_times_round_trip_as_utc_with_microseconds(db: Database, moment: datetime) -> None:
    with db.transaction() as tx:
        [event_id] = event_store.insert_events(tx.conn, [new_event(at=moment)])
    with db.read() as conn:
        stored = event_store.get_events(conn, [event_id])[event_id].occurred_at
    assert stored == moment
    assert stored.utcoffset() == timedelta(0)
    assert stored.microsecond == moment.astimezone(UTC).microsecond
    assert stored.tzinfo is not None


def test_a_naive_time_is_refused(db: Database) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), db.transaction() as tx:
        event_store.insert_events(tx.conn, [new_event(at=datetime(2026, 3, 2, 9, 0))])
    with db.read() as conn:
        assert event_store.count_events(conn) == 0


# --- decisions and actions ---------------------------------------------------------------------


def test_a_stored_decision_reads_back_with_its_playbook_and_version(db: Database) -> None:
    with db.transaction() as tx:
        decision_id = make_decision(tx.conn, "lead:7")
    with db.read() as conn:
        decision = decision_store.get_decision(conn, decision_id)
    assert decision is not None
    assert decision.playbook == "lead-qualification"
    assert decision.playbook_version == 1
    assert decision.subject == "lead:7"
    assert decision.status == "pending"
    assert decision.why == "big company, visited pricing"
    assert decision.inputs == {"company_size": 40}
    assert decision.created_at == T0
    assert decision.decided_at is None


def test_decisions_sent_at_commit_are_stored_when_it_commits(db: Database) -> None:
    """On PostgreSQL, decisions nothing in the transaction refers to go with its last
    statements (one round trip fewer); they are there once it commits, with the ids given back,
    and gone with it if it fails. SQLite inserts them at once."""

    def count(conn: Connection) -> int:
        return int(conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar_one())

    with db.transaction() as tx:
        playbook_id, version_id = make_playbook(tx.conn)
        subjects = [f"lead:{n}" for n in range(3)]
        event_ids = event_store.insert_events(tx.conn, [new_event(s) for s in subjects])
        drafts = [
            (pending_draft(e, s), playbook_id, version_id)
            for e, s in zip(event_ids, subjects, strict=True)
        ]
        stored = decision_store.store_decisions(tx.conn, drafts, T0, at_commit=True)
        assert count(tx.conn) == (3 if db.is_sqlite else 0)  # not sent yet on PostgreSQL
    with db.read() as conn:
        assert count(conn) == 3
        for decision, subject in zip(stored, subjects, strict=True):
            found = decision_store.get_decision(conn, decision.id)
            assert found is not None
            assert (found.subject, found.why) == (subject, subject)

    # The same decision twice (one per event and playbook): refused at the commit, as the
    # insert would have been refused at once, and nothing of the transaction stays.
    created: list[int] = []

    def decide_the_first_event_again() -> None:
        with db.transaction() as tx:
            created.extend(event_store.insert_events(tx.conn, [new_event("lead:9")]))
            again = (pending_draft(event_ids[0], "lead:0"), playbook_id, version_id)
            decision_store.store_decisions(tx.conn, [again], T0, at_commit=True)

    with pytest.raises(sa.exc.IntegrityError):
        decide_the_first_event_again()
    with db.read() as conn:
        assert count(conn) == 3
        assert event_store.get_events(conn, created) == {}


def test_an_action_can_be_claimed_only_once_and_the_claim_opens_an_attempt(
    db: Database,
) -> None:
    with db.transaction() as tx:
        action_id = make_action(tx.conn, make_decision(tx.conn))

    with db.transaction() as tx:
        claimed = action_store.claim(tx.conn, action_id, T0 + timedelta(seconds=1))
        again = action_store.claim(tx.conn, action_id, T0 + timedelta(seconds=2))
    assert claimed is not None
    assert claimed["status"] == "delivering"
    assert claimed["attempts"] == 1
    assert again is None, "an action being delivered cannot be claimed a second time"

    with db.read() as conn:
        [attempt] = action_store.attempts_of(conn, [action_id])[action_id]
    assert attempt["number"] == 1
    assert attempt["outcome"] == "started"
    assert attempt["started_at"] == T0 + timedelta(seconds=1)
    assert attempt["finished_at"] is None

    with db.transaction() as tx:
        action_store.finish_attempt(
            tx.conn,
            action_id,
            1,
            outcome="failed",
            at=T0 + timedelta(seconds=3),
            error="timeout",
            retryable=True,
        )
        assert action_store.set_status(
            tx.conn, action_id, "retrying", at=T0, expect=("delivering",)
        )
        retried = action_store.claim(tx.conn, action_id, T0 + timedelta(minutes=1))
    assert retried is not None
    assert retried["attempts"] == 2
    with db.read() as conn:
        attempts = action_store.attempts_of(conn, [action_id])[action_id]
    assert [(a["number"], a["outcome"]) for a in attempts] == [(1, "failed"), (2, "started")]


def test_a_settled_action_cannot_be_claimed(db: Database) -> None:
    with db.transaction() as tx:
        action_id = make_action(tx.conn, make_decision(tx.conn))
        assert action_store.set_status(tx.conn, action_id, "delivered", at=T0)
    with db.transaction() as tx:
        assert action_store.claim(tx.conn, action_id, T0) is None
    with db.read() as conn:
        assert action_store.attempts_of(conn, [action_id]) == {action_id: []}


# --- outcomes ----------------------------------------------------------------------------------


def test_a_decision_keeps_its_first_outcome(db: Database) -> None:
    with db.transaction() as tx:
        decision_id = make_decision(tx.conn)
        outcome_store.link(tx.conn, [outcome_row(decision_id, "success", after=timedelta(days=2))])
    with db.transaction() as tx:
        outcome_store.link(tx.conn, [outcome_row(decision_id, "failure", after=timedelta(days=9))])

    with db.read() as conn:
        outcome = outcome_store.outcome_of(conn, decision_id)
        assert outcome_store.count_outcomes(conn) == {"success": 1}
    assert outcome is not None
    assert outcome["kind"] == "success"
    assert outcome["after_seconds"] == timedelta(days=2).total_seconds()


def test_outcomes_for_several_decisions_link_in_one_call_without_duplicates(
    db: Database,
) -> None:
    with db.transaction() as tx:
        playbook = make_playbook(tx.conn)
        first = make_decision(tx.conn, "lead:1", playbook=playbook)
        second = make_decision(tx.conn, "lead:2", playbook=playbook)
        outcome_store.link(tx.conn, [outcome_row(first, "success", after=timedelta(hours=1))])
        outcome_store.link(
            tx.conn,
            [
                outcome_row(first, "failure", after=timedelta(hours=2)),
                outcome_row(second, "failure", after=timedelta(hours=3)),
            ],
        )
    with db.read() as conn:
        assert outcome_store.count_outcomes(conn) == {"success": 1, "failure": 1}
        first_outcome = outcome_store.outcome_of(conn, first)
    assert first_outcome is not None
    assert first_outcome["kind"] == "success"


# --- quarantine --------------------------------------------------------------------------------


def test_quarantine_keeps_the_head_of_a_huge_body_and_its_full_size(db: Database) -> None:
    huge = b"{" + b"x" * (3 * 1024 * 1024) + b"}"
    with db.transaction() as tx:
        big = quarantine_store.hold(
            tx.conn,
            source="stripe",
            received_at=T0,
            reason="body too large",
            errors=[{"field": "body", "message": "over 1 MiB"}],
            body=huge,
            content_type="application/json",
        )
        small = quarantine_store.hold(
            tx.conn,
            source="csv",
            received_at=T0,
            reason="bad row",
            errors=[{"field": "email", "message": "not an email"}],
            body=b"ana,not-an-email",
            file="leads.csv",
            line=7,
        )

    with db.read() as conn:
        kept = quarantine_store.get(conn, big)
        row = quarantine_store.get(conn, small)
        assert quarantine_store.count_held(conn) == 2
    assert kept is not None
    assert row is not None
    assert bytes(kept["body"]) == huge[: quarantine_store.KEEP_BYTES]
    assert len(kept["body"]) == 64 * 1024
    assert kept["body_size"] == len(huge)
    assert kept["status"] == "held"
    assert kept["errors"] == [{"field": "body", "message": "over 1 MiB"}]
    assert bytes(row["body"]) == b"ana,not-an-email"
    assert row["body_size"] == 16
    assert (row["file"], row["line"]) == ("leads.csv", 7)


def test_quarantine_records_the_size_a_caller_measured_when_it_stopped_reading(
    db: Database,
) -> None:
    with db.transaction() as tx:
        item = quarantine_store.hold(
            tx.conn,
            source="hooks",
            received_at=T0,
            reason="body too large",
            errors=[],
            body=b"x" * 100,
            body_size=50 * 1024 * 1024,
        )
    with db.read() as conn:
        kept = quarantine_store.get(conn, item)
    assert kept is not None
    assert kept["body_size"] == 50 * 1024 * 1024
    assert len(kept["body"]) == 100


def test_new_and_known_subjects_merge_their_patches_as_touching_then_patching_does(
    db: Database,
) -> None:
    """A subject seen for the first time is written once with its patches merged; a known one
    is merged into what it had. Either way the profile, the stored row and the traits a public
    source may not change come out as `touch_entities` + `apply_patches` make them."""
    known = event_store.TraitPatch({"plan": "pro", "email": "a@x.io"}, "crm", trusted=True)
    batch = {
        "new": [
            event_store.TraitPatch({"plan": "free", "email": "n@x.io"}, "crm", trusted=True),
            event_store.TraitPatch({"email": "evil@x.io", "city": "Porto"}, "web", trusted=False),
        ],
        "known": [
            event_store.TraitPatch({"email": "evil@x.io", "plan": None}, "web", trusted=False)
        ],
    }
    seen = {"new": (T0, T0), "known": (T0, T0), "quiet": (T0, T0)}
    results = {}
    for way in ("two_steps", "at_once"):
        subjects = {name: f"lead:{way}-{name}" for name in seen}
        with db.transaction() as tx:
            event_store.touch_entities(tx.conn, {subjects["known"]: (T0, T0)}, T0)
            event_store.apply_patches(
                tx.conn,
                event_store.get_profiles(tx.conn, [subjects["known"]], lock=True),
                {subjects["known"]: [known]},
                T0,
                protected=(),
            )
        spans = {subjects[name]: span for name, span in seen.items()}
        patches = {subjects[name]: in_order for name, in_order in batch.items()}
        at = T0 + timedelta(minutes=5)
        with db.transaction() as tx:
            if way == "two_steps":
                profiles = event_store.touch_entities(tx.conn, spans, at)
                kept = event_store.apply_patches(
                    tx.conn, profiles, patches, at, protected=("email",)
                )
            else:
                profiles, kept = event_store.touch_and_merge(
                    tx.conn, spans, patches, at, protected=("email",)
                )
        stored = {name: entity(db, subject) for name, subject in subjects.items()}
        results[way] = (
            {name: profiles.traits[subject] for name, subject in subjects.items()},
            {name: profiles.trusted[subject] for name, subject in subjects.items()},
            sorted((k.subject.split("-")[1], k.trait, k.set_by) for k in kept),
            {
                name: (row["traits"], row["trusted_traits"] or {}, row["kind"], row["updated_at"])
                for name, row in stored.items()
            },
        )
    assert results["at_once"] == results["two_steps"]
    traits, trusted, kept, _ = results["at_once"]
    assert traits["new"] == {"plan": "free", "email": "n@x.io", "city": "Porto"}
    assert trusted["new"] == {"plan": "crm", "email": "crm"}
    assert traits["known"] == {"email": "a@x.io"}
    assert traits["quiet"] == {}
    assert kept == [("known", "email", "crm"), ("new", "email", "crm")]
