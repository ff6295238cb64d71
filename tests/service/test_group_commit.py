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
    # Hold each writer (PostgreSQL has two) inside its first transaction until the other callers
    # have queued, so the test sees the grouping itself, not how fast this machine happens to be.
    writers = committer.writers
    waiting = threading.Semaphore(0)
    release = threading.Event()
    groups: list[int] = []
    lock = threading.Lock()
    store = committer.store

    def held_store(items: list[Any]) -> list[Any]:
        with lock:
            held = len(groups) < writers
            groups.append(len(items))
        if held:
            waiting.release()
            release.wait(10)
        return store(items)

    committer.store = held_store

    def send(n: int) -> tuple[int, str]:
        body = {"type": "lead.created", "subject": f"lead:{n}", "idempotency_key": f"k{n % 40}"}
        [accepted] = ops.ingest.body(json.dumps(body).encode()).accepted
        return accepted.id, accepted.status

    with ThreadPoolExecutor(16 + writers) as pool:  # 16 callers besides the held ones
        firsts = []
        for n in range(writers):  # one call per writer, each held in its transaction
            firsts.append(pool.submit(send, n))
            assert waiting.acquire(timeout=10)
        rest = [pool.submit(send, n) for n in range(writers, 80)]
        eventually(lambda: committer._queue.qsize() >= 15)
        release.set()
        answers = [*(future.result() for future in firsts), *(future.result() for future in rest)]

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
    assert max(groups[writers:]) >= 15, (
        "the calls that queued while the transactions ran were stored together"
    )
    assert len(groups) < 80


def test_a_burst_of_posts_about_one_lead_makes_one_decision_whichever_writer_stores_them(
    make_ops: OpsFactory, database_url: str
) -> None:
    """The playbook's `cooldown: 1h` promises one decision for a burst of form posts. On
    PostgreSQL two writers store groups at once; here the first post is held inside its
    transaction while the others queue, so the other writer is free to take them. It must
    wait for the first: had it stored a later post first, the held, earlier one would fall
    outside that post's cooldown (two decisions)."""
    ops = make_ops(database_url, playbooks=[lead_playbook("shadow")], use_clock=False)
    ops.start()
    committer = ops.ctx.committer
    assert committer is not None
    first_held = threading.Event()
    release = threading.Event()
    stored_while_held: list[int] = []
    store = committer.store

    def held_store(items: list[Any]) -> list[Any]:
        if not first_held.is_set():
            first_held.set()
            release.wait(10)
            return store(items)
        results = store(items)
        if not release.is_set():
            stored_while_held.append(len(items))
        return results

    committer.store = held_store
    enqueue = committer.enqueue
    queued: list[int] = []

    def counted_enqueue(items: list[Any]) -> Any:
        future = enqueue(items)
        queued.append(len(items))
        return future

    committer.enqueue = counted_enqueue  # type: ignore[method-assign]

    def post(n: int) -> str:
        body = {"type": "demo.requested", "subject": "lead:burst", "idempotency_key": f"b{n}"}
        [accepted] = ops.ingest.body(json.dumps(body).encode()).accepted
        return accepted.status

    with ThreadPoolExecutor(10) as pool:
        first = pool.submit(post, 0)
        assert first_held.wait(10)
        rest = [pool.submit(post, n) for n in range(1, 10)]
        if committer.writers > 1:
            # The other writer took a post: it waits for the held one (or, wrongly, stores it).
            eventually(lambda: committer.waiting == 1 or bool(stored_while_held))
        eventually(lambda: sum(queued) == 10)  # the whole burst is in before the first goes
        release.set()
        statuses = [future.result() for future in (first, *rest)]

    assert stored_while_held == [], "nothing about the lead was stored before the held post"
    assert statuses == ["created"] * 10
    assert len(ops.ingest.list_events(limit=50)) == 10
    decided = ops.decide.list_decisions(limit=50)
    assert [d["subject"] for d in decided] == ["lead:burst"], "one decision for the burst"


def test_two_writers_store_other_subjects_at_once_and_one_subject_in_order() -> None:
    """While one writer is held inside a group, the other stores a group about another subject;
    a group about the held subject waits for it (and, taken from the queue, keeps the rest of
    the queue behind it: nothing overtakes)."""
    order: list[str] = []
    first_in = threading.Event()
    release = threading.Event()

    def store(items: list[tuple[str, str]]) -> list[str]:
        names = [name for name, _ in items]
        if "a1" in names:
            first_in.set()
            release.wait(5)
        order.extend(names)
        return names

    committer: GroupCommitter[tuple[str, str], str] = GroupCommitter(
        store, writers=2, key=lambda item: item[1]
    )
    committer.start()
    try:
        held = committer.enqueue([("a1", "lead:a")])
        assert first_in.wait(5)
        assert committer.submit([("b1", "lead:b")]) == ["b1"], "another subject goes at once"
        same = committer.enqueue([("a2", "lead:a")])
        eventually(lambda: committer.waiting == 1)
        after = committer.enqueue([("b2", "lead:b")])
        assert not same.done()
        assert not after.done()
        release.set()
        assert held.result(5) == ["a1"]
        assert same.result(5) == ["a2"]
        assert after.result(5) == ["b2"]
    finally:
        committer.stop()
    assert order == ["b1", "a1", "a2", "b2"]


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
