"""`opsloop report` previews a week's report in the terminal, and refuses a week that is not
one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from tests.conftest import lead_playbook

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def test_report_previews_a_week_and_refuses_a_bad_one(data_dir: Path, tmp_path: Path) -> None:
    playbook = tmp_path / "lead.yaml"
    playbook.write_text(lead_playbook())
    assert runner.invoke(app, ["playbook", "apply", str(playbook)]).exit_code == 0

    result = runner.invoke(app, ["report", "--week", "2026-W47"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OpsLoop weekly report, 2026-W47\n")
    assert "Week 2026-W47: 2026-11-16 to 2026-11-22" in result.output
    assert "Quiet this week: lead-qualification." in result.output
    assert "Human override rate" not in result.output, "a quiet playbook has no numbers"
    assert "No customer answered the satisfaction survey this week." in result.output
    assert "No playbook decided anything this week." in result.output

    result = runner.invoke(app, ["report", "--week", "2026-W47", "--json"])
    shown = json.loads(result.output)
    assert shown["week"] == "2026-W47"
    assert shown["charts"] == ["success-rate", "override-rate", "time-to-action", "csat"]

    result = runner.invoke(app, ["report", "--week", "last week"])
    assert result.exit_code != 0
    assert "not an ISO week such as 2026-W47" in result.output
