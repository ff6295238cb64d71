"""What only the Procrastinate runtime does: keep the plan of Procrastinate's own fetch when
nothing else gathers the queue table's statistics. The contract both runtimes keep is checked
in test_runtime_contract.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from opsloop.runtime.procrastinate import ANALYZE_AFTER_CHANGES, ProcrastinateRuntime
from opsloop.store.database import Database
from tests.runtime.support import Recorder


@pytest.fixture
def runtime(pg_url: str) -> Iterator[ProcrastinateRuntime]:
    db = Database(pg_url)
    made = ProcrastinateRuntime(db)
    yield made
    made.stop()
    db.dispose()


def believed_rows(db: Database) -> float:
    with db.read() as conn:
        return float(
            conn.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'procrastinate_jobs'")
            ).scalar_one()
        )


def test_a_queue_that_grew_behind_the_planners_back_is_analyzed_once(
    runtime: ProcrastinateRuntime,
) -> None:
    runtime.register("deliver", Recorder())
    assert runtime.keep_plans() is False, "nothing changed yet"
    with runtime.db.transaction() as tx:
        runtime.enqueue(
            tx, "deliver", [({"action_id": n}, f"action:{n}") for n in range(ANALYZE_AFTER_CHANGES)]
        )
        tx.conn.execute(text("SELECT pg_stat_force_next_flush()"))  # counters seen at once
    assert believed_rows(runtime.db) <= 0, "the planner still believes the queue is empty"

    assert runtime.keep_plans() is True
    assert believed_rows(runtime.db) == ANALYZE_AFTER_CHANGES
    assert runtime.keep_plans() is False, "analyzed: nothing to do until it changes again"
