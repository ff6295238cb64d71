"""`opsloop playbook templates` and `opsloop playbook install-template`: the built-in
playbooks listed with what they need, one installed in recommend mode, a second install and
an unknown name refused with a message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    for name in ("OPSLOOP_LLM__URL", "OPSLOOP_LLM__MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_templates_are_listed_and_one_is_installed_in_recommend_mode_once() -> None:
    code, output = run("playbook", "templates")
    assert code == 0, output
    for name in ("lead-qualification", "customer-onboarding", "support-triage-rules"):
        assert name in output
    assert "a language model" in output

    code, output = run("playbook", "install-template", "support-triage-rules")
    assert code == 0, output
    assert output.startswith("support-triage-rules: installed as version 1 (mode recommend)")
    assert "Warning: email goes to a mail server at localhost:25" in output

    code, output = run("playbook", "install-template", "support-triage-rules")
    assert code == 1
    assert (
        "Error: a playbook named 'support-triage-rules' is already installed (version 1" in output
    )

    code, output = run("playbook", "templates", "--json")
    assert code == 0, output
    [rules] = [t for t in json.loads(output) if t["name"] == "support-triage-rules"]
    assert rules["installed"] == {"version": 1, "mode": "recommend", "as_shipped": True}


def test_an_unknown_template_or_one_missing_its_language_model_is_refused() -> None:
    code, output = run("playbook", "install-template", "../playbooks/lead-qualification")
    assert code == 1
    assert "Error: no playbook template named '../playbooks/lead-qualification'" in output

    code, output = run("playbook", "install-template", "support-triage")
    assert code == 1
    assert "this playbook needs a language model and none is configured" in output
    code, output = run("playbook", "list")
    assert "No playbooks yet" in output
