"""The drop folder: CSV and JSONL files read once and moved aside, a malformed line reported by
file and line while the rest is imported, and checkpoints inside a large file."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsloop.core.sources import SourceSpec, parse_source
from opsloop.perception.connectors import fetch
from opsloop.perception.connectors.folder import BATCH_ROWS
from opsloop.service import OpsLoop
from tests.conftest import OpsFactory

ORDERS = """\
order_id,email,amount,ordered_at
1,Ana@Example.pt,12.5,2026-03-01T10:00:00Z
2,bo@example.com,7.5,2026-03-01T11:00:00Z,oops
3,cy@example.com,20,2026-03-01T12:00:00Z
"""


def folder_yaml(drop: Path, *, pattern: str = "*", mapping: bool = True) -> str:
    rules = """\
mapping:
  type: order.placed
  subject: "'customer:' + lower(email)"
  occurred_at: ordered_at
  payload:
    order_id: string(order_id)
    amount: amount
"""
    return (
        f"name: drops\nkind: folder\n{rules if mapping else ''}"
        f"folder:\n  path: {drop}\n  pattern: '{pattern}'\n"
    )


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


@pytest.fixture
def ops(make_ops: OpsFactory, database_url: str, drop: Path) -> OpsLoop:
    ops = make_ops(database_url)
    ops.ingest.add_source(folder_yaml(drop), "drops.yaml", actor="test")
    return ops


def events(ops: OpsLoop) -> list[dict]:  # type: ignore[type-arg]
    found = [e for e in ops.ingest.list_events(limit=1000) if e["source"] == "drops"]
    return sorted(found, key=lambda e: e["id"])


def test_a_malformed_line_is_held_with_its_file_and_line_and_the_rest_is_imported(
    ops: OpsLoop, drop: Path
) -> None:
    (drop / "orders.csv").write_text(ORDERS)
    run = ops.ingest.sync_source("drops", actor="test")
    assert (run.status, run.rows_in, run.events_stored, run.rejected) == ("ok", 3, 2, 1)

    assert [(e["subject"], e["payload"]) for e in events(ops)] == [
        ("customer:ana@example.pt", {"order_id": "1", "amount": 12.5}),
        ("customer:cy@example.com", {"order_id": "3", "amount": 20}),
    ]
    [held] = ops.ingest.list_quarantine(source="drops")
    assert (held["file"], held["line"]) == ("orders.csv", 3)
    assert "has 5 cells but the header has 4" in held["reason"]

    assert not (drop / "orders.csv").exists()
    assert (drop / "processed" / "orders.csv").read_text() == ORDERS, "moved aside, unchanged"


def test_a_file_is_processed_once_even_when_dropped_again(ops: OpsLoop, drop: Path) -> None:
    (drop / "orders.csv").write_text(ORDERS)
    ops.ingest.sync_source("drops", actor="test")
    assert ops.ingest.sync_source("drops", actor="test").rows_in == 0, "nothing new in the folder"

    (drop / "orders-again.csv").write_text(ORDERS)
    again = ops.ingest.sync_source("drops", actor="test")
    assert (again.events_stored, again.duplicates) == (0, 2)
    assert len(events(ops)) == 2
    assert sorted(p.name for p in (drop / "processed").iterdir()) == [
        "orders-again.csv",
        "orders.csv",
    ]


def test_jsonl_files_are_read_the_same_way(ops: OpsLoop, drop: Path) -> None:
    (drop / "more.jsonl").write_text(
        '{"order_id": 7, "email": "di@example.com", "amount": 3, "ordered_at": "2026-03-02"}\n'
        "{not json\n"
        "\n"
        '{"order_id": 8, "email": "ed@example.com", "amount": 4, "ordered_at": "2026-03-02"}\n'
    )
    run = ops.ingest.sync_source("drops", actor="test")
    assert (run.events_stored, run.rejected) == (2, 1)
    [held] = ops.ingest.list_quarantine(source="drops")
    assert (held["file"], held["line"]) == ("more.jsonl", 2)
    assert "malformed JSON" in held["reason"]


def test_without_a_mapping_files_are_in_the_ingest_format(
    make_ops: OpsFactory, database_url: str, drop: Path
) -> None:
    ops = make_ops(database_url)
    ops.ingest.add_source(folder_yaml(drop, mapping=False), "drops.yaml", actor="test")
    (drop / "events.csv").write_text(
        "type,subject,occurred_at,amount,traits.plan\n"
        "order.placed,customer:ana@example.pt,2026-03-01T10:00:00Z,12.5,pro\n"
    )
    run = ops.ingest.sync_source("drops", actor="test")
    assert run.events_stored == 1, run
    [event] = events(ops)
    assert (event["type"], event["payload"], event["traits"]) == (
        "order.placed",
        {"amount": 12.5},
        {"plan": "pro"},
    )


def test_a_backfill_reads_the_processed_files_again_as_history(ops: OpsLoop, drop: Path) -> None:
    (drop / "orders.csv").write_text(ORDERS)
    ops.ingest.sync_source("drops", actor="test")
    run = ops.ingest.sync_source("drops", mode="backfill", actor="test")
    assert (run.rows_in, run.events_stored, run.duplicates) == (3, 0, 2)
    assert (drop / "processed" / "orders.csv").exists(), "left where it was"


def test_a_missing_folder_fails_the_run_saying_so(ops: OpsLoop, drop: Path) -> None:
    drop.rmdir()
    run = ops.ingest.sync_source("drops", actor="test")
    assert run.status == "failed"
    assert run.error == f"the drop folder {drop} does not exist"


# --- checkpoints inside a file (no database needed) ------------------------------------------


def spec(drop: Path) -> SourceSpec:
    return parse_source(folder_yaml(drop), "drops.yaml")[0]


def test_a_large_file_is_read_in_batches_and_resumes_after_the_last_committed_line(
    drop: Path,
) -> None:
    lines = [f"{n},u{n}@example.com,1,2026-03-01" for n in range(1, BATCH_ROWS * 2 + 11)]
    (drop / "big.csv").write_text("order_id,email,amount,ordered_at\n" + "\n".join(lines))
    batches = list(fetch(spec(drop), None, None))
    assert [len(b.records) for b in batches] == [BATCH_ROWS, BATCH_ROWS, 10]
    first = batches[0].checkpoint
    assert first is not None
    assert first["line"] == BATCH_ROWS + 1, "the header is line 1"
    assert batches[0].after_commit == [], "moved only after its last batch"

    resumed = list(fetch(spec(drop), None, first))
    assert resumed[0].records[0].data["order_id"] == BATCH_ROWS + 1
    assert resumed[0].records[0].key == f"{first['sha256']}:{BATCH_ROWS + 2}"
    assert sum(len(b.records) for b in resumed) == BATCH_ROWS + 10


def test_a_file_committed_but_not_yet_moved_is_only_moved(drop: Path) -> None:
    (drop / "orders.csv").write_text(ORDERS)
    [batch] = list(fetch(spec(drop), None, None))
    assert batch.checkpoint is not None
    # The process died after the commit, before the move: the next run only moves it.
    [again] = list(fetch(spec(drop), None, batch.checkpoint))
    assert (again.records, again.rejected) == ([], [])
    for callback in again.after_commit:
        callback()
    assert (drop / "processed" / "orders.csv").exists()


def test_a_file_changed_under_the_same_name_is_read_from_its_start(drop: Path) -> None:
    (drop / "orders.csv").write_text(ORDERS)
    [batch] = list(fetch(spec(drop), None, None))
    (drop / "orders.csv").write_text(ORDERS + "4,di@example.com,1,2026-03-02\n")
    [again] = list(fetch(spec(drop), None, batch.checkpoint))
    assert [r.data["order_id"] for r in again.records] == [1, 3, 4]
