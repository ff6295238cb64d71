"""The ledger is tamper-evident, on SQLite and PostgreSQL: the audit hash chain holds while the
service works, and `verify` names the first thing an attacker with database access changed —
an audit row altered or removed, a decision's explanation or choice rewritten, a decision
removed, an action's request changed. The tests play the attacker with raw SQL, turning the
append-only triggers off as someone with write access would."""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from opsloop.service import OpsLoop
from opsloop.store import audit as audit_store
from opsloop.store import explanations, ledger, source_stats
from opsloop.store.database import Database
from opsloop.store.schema import actions, audit, decision_dictionaries, decisions, ledger_head
from tests.conftest import OpsFactory, lead_playbook
from tests.leads import new_lead, settle


@pytest.fixture
def ops(make_ops: OpsFactory, database_url: str) -> OpsLoop:
    """Three leads: one settled on the nurture email (its action queued), one on the hot
    lead's chat message and task, one still waiting for a person."""
    ops = make_ops(database_url, playbooks=[lead_playbook()])
    settle(ops, 1, "nurture")
    settle(ops, 2, "hot")
    new_lead(ops, 3)
    return ops


@contextmanager
def as_attacker(db: Database) -> Iterator[Connection]:
    """A connection with the audit table's append-only triggers off, as someone with write
    access to the database would have it; they are back on afterwards."""
    with db.engine.begin() as conn:
        if db.is_sqlite:
            for verb in ("update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER audit_no_{verb}")
        else:
            conn.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
        yield conn
        if db.is_sqlite:
            for verb in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit "
                    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
                )
        else:
            conn.exec_driver_sql("ALTER TABLE audit ENABLE TRIGGER audit_append_only")


