"""Syncing pulled sources on real databases: every run recorded, checkpoints saved only after
the events are stored, a failed run resumed where it stopped, one run per source at a time,
backfills as history, the schedule, and a sync killed mid-run that imports every row once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.errors import Conflict, InvalidInput
from opsloop.service import OpsLoop
from opsloop.service.ingest.syncing import WORKER_DIED
from opsloop.store import source_runs as run_store
from tests.conftest import Clock, OpsFactory, Serve, eventually, lead_playbook
from tests.perception.json_api import TOKEN, JsonApi, orders

runner = CliRunner()


def shop_yaml(api: JsonApi, *, extra: str = "", interval: str = "5m") -> str:
    return f"""\
name: shop
kind: http
interval: {interval}
mapping:
  type: lead.created
  subject: "'lead:' + string(id)"
  occurred_at: updated_at
  payload:
    total: total
  traits:
    email: email
http:
  url: {api.url}/page
  items: data
  auth: {{type: bearer}}
  pagination: {{type: page, size_param: per_page, size: 3}}
{extra}"""


@pytest.fixture
def api() -> Iterator[JsonApi]:
    with JsonApi(items=orders(8)) as server:
        yield server


@pytest.fixture
def ops(make_ops: OpsFactory, database_url: str, api: JsonApi) -> OpsLoop:
    ops = make_ops(database_url)
    ops.ingest.add_source(shop_yaml(api), "shop.yaml", secret=TOKEN, actor="test")
    return ops


def stored_keys(ops: OpsLoop) -> Counter[str]:
    events = ops.ingest.list_events(limit=1000)
    return Counter(e["idempotency_key"] for e in events if e["source"] == "shop")


def test_a_sync_stores_each_item_once_and_records_its_run(ops: OpsLoop, clock: Clock) -> None:
    run = ops.ingest.sync_source("shop", actor="test")
    assert (run.status, run.mode, run.error) == ("ok", "sync", None)
    assert (run.rows_in, run.events_stored, run.duplicates, run.rejected) == (8, 8, 0, 0)
    assert run.started_at == clock.now
    assert run.finished_at == clock.now
    assert stored_keys(ops) == Counter(str(n) for n in range(1, 9))
    assert ops.ingest.get_entity("lead:3")["traits"]["email"] == "buyer3@example.com"

    again = ops.ingest.sync_source("shop", actor="test")
    assert (again.events_stored, again.duplicates) == (0, 8), "read again, stored once"
    assert [r.id for r in ops.ingest.source_runs("shop")] == [again.id, run.id]
    source = ops.ingest.get_source("shop")
    assert source.next_sync_at == clock.now + source.spec.interval


def test_a_page_that_fails_fails_the_run_and_the_next_run_resumes_at_that_page(
    ops: OpsLoop, api: JsonApi
) -> None:
    api.fail_once = {"page=2"}
    failed = ops.ingest.sync_source("shop", actor="test")
    assert failed.status == "failed"
    assert "answered 500" in (failed.error or "")
    assert (failed.rows_in, failed.events_stored) == (3, 3)
    assert failed.checkpoint_after == {"next": {"page": 2}}
    assert ops.ingest.get_source("shop").checkpoint == failed.checkpoint_after

    api.requests.clear()
    resumed = ops.ingest.sync_source("shop", actor="test")
    assert resumed.status == "ok"
    assert resumed.checkpoint_before == failed.checkpoint_after
    assert [q["page"] for q in api.pages_asked("/page")] == ["2", "3"]
    assert (resumed.events_stored, resumed.duplicates) == (5, 0)
    assert stored_keys(ops) == Counter(str(n) for n in range(1, 9))


def test_an_incremental_source_keeps_its_updated_at_cursor_between_runs(
    make_ops: OpsFactory, database_url: str, api: JsonApi
) -> None:
    ops = make_ops(database_url)
    extra = "  incremental: {field: updated_at, param: updated_since}\n"
    ops.ingest.add_source(shop_yaml(api, extra=extra), "shop.yaml", secret=TOKEN, actor="test")
    ops.ingest.sync_source("shop", actor="test")
    assert ops.ingest.get_source("shop").checkpoint == {"since": "2026-03-01T09:08:00Z"}

    api.items[0]["updated_at"] = "2026-03-01T11:00:00Z"
    run = ops.ingest.sync_source("shop", actor="test")
    assert api.pages_asked("/page")[-1]["updated_since"] == "2026-03-01T09:08:00Z"
    assert (run.rows_in, run.events_stored, run.duplicates) == (2, 1, 1)
    assert "1@2026-03-01T11:00:00Z" in stored_keys(ops), "a changed order is a new event"


def test_a_second_run_while_one_is_under_way_is_refused_naming_it(
    ops: OpsLoop, api: JsonApi
) -> None:
    api.hold = {"page=2"}
    finished = []
    worker = threading.Thread(
        target=lambda: finished.append(ops.ingest.sync_source("shop", actor="a"))
    )
    worker.start()
    try:
        assert api.held.wait(10)
        [running] = ops.ingest.source_runs("shop")
        with pytest.raises(Conflict, match=rf"already syncing: run {running.id} \(sync\)"):
            ops.ingest.sync_source("shop", actor="b")
        with pytest.raises(Conflict, match="already syncing"):
            ops.ingest.sync_source("shop", mode="backfill", actor="b")
    finally:
        api.release.set()
        worker.join(10)
    assert finished[0].status == "ok"
    assert len(ops.ingest.source_runs("shop")) == 1


def test_a_run_left_running_by_a_dead_worker_is_marked_failed_by_the_next(
    ops: OpsLoop, clock: Clock
) -> None:
    # What a process killed mid-run leaves behind: a run marked running, its lock gone.
    with ops.ctx.db.transaction() as tx:
        dead = run_store.start_run(
            tx.conn, source="shop", mode="sync", at=clock.now, checkpoint=None
        )
    run = ops.ingest.sync_source("shop", actor="test")
    assert run.status == "ok"
    [_, died] = ops.ingest.source_runs("shop")
    assert (died.id, died.status, died.error) == (dead, "failed", WORKER_DIED)


def test_a_backfill_stores_history_without_deciding_and_keeps_the_live_checkpoint(
    make_ops: OpsFactory, database_url: str, api: JsonApi
) -> None:
    ops = make_ops(database_url, playbooks=[lead_playbook()])
    ops.ingest.add_source(shop_yaml(api), "shop.yaml", secret=TOKEN, actor="test")
    api.items = orders(2)
    ops.ingest.sync_source("shop", actor="test")
    assert len(ops.decide.list_decisions()) == 2
    live = ops.ingest.get_source("shop").checkpoint

    api.items = orders(5)
    run = ops.ingest.sync_source("shop", mode="backfill", actor="test")
    assert (run.mode, run.status, run.events_stored, run.duplicates) == ("backfill", "ok", 3, 2)
    assert len(ops.decide.list_decisions()) == 2, "history: no playbook ran on the backfilled rows"
    assert ops.ingest.get_source("shop").checkpoint == live


def test_the_schedule_syncs_each_due_source_on_its_interval(ops: OpsLoop, clock: Clock) -> None:
    ops.run_jobs()
    [first] = ops.ingest.source_runs("shop")
    assert (first.status, first.events_stored) == ("ok", 8)

    clock.advance(minutes=2)
    ops.run_jobs()
    assert len(ops.ingest.source_runs("shop")) == 1, "not due before its 5 minutes"

    clock.advance(minutes=3)
    ops.run_jobs()
    assert len(ops.ingest.source_runs("shop")) == 2

    ops.ingest.set_source_enabled("shop", False, actor="test")
    clock.advance(minutes=10)
    ops.run_jobs()
    assert len(ops.ingest.source_runs("shop")) == 2, "a disabled source is not synced"


def test_sources_that_cannot_be_synced_say_why(ops: OpsLoop) -> None:
    ops.ingest.add_source("name: hooks\nkind: webhook\n", "hooks.yaml", actor="test")
    with pytest.raises(InvalidInput, match="webhook source: it sends its signals"):
        ops.ingest.sync_source("hooks", actor="test")
    ops.ingest.set_source_enabled("shop", False, actor="test")
    with pytest.raises(Conflict, match="disabled; `opsloop source enable shop`"):
        ops.ingest.sync_source("shop", actor="test")
    # History can be loaded before a source goes live.
    assert ops.ingest.sync_source("shop", mode="backfill", actor="test").status == "ok"


def test_an_item_the_mapping_refuses_is_quarantined_and_counted(ops: OpsLoop, api: JsonApi) -> None:
    api.items[3]["updated_at"] = "not a time"
    run = ops.ingest.sync_source("shop", actor="test")
    assert (run.status, run.rows_in, run.events_stored, run.rejected) == ("ok", 8, 7, 1)
    [held] = ops.ingest.list_quarantine(source="shop")
    assert "occurred_at" in held["reason"]
    assert "(id 4)" in held["reason"]


# --- the command line ------------------------------------------------------------------------


def test_the_cli_syncs_prints_the_counts_and_fails_with_the_error(
    ops: OpsLoop, api: JsonApi, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's data folder: the key that sealed the source's token is there.
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(ops.settings.data_dir))
    monkeypatch.setenv("OPSLOOP_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    api.fail_once = {"page=3"}
    failed = runner.invoke(app, ["source", "sync", "shop"])
    assert failed.exit_code == 1
    assert "failed" in failed.output
    assert "6 rows in, 6 stored" in failed.output
    assert "answered 500" in failed.output

    done = runner.invoke(app, ["source", "sync", "shop"])
    assert done.exit_code == 0, done.output
    assert "ok — 2 rows in, 2 stored, 0 duplicates, 0 rejected, 0 ignored." in done.output

    backfill = runner.invoke(app, ["source", "backfill", "shop", "--json"])
    assert '"mode": "backfill"' in backfill.output
    assert '"duplicates": 8' in backfill.output

    runs = runner.invoke(app, ["source", "runs", "shop", "--limit", "2"])
    assert runs.exit_code == 0
    assert "backfill" in runs.output
    assert "answered 500" not in runs.output, "only the latest two"


# --- killed mid-run ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_sync_killed_mid_run_and_restarted_imports_every_row_exactly_once(
    make_ops: OpsFactory, database_url: str, tmp_path: Path
) -> None:
    with JsonApi(items=orders(9), hold={"page=3"}) as api:
        ops = make_ops(database_url)
        ops.ingest.add_source(shop_yaml(api), "shop.yaml", secret=TOKEN, actor="test")
        env = {
            **os.environ,
            "OPSLOOP_DATABASE_URL": database_url,
            "OPSLOOP_DATA_DIR": str(ops.settings.data_dir),  # where the sealing key is
        }
        command = [sys.executable, "-m", "opsloop", "source", "sync", "shop"]
        log = tmp_path / "child.log"
        with log.open("wb") as out:
            child = subprocess.Popen(command, env=env, stdout=out, stderr=out)
        try:
            # Page 3 is asked for once pages 1 and 2 are stored and checkpointed.
            assert api.held.wait(60), log.read_text()
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
        eventually(lambda: len(stored_keys(ops)) == 6)

        api.hold.clear()
        api.release.set()
        api.requests.clear()
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "9 rows in" not in again.stdout
        assert "3 rows in, 3 stored, 0 duplicates" in again.stdout

    assert [q["page"] for q in api.pages_asked("/page")] == ["3", "4"], "resumed at page 3"
    assert stored_keys(ops) == Counter(str(n) for n in range(1, 10)), "every row exactly once"
    finished, killed = ops.ingest.source_runs("shop")
    assert (finished.status, killed.status, killed.error) == ("ok", "failed", WORKER_DIED)
    assert killed.events_stored == 6


# --- the API -------------------------------------------------------------------------------


def test_the_api_syncs_and_backfills_for_owners_and_shows_runs_to_readers(
    ops: OpsLoop, serve: Serve
) -> None:
    server = serve(ops)
    reader = ops.accounts.create_token("dashboards", "read", actor="test").token
    as_reader = {"Authorization": f"Bearer {reader}"}
    with server.client() as client:
        answer = client.post("/api/sources/shop/sync")
        assert answer.status_code == 200, answer.text
        assert (answer.json()["status"], answer.json()["events_stored"]) == ("ok", 8)

        backfill = client.post("/api/sources/shop/sync", params={"mode": "backfill"}).json()
        assert (backfill["mode"], backfill["duplicates"]) == ("backfill", 8)

        refused = client.post("/api/sources/shop/sync", headers=as_reader)
        assert refused.status_code == 403

        runs = client.get("/api/sources/shop/runs", headers=as_reader, params={"limit": 1})
        assert runs.status_code == 200
        assert [r["id"] for r in runs.json()] == [backfill["id"]]

        assert client.post("/api/sources/nope/sync").status_code == 404
        ops.ingest.add_source("name: hooks\nkind: webhook\n", "hooks.yaml", actor="test")
        assert client.post("/api/sources/hooks/sync").status_code == 422
