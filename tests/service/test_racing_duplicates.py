"""Two writers storing the same idempotency key at once (PostgreSQL, where writers run in
parallel): the one that checks for the key before the other commits finds nothing, and its
insert then waits on the other's row. When that one commits, the insert is refused, and the
call is answered as the duplicate it is, with the stored event's id. (On PostgreSQL a single
event's insert is sent with the entity upsert after it, so the refusal arrives there.)"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from opsloop.service.ingest.storing import Accepted
from opsloop.store.schema import decisions, events
from tests.conftest import OpsFactory, eventually, lead_playbook, sessions_waiting_on_a_lock


def test_a_post_racing_another_writer_on_its_key_is_answered_as_the_duplicate(
    make_ops: OpsFactory, pg_url: str
) -> None:
    ops = make_ops(pg_url, playbooks=[lead_playbook("shadow")])
    key = "order-7-created"
    url = make_url(pg_url).set(drivername="postgresql")
    other = psycopg.connect(url.render_as_string(hide_password=False))
    try:
        # The other writer has stored the key and not committed yet.
        at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        [(stored_id,)] = other.execute(
            "INSERT INTO events (source, type, subject, occurred_at, received_at, payload, "
            "idempotency_key) VALUES ('api', 'lead.created', 'lead:7', %s, %s, '{}', %s) "
            "RETURNING id",
            (at, at, key),
        ).fetchall()
        answers: list[Accepted | BaseException] = []

        def post() -> None:
            body = {"type": "lead.created", "subject": "lead:7", "idempotency_key": key}
            try:
                answers.extend(ops.ingest.body(json.dumps(body).encode()).accepted)
            except BaseException as exc:  # reported below, in the test's thread
                answers.append(exc)

        poster = threading.Thread(target=post)
        poster.start()
        # The post's check found nothing; its insert now waits on the other writer's row.
        eventually(lambda: sessions_waiting_on_a_lock(ops.db) > 0)
        other.commit()
        poster.join(10)
    finally:
        other.close()

    assert answers == [Accepted(stored_id, "duplicate")]
    with ops.db.read() as conn:
        stored = conn.execute(
            select(func.count()).select_from(events).where(events.c.idempotency_key == key)
        ).scalar_one()
        decided = conn.execute(select(func.count()).select_from(decisions)).scalar_one()
    assert (stored, decided) == (1, 0), "stored once; the duplicate decides nothing"
