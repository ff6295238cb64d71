"""The README's first three commands are the contract with a new user; CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "the README opens with a sh block of commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_opens_with_install_run_and_test() -> None:
    install, run, test = readme_commands()
    assert 'pip install -e ".[dev]"' in install
    assert run == ".venv/bin/opsloop demo"
    assert (ROOT / test).is_file(), f"{test} must exist"


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    test = readme_commands()[2]
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert lines[-1] == test, "the last thing .ci/run does is the README's test command"
