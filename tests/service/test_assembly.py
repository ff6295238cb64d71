"""`OpsLoop` builds a stage's façade when it is first used, and only one per stage."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import OpsFactory


def test_a_stage_is_built_on_first_use_once_even_when_threads_ask_together(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    assert "learn" not in vars(ops)
    together = threading.Barrier(8)

    def learn() -> object:
        together.wait(5)
        return ops.learn

    with ThreadPoolExecutor(8) as pool:
        built = list(pool.map(lambda _: learn(), range(8)))
    assert all(facade is ops.learn for facade in built)


def test_starting_the_service_builds_every_stage(make_ops: OpsFactory, sqlite_url: str) -> None:
    ops = make_ops(sqlite_url)
    ops.start()
    assert {"accounts", "ingest", "decide", "review", "deliver", "learn"} <= set(vars(ops))
