"""`opsloop audit verify` and `opsloop db ...` as a person uses them: the exit code says whether
the ledger is intact, the first problem is named, the head hash can be noted and checked again
later; the database's sizes, a purge and a vacuum are one command each."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.service import OpsLoop
from opsloop.settings import Settings
from tests.conftest import lead_playbook
from tests.leads import new_lead, settle

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir with two leads decided on (one settled, its email queued)."""
    data = tmp_path / "data"
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(data))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    ops = OpsLoop(Settings(data_dir=data))
    try:
        ops.prepare()
        ops.decide.apply_playbook(lead_playbook(), "lead.yaml", actor="test")
        settle(ops, 1, "nurture")
        new_lead(ops, 2)
    finally:
        ops.close()
    return data


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output.replace("\n", "")


def test_audit_verify_passes_on_an_intact_ledger_and_prints_the_head(data_dir: Path) -> None:
    code, output = run("audit", "verify")

    assert code == 0, output
    assert "The ledger is intact: " in output
    assert "2 decisions and 1 actions checked." in output
    assert "Head: audit row " in output

    code, output = run("audit", "verify", "--json")
    head = json.loads(output)
    assert (code, head["intact"], len(head["head_hash"])) == (0, True, 64)
    noted = f"{head['head_id']}:{head['head_hash']}"
    assert run("audit", "verify", "--expect", noted)[0] == 0


def test_audit_verify_names_the_first_problem_and_exits_with_1(data_dir: Path) -> None:
    conn = sqlite3.connect(data_dir / "opsloop.db")
    conn.execute("DROP TRIGGER audit_no_update")  # as someone with access to the file could
    conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = 2")
    conn.commit()
    conn.close()

    code, output = run("audit", "verify")

    assert code == 1
    assert "The ledger is not intact: audit row 2 was altered (its hash does not match)." in output


def test_audit_verify_refuses_a_malformed_expect(data_dir: Path) -> None:
    code, output = run("audit", "verify", "--expect", "12:abc")

    assert code == 2
    assert "--expect takes ROW:HASH" in output


def test_db_stats_purge_and_vacuum(data_dir: Path) -> None:
    code, output = run("db", "stats", "--json")
    stats = json.loads(output)
    assert code == 0
    sizes = {table["name"]: table for table in stats["tables"]}
    assert sizes["decisions"]["rows"] == 2
    assert stats["auto_vacuum"] == "incremental"
    assert stats["retention"]["retain_failed_jobs_days"] == 30

    code, output = run("db", "stats")
    assert code == 0
    assert "decisions" in output
    assert "retain_events_days" in output
    assert "forever" in output

    code, output = run("db", "purge")
    assert code == 0, output
    assert "events deleted" in output

    code, output = run("db", "vacuum")
    assert code == 0, output
    assert "auto_vacuum incremental" in output