def all_at_once(runs: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
    """Run each (function, arguments) in a thread of its own, all at once; wait for them."""
    threads = [threading.Thread(target=run, args=args) for run, args in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def audit_id(ops: OpsLoop, verb: str, object_id: int | str | None = None) -> int:
    query = sa.select(sa.func.max(audit.c.id)).where(audit.c.verb == verb)
    if object_id is not None:
        query = query.where(audit.c.object_id == str(object_id))
    with ops.db.read() as conn:
        found: int = conn.execute(query).scalar_one()
    return found


def test_an_intact_ledger_verifies(ops: OpsLoop) -> None:
    result = ops.verify_ledger()

    assert result.intact, result.problem
    assert result.problem is None
    assert (result.decisions, result.actions) == (3, 3)  # the email; the chat message and task
    with ops.db.read() as conn:
        count, last = conn.execute(sa.select(sa.func.count(), sa.func.max(audit.c.id))).one()
        head = conn.execute(sa.select(ledger_head)).one()
    assert result.audit_rows == count == last == head.last_id  # gapless ids, head at the end
    assert result.head_id == last
    assert result.head_hash == head.last_hash.hex()
    assert len(result.head_hash) == 64


def test_every_state_an_action_goes_through_is_in_the_audit_trail(ops: OpsLoop) -> None:
    [email] = settle(ops, 4, "nurture")
    ops.deliver.cancel_action(email["id"], actor="rui")

    with ops.db.read() as conn:
        trail = [row["verb"] for row in audit_store.trail(conn, "action", email["id"])]
    assert trail == ["action.queued", "action.cancelled"]
    assert ops.verify_ledger().intact


def test_an_altered_audit_row_is_named(ops: OpsLoop) -> None:
    target = audit_id(ops, "decision.approved")
    with as_attacker(ops.db) as conn:
        conn.execute(sa.update(audit).where(audit.c.id == target).values(actor="someone-else"))

    result = ops.verify_ledger()

    assert not result.intact
    assert result.problem == f"audit row {target} was altered (its hash does not match)"


def test_an_altered_detail_whose_hash_was_recomputed_is_named_by_the_next_row(
    ops: OpsLoop,
) -> None:
    target = audit_id(ops, "decision.approved")
    with as_attacker(ops.db) as conn:
        row = conn.execute(sa.select(audit).where(audit.c.id == target)).one()._mapping
        forged = {**row, "detail": {**row["detail"], "reason": "looked fine to me"}}
        conn.execute(
            sa.update(audit)
            .where(audit.c.id == target)
            .values(detail=forged["detail"], hash=ledger.row_hash(forged))
        )

    assert ops.verify_ledger().problem == (
        f"audit row {target} was altered (row {target + 1} does not follow it)"
    )


def test_a_deleted_audit_row_is_named(ops: OpsLoop) -> None:
    target = audit_id(ops, "decision.approved")
    with as_attacker(ops.db) as conn:
        conn.execute(sa.delete(audit).where(audit.c.id == target))

    assert ops.verify_ledger().problem == (
        f"audit row {target} is missing (row {target + 1} does not follow row {target - 1})"
    )


def test_deleting_the_newest_audit_rows_is_named(ops: OpsLoop) -> None:
    last = ops.verify_ledger().head_id
    with as_attacker(ops.db) as conn:
        conn.execute(sa.delete(audit).where(audit.c.id >= last - 1))

    assert ops.verify_ledger().problem == (
        f"audit rows {last - 1} to {last} are missing (the ledger's head is row {last})"
    )


def rewrite_explanation(conn: Connection, decision_id: int, **changes: object) -> None:
    """Decode a decision's stored detail, change its explanation and store it back, properly
    encoded: the most careful kind of edit."""
    row = conn.execute(sa.select(decisions).where(decisions.c.id == decision_id)).one()
    sample = conn.execute(
        sa.select(decision_dictionaries.c.sample).where(
            decision_dictionaries.c.playbook_version_id == row.playbook_version_id
        )
    ).scalar_one()
    inputs, explanation = explanations.parse(explanations.inflate(row.detail, sample))
    blob = explanations.Compressor(sample).compress(
        explanations.document(inputs, {**explanation, **changes})
    )
    conn.execute(sa.update(decisions).where(decisions.c.id == decision_id).values(detail=blob))


def test_an_altered_explanation_is_named(ops: OpsLoop) -> None:
    decision = ops.decide.list_decisions(subject="lead:1")[0]
    with as_attacker(ops.db) as conn:
        rewrite_explanation(conn, decision["id"], why="Looked hot to everyone")

    assert ops.decide.decision_detail(decision["id"])["why"] == "Looked hot to everyone"
    approved = audit_id(ops, "decision.approved", decision["id"])
    assert ops.verify_ledger().problem == (
        f"decision {decision['id']} was altered after audit row {approved}"
    )


def test_an_altered_choice_is_named(ops: OpsLoop) -> None:
    decision = ops.decide.list_decisions(subject="lead:3")[0]
    with as_attacker(ops.db) as conn:
        conn.execute(
            sa.update(decisions).where(decisions.c.id == decision["id"]).values(choice="hot")
        )

    created = audit_id(ops, "decision.pending", decision["id"])
    assert ops.verify_ledger().problem == (
        f"decision {decision['id']} was altered after audit row {created}"
    )


@pytest.mark.parametrize("junk", [b"\x01junk", b"\x02junk"], ids=["deflate", "zstd"])
def test_a_damaged_detail_is_named(ops: OpsLoop, junk: bytes) -> None:
    decision = ops.decide.list_decisions(subject="lead:3")[0]
    with as_attacker(ops.db) as conn:
        conn.execute(
            sa.update(decisions).where(decisions.c.id == decision["id"]).values(detail=junk)
        )

    created = audit_id(ops, "decision.pending", decision["id"])
    assert ops.verify_ledger().problem == (
        f"decision {decision['id']} was altered after audit row {created} "
        "(it can no longer be read)"
    )


def test_a_detail_read_against_another_versions_dictionary_fails_its_checksum(
    ops: OpsLoop,
) -> None:
    decision = ops.decide.list_decisions(subject="lead:3")[0]
    with ops.db.engine.connect() as conn:
        blob = conn.execute(
            sa.select(decisions.c.detail).where(decisions.c.id == decision["id"])
        ).scalar_one()
        sample = conn.execute(sa.select(decision_dictionaries.c.sample)).scalars().first()
    assert blob[0] == explanations.ZSTD
    other = sample.replace(b"Nurture", b"Nourish")  # another version: one label renamed
    assert other != sample

    with pytest.raises(explanations.UnreadableDetail):
        explanations.inflate(blob, other)
    assert explanations.parse(explanations.inflate(blob, sample))[1]["why"] == decision["why"]


def test_decisions_stored_in_the_older_deflate_form_still_read_and_verify(ops: OpsLoop) -> None:
    """Blobs written before Zstandard (format 1: deflate with the version's dictionary) are
    read as they were, and the ledger's digests, which cover the plain document, still hold."""
    before = {d["id"]: ops.decide.decision_detail(d["id"]) for d in ops.decide.list_decisions()}
    with ops.db.engine.begin() as conn:
        samples = {
            int(version): bytes(sample)
            for version, sample in conn.execute(
                sa.select(
                    decision_dictionaries.c.playbook_version_id, decision_dictionaries.c.sample
                )
            )
        }
        for decision_id, version, blob in conn.execute(
            sa.select(decisions.c.id, decisions.c.playbook_version_id, decisions.c.detail)
        ).all():
            plain = explanations.inflate(bytes(blob), samples[version])
            old = zlib.compressobj(
                6, zlib.DEFLATED, 14, 5, zlib.Z_DEFAULT_STRATEGY, samples[version]
            )
            deflated = b"\x01" + old.compress(plain) + old.flush()
            conn.execute(
                sa.update(decisions).where(decisions.c.id == decision_id).values(detail=deflated)
            )

    assert {d: ops.decide.decision_detail(d) for d in before} == before
    assert ops.verify_ledger().problem is None


def test_a_deleted_decision_is_named(ops: OpsLoop) -> None:
    decision = ops.decide.list_decisions(subject="lead:3")[0]  # no review, no action refers to it
    with as_attacker(ops.db) as conn:
        conn.execute(sa.delete(decisions).where(decisions.c.id == decision["id"]))

    created = audit_id(ops, "decision.pending", decision["id"])
    assert ops.verify_ledger().problem == (
        f"decision {decision['id']} was removed (audit row {created} describes it)"
    )


def test_an_altered_action_request_is_named(ops: OpsLoop) -> None:
    [email] = ops.decide.decision_detail(ops.decide.list_decisions(subject="lead:1")[0]["id"])[
        "actions"
    ]
    request = {**email["request"], "to": "attacker@example.com"}
    with as_attacker(ops.db) as conn:
        conn.execute(sa.update(actions).where(actions.c.id == email["id"]).values(request=request))

    queued = audit_id(ops, "action.queued", email["id"])
    assert ops.verify_ledger().problem == (
        f"action {email['id']} was altered after audit row {queued}"
    )


def test_a_decision_added_behind_the_ledgers_back_is_named(ops: OpsLoop) -> None:
    with as_attacker(ops.db) as conn:
        row = conn.execute(sa.select(decisions).order_by(decisions.c.id.desc())).first()
        assert row is not None
        # A copy of the newest decision, on an event of its own (one decision per event).
        event_id = conn.execute(
            sa.text(
                "INSERT INTO events (source, type, subject, occurred_at, received_at, payload) "
                "SELECT source, type, 'lead:99', occurred_at, received_at, payload FROM events "
                "WHERE id = :id RETURNING id"
            ),
            {"id": row.event_id},
        ).scalar_one()
        conn.execute(
            sa.insert(decisions),
            {**row._mapping, "id": row.id + 100, "event_id": event_id, "subject": "lead:99"},
        )

    assert ops.verify_ledger().problem == (
        f"decision {row.id + 100} is in no audit row (it was added outside the ledger)"
    )


def test_a_rewrite_of_the_whole_chain_is_caught_only_against_a_noted_head(ops: OpsLoop) -> None:
    noted = ops.verify_ledger()
    target = audit_id(ops, "decision.approved")
    with as_attacker(ops.db) as conn:
        # Alter a row, then recompute every hash after it and the head: the chain is whole.
        rows = conn.execute(sa.select(audit).where(audit.c.id >= target).order_by(audit.c.id))
        prev = conn.execute(sa.select(audit.c.hash).where(audit.c.id == target - 1)).scalar_one()
        for row in list(rows):
            entry = dict(row._mapping)
            if row.id == target:
                entry["actor"] = "someone-else"
            entry["prev_hash"] = prev
            entry["hash"] = prev = ledger.row_hash(entry)
            conn.execute(
                sa.update(audit)
                .where(audit.c.id == row.id)
                .values(actor=entry["actor"], prev_hash=entry["prev_hash"], hash=entry["hash"])
            )
        conn.execute(sa.update(ledger_head).values(last_hash=prev))

    assert ops.verify_ledger().intact  # what the chain alone cannot tell
    result = ops.verify_ledger(expect=(noted.head_id, noted.head_hash))
    assert result.problem == (
        f"audit row {noted.head_id} no longer has the hash you noted: the chain was "
        "rewritten from that row or earlier"
    )


def test_writers_in_many_threads_make_one_unbroken_chain(ops: OpsLoop) -> None:
    """Each transaction appends last, under the head's lock: however the writers interleave,
    ids stay gapless and every row follows the one before it."""
    errors: list[BaseException] = []
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def write(worker: int) -> None:
        try:
            for n in range(15):
                with ops.db.transaction() as tx:
                    audit_store.record(
                        tx.conn,
                        at=at,
                        actor=f"worker-{worker}",
                        verb="test.wrote",
                        object_type="test",
                        object_id=n,
                        detail={"n": n},
                    )
                    audit_store.record_many(
                        tx.conn,
                        [
                            {
                                "at": at,
                                "actor": f"worker-{worker}",
                                "verb": "test.wrote_too",
                                "object_type": "test",
                                "object_id": n,
                            }
                        ],
                    )
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    before = ops.verify_ledger().audit_rows
    all_at_once([(write, (worker,)) for worker in range(4)])

    assert errors == []
    result = ops.verify_ledger()
    assert result.intact, result.problem
    assert result.audit_rows == before + 4 * 15 * 2


def record_then_fail(db: Database) -> None:
    with db.transaction() as tx:
        audit_store.record(
            tx.conn,
            at=datetime(2026, 3, 2, tzinfo=UTC),
            actor="x",
            verb="test.never",
            object_type="test",
            object_id=1,
        )
        raise RuntimeError("changed my mind")


def test_a_transaction_that_rolls_back_leaves_no_audit_row(ops: OpsLoop) -> None:
    before = ops.verify_ledger().head_id
    with pytest.raises(RuntimeError, match="changed my mind"):
        record_then_fail(ops.db)

    result = ops.verify_ledger()
    assert (result.intact, result.head_id) == (True, before)


def test_two_processes_appending_in_turn_and_at_once_keep_one_chain(ops: OpsLoop) -> None:
    """Each process remembers the head it last committed and appends in one statement while
    that is still the head (PostgreSQL: sent with the transaction's other last writes and its
    COMMIT); when the other process moved it in between, that append is undone and it falls
    back to locking the head, in the same transaction. Either way the chain has no gap and no
    fork, and the transaction's other writes are made once."""
    other = Database(str(ops.db.url.render_as_string(hide_password=False)))
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    writes = 0

    def write(db: Database, actor: str, n: int) -> None:
        nonlocal writes
        with db.transaction() as tx:
            # A counter: on PostgreSQL a write deferred to the last round trip, before the audit.
            source_stats.add(tx.conn, "ledger-test", "2026-03-02", received=1)
            audit_store.record(
                tx.conn, at=at, actor=actor, verb="test.wrote", object_type="test", object_id=n
            )
        writes += 1

    try:
        before = ops.verify_ledger().audit_rows
        for n in range(6):  # in turn, and each process twice in a row
            write(ops.db, "first", n)
            write(ops.db, "first", n)
            write(other, "second", n)
        with pytest.raises(RuntimeError, match="changed my mind"):
            record_then_fail(other)
        errors: list[BaseException] = []

        def many(db: Database, actor: str) -> None:
            try:
                for n in range(20):
                    write(db, actor, n)
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        all_at_once(
            [
                (many, (db, name))
                for db, name in ((ops.db, "first"), (other, "second"), (other, "third"))
            ]
        )
        write(ops.db, "first", 99)
    finally:
        other.engine.dispose()

    assert errors == []
    result = ops.verify_ledger()
    assert result.intact, result.problem
    assert result.audit_rows == before + 6 * 3 + 3 * 20 + 1
    with ops.db.read() as conn:
        counted = source_stats.totals(conn, "ledger-test", "2026-03-02")["received"]
    assert counted == writes == 6 * 3 + 3 * 20 + 1


def test_a_broken_constraint_in_the_last_round_trip_rolls_everything_back(ops: OpsLoop) -> None:
    """On PostgreSQL a transaction's last writes, its audit rows and its COMMIT go in one
    round trip; a write there that breaks a constraint fails the call, as it would have at
    once, and leaves nothing behind: no audit row, no counter."""
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    before = ops.verify_ledger().audit_rows

    def write_a_broken_row_last() -> None:
        with ops.db.transaction() as tx:
            source_stats.add(tx.conn, "ledger-test", "2026-03-02", received=1)
            audit_store.record(
                tx.conn, at=at, actor="me", verb="test.wrote", object_type="test", object_id=1
            )
            # Deferred to the last round trip on PostgreSQL (at once on SQLite): no source.
            tx.defer("INSERT INTO source_stats (source, day) VALUES (NULL, '2026-03-02')", ())

    # SQLite's deferred write is the driver's own statement, so its error is the driver's.
    with pytest.raises((sa.exc.IntegrityError, sqlite3.IntegrityError)):
        write_a_broken_row_last()
    assert ops.verify_ledger().audit_rows == before
    with ops.db.read() as conn:
        assert source_stats.totals(conn, "ledger-test", "2026-03-02")["received"] == 0
    # And the next transaction appends and commits as usual.
    with ops.db.transaction() as tx:
        audit_store.record(
            tx.conn, at=at, actor="me", verb="test.wrote", object_type="test", object_id=2
        )
    result = ops.verify_ledger()
    assert result.intact, result.problem
    assert result.audit_rows == before + 1


def test_writers_keep_one_chain_when_transactions_fail_at_their_commit(ops: OpsLoop) -> None:
    """On PostgreSQL a writer hands the next one its turn as soon as its append and COMMIT are
    sent, and the next one seals after rows that are not committed yet. Here every third
    transaction fails at the COMMIT itself (a deferred unique constraint), after its append
    ran: the writers that sealed after it find the head elsewhere and append after the real
    one. The chain stays whole and holds exactly the transactions that committed."""
    deferred = "" if ops.db.is_sqlite else " DEFERRABLE INITIALLY DEFERRED"
    with ops.db.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE ledger_test_once (n INTEGER, UNIQUE (n){deferred})")
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    committed: list[str] = []
    failed: list[str] = []
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        for n in range(12):
            name = f"{worker}-{n}"
            try:
                with ops.db.transaction() as tx:
                    source_stats.add(tx.conn, "ledger-test", "2026-03-02", received=1)
                    audit_store.record(
                        tx.conn,
                        at=at,
                        actor=name,
                        verb="test.wrote",
                        object_type="test",
                        object_id=n,
                    )
                    if n % 3 == 2:  # one value twice: refused when the rows are checked
                        # (a value of its own: no other writer's check waits on this one)
                        tx.conn.exec_driver_sql(
                            f"INSERT INTO ledger_test_once (n) VALUES ({worker * 100 + n}), "
                            f"({worker * 100 + n})"
                        )
                committed.append(name)
            except sa.exc.IntegrityError:
                failed.append(name)
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

    try:
        before = ops.verify_ledger().audit_rows
        all_at_once([(write, (worker,)) for worker in range(3)])
        with ops.db.transaction() as tx:  # and the next one appends as usual
            audit_store.record(
                tx.conn, at=at, actor="after", verb="test.wrote", object_type="test", object_id=0
            )
    finally:
        with ops.db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE ledger_test_once")

    assert errors == []
    assert (len(committed), len(failed)) == (3 * 8, 3 * 4)
    result = ops.verify_ledger()
    assert result.intact, result.problem
    assert result.audit_rows == before + len(committed) + 1
    with ops.db.read() as conn:
        written = {
            row.actor
            for row in conn.execute(sa.select(audit.c.actor).where(audit.c.verb == "test.wrote"))
        }
        counted = source_stats.totals(conn, "ledger-test", "2026-03-02")["received"]
    assert written == {*committed, "after"}
    assert counted == len(committed)
