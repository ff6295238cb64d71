"""Every `opsloop` command that reads a YAML file refuses the nine-level "billion laughs" bomb
with the file and line, exits 1, and stores nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.yaml_source import ALIASES_REFUSED
from tests.hostile_yaml import bomb, refuse_before_sending_a_bomb

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


@pytest.fixture
def bomb_file(tmp_path: Path) -> Path:
    refuse_before_sending_a_bomb()
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(9))
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["playbook", "validate"],
        ["playbook", "apply"],
        ["backtest"],
        ["contract", "validate"],
        ["contract", "apply"],
        ["source", "add"],
    ],
    ids=" ".join,
)
def test_every_command_that_reads_yaml_refuses_the_bomb_with_file_and_line(
    data_dir: Path, bomb_file: Path, command: list[str]
) -> None:
    result = runner.invoke(app, [*command, str(bomb_file)])
    assert result.exit_code == 1, result.output
    assert f"{bomb_file}:1: {ALIASES_REFUSED}" in result.output.replace("\n", "")

    listed = runner.invoke(app, ["playbook", "list"])
    assert listed.exit_code == 0, listed.output
    assert "No playbooks yet" in listed.output
    sources = runner.invoke(app, ["source", "list", "--json"])
    assert sources.output.strip() == "[]"


@pytest.mark.parametrize(
    "command",
    [
        ["playbook", "validate"],
        ["playbook", "apply"],
        ["backtest"],
        ["contract", "validate"],
        ["contract", "apply"],
        ["source", "add"],
    ],
    ids=" ".join,
)
def test_a_file_that_is_not_utf8_is_named_with_its_line_not_a_traceback(
    data_dir: Path, tmp_path: Path, command: list[str]
) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: café\ndescription: Grüße\n".encode("latin-1"))
    result = runner.invoke(app, [*command, str(latin)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    said = result.output.replace("\n", "")
    assert f"{latin}: line 1: byte 0xe9 is not UTF-8 text; save the file as UTF-8" in said
