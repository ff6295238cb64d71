"""The playbook templates that ship with OpsLoop (the repository's `playbooks/`, packaged in
the wheel as `opsloop/builtin_playbooks/`)."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from opsloop.core.errors import NotFound


def builtin_playbooks() -> Traversable:
    """The folder of built-in playbooks, installed or in a source checkout."""
    packaged = resources.files("opsloop") / "builtin_playbooks"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "playbooks"


def builtin_playbook(name: str) -> tuple[str, str]:
    """(YAML text, file name for messages) of the built-in playbook `name`."""
    path = builtin_playbooks() / f"{name}.yaml"
    if not path.is_file():
        raise NotFound(f"no built-in playbook named {name!r}")
    return path.read_text(encoding="utf-8"), str(path)
