"""docs/architecture.md lists every package of `opsloop/` with what it holds and may import;
this keeps the list true as packages come and go."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def packages() -> set[str]:
    """Every folder under opsloop/ that holds Python code."""
    return {
        folder.relative_to(ROOT).as_posix()
        for folder in (ROOT / "opsloop").rglob("*")
        if folder.is_dir() and "__pycache__" not in folder.parts and any(folder.glob("*.py"))
    }


def listed() -> set[str]:
    return set(re.findall(r"^\| `(opsloop/[a-z_/]+)/` \|", DOC.read_text(), re.MULTILINE))


def test_every_package_is_in_the_architecture_page_and_nothing_else() -> None:
    assert packages() - listed() == set(), "add these packages to docs/architecture.md"
    assert listed() - packages() == set(), "docs/architecture.md lists packages that are gone"


def test_every_file_the_page_names_exists() -> None:
    named = set(
        re.findall(
            r"`((?:core|perception|reasoning|execution|learning|store|runtime|service|web|cli|demo)/[a-z_/]+\.py)`",
            DOC.read_text(),
        )
    )
    assert named, "the page names the files a signal travels through"
    missing = sorted(path for path in named if not (ROOT / "opsloop" / path).is_file())
    assert missing == [], f"docs/architecture.md names files that do not exist: {missing}"


def test_a_wrong_way_import_fails_the_import_rules_naming_the_rule(tmp_path: Path) -> None:
    """scripts/test runs `lint-imports` with the contracts of pyproject.toml: on a copy of the
    code where core imports the service, it fails and names the rule that was broken."""
    shutil.copytree(
        ROOT / "opsloop",
        tmp_path / "opsloop",
        ignore=shutil.ignore_patterns("__pycache__", "static", "templates"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    times = tmp_path / "opsloop" / "core" / "times.py"
    times.write_text(times.read_text() + "\nfrom opsloop.service import OpsLoop  # noqa\n")
    lint = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert run.returncode == 1, run.stdout
    assert "core imports nothing of ours BROKEN" in run.stdout
    assert "opsloop.core.times -> opsloop.service" in run.stdout
    assert "move the code that needs this import out of core" in run.stdout.replace("\n", " ")


def test_the_edges_never_reach_the_services_context_or_database() -> None:
    """Web routes and pages, CLI commands and the demo call `OpsLoop` methods: an attribute
    such as `service.ctx` or `ops.db` goes around the façade where import-linter cannot see."""
    reach = re.compile(r"\b(?:ops|service|self\.service|self\.ops)\.(?:ctx|db|runtime)\b")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for edge in ("web", "cli", "demo")
        for path in sorted((ROOT / "opsloop" / edge).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if reach.search(line)
    ]
    assert found == [], "call a method of OpsLoop instead:\n" + "\n".join(found)
