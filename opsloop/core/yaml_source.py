"""YAML parsed with the line of every key kept, so validation errors can point at a line.

Every YAML text OpsLoop reads (playbooks, sources, contracts, built-in mappings) goes through
`parse_yaml`, which refuses what a hostile file uses to exhaust the server, before any node is
built: anchors and aliases (`&a`, `*a`: nine levels of them make a 300-byte file stand for a
billion nodes), merge keys (`<<`), nesting deeper than `MAX_DEPTH`, more than `MAX_NODES`
values, and control characters. No playbook, source or contract needs any of them.

PyYAML is driven by `opsloop.core.yaml_loader`, imported by the first `parse_yaml`: loading it
costs about 10 ms, which a command that reads no YAML (listing decisions) never pays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from opsloop.core.errors import InvalidInput, PlaybookProblem

Path = tuple[str | int, ...]

MAX_DEPTH = 64
"""Lists and mappings nested deeper than this are refused. Real files nest a dozen levels at
most, and composing, constructing and `_record` each recurse once per level."""

MAX_NODES = 20_000
"""Values (and keys, lists, mappings) one file may hold. The largest file OpsLoop ships holds
about 200; PyYAML reads some 20,000 a second, each kept in memory, so a 1 MiB list of short
items would otherwise cost 15 seconds and 300 MB."""

MERGE_TAG = "tag:yaml.org,2002:merge"

ALIASES_REFUSED = "YAML aliases and anchors are not allowed: write the value out"
MERGE_REFUSED = "YAML merge keys (<<) are not allowed: write the keys out"
DEPTH_REFUSED = f"lists and mappings are nested more than {MAX_DEPTH} levels deep"
NODES_REFUSED = (
    f"the file holds more than {MAX_NODES} values; no playbook, source or contract needs that many"
)


def read_text(path: FilePath) -> str:
    """A YAML file's text, or InvalidInput naming the file and the first byte that is not
    UTF-8 (a file saved as Latin-1 or a binary picked by mistake), never a traceback."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidInput.single(
            str(path),
            f"line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 text; save the file as UTF-8",
        ) from None


@dataclass
class YamlDocument:
    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    content_lines: dict[Path, int] = field(default_factory=dict)
    """For each text value, the line its content starts on: the key's line for `key: text`,
    the next line for a block (`key: |`), so a template's own line numbers map onto the file."""

    def line_of(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor that exists in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def content_line_of(self, path: Path) -> int | None:
        """The line where the text at `path` starts, or `line_of(path)` when it is not text."""
        return self.content_lines.get(tuple(path)) or self.line_of(path)

    def problem(self, path: Path, message: str) -> PlaybookProblem:
        return PlaybookProblem(self.file, self.line_of(path), dotted(path), message)


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse `text`; raise PlaybookInvalid with the line on a syntax error, a duplicate key, an
    anchor, alias or merge key, too deep a nesting, a control character or a value that cannot
    be read (`2024-13-45`)."""
    from opsloop.core.yaml_loader import load  # PyYAML: see the module's notes

    return load(text, file)


def dotted(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else part
    return text
