"""Group commit: concurrent ingest calls share transactions, and one call's failure stays its own."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opsloop.service.group_commit import GroupCommitter
from tests.conftest import OpsFactory, eventually, lead_playbook


def test_concurrent_ingests_share_commits_and_each_gets_its_own_answer(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook("shadow")], use_clock=False)
    ops.start()
    committer = ops.ctx.committer
    assert committer is not None
    # Hold the writer inside its first transaction until the other callers have queued, so the
    # test sees the grouping itself, not how fast this machine happens to be.
    first_group_waiting = threading.Event()
    release = threading.Event()
    groups: list[int] = []
    store = committer.store

    def held_store(items: list[Any]) -> list[Any]:
        if not groups:
            first_group_waiting.set()
            release.wait(10)
        groups.append(len(items))
        return store(items)

    committer.store = held_store

    def send(n: int) -> tuple[int, str]:
        body = {"type": "lead.created", "subject": f"lead:{n}", "idempotency_key": f"k{n % 40}"}
        [accepted] = ops.ingest.body(json.dumps(body).encode()).accepted
        return accepted.id, accepted.status

    with ThreadPoolExecutor(16) as pool:
        first = pool.submit(send, 0)
        assert first_group_waiting.wait(10)
        rest = [pool.submit(send, n) for n in range(1, 80)]
        eventually(lambda: committer._queue.qsize() >= 15)
        release.set()
        answers = [first.result(), *(future.result() for future in rest)]

    assert sum(1 for _, status in answers if status == "created") == 40
    assert sum(1 for _, status in answers if status == "duplicate") == 40
    first_of_key = {n % 40: answers[n][0] for n in range(80) if answers[n][1] == "created"}
    assert all(answers[n][0] == first_of_key[n % 40] for n in range(80)), (
        "a duplicate answers with the stored id"
    )
    assert len(ops.ingest.list_events(limit=500)) == 40
    assert len(ops.decide.list_decisions(limit=500)) == 40, (
        "every stored lead was decided in its transaction"
    )
    assert sum(groups) == 80
    assert groups[1] >= 15, "the calls that queued while a transaction ran were stored together"
    assert len(groups) < 80


def test_a_failing_call_does_not_fail_the_calls_grouped_with_it() -> None:
    groups: list[list[str]] = []
    gate = threading.Event()

    def store(items: list[str]) -> list[str]:
        gate.wait(5)
        groups.append(list(items))
        if "poison" in items:
            raise ValueError("cannot store poison")
        return [item.upper() for item in items]

    committer: GroupCommitter[str, str] = GroupCommitter(store)
    committer.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(committer.submit, [name]) for name in ("a", "b", "poison", "c")]
            gate.set()
            results = []
            for future in futures:
                try:
                    results.append(future.result(5))
                except ValueError as exc:
                    results.append(str(exc))
    finally:
        committer.stop()
    assert results == [["A"], ["B"], "cannot store poison", ["C"]]
    assert any(len(group) > 1 for group in groups), "calls waiting together were grouped"
