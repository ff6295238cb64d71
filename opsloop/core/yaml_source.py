"""YAML parsed with the line of every key kept, so validation errors can point at a line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from opsloop.core.errors import PlaybookInvalid, PlaybookProblem

Path = tuple[str | int, ...]


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
    """Parse `text`; raise PlaybookInvalid with the line on a syntax error or duplicate key."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PlaybookInvalid([PlaybookProblem(file, 1, "", "the file is empty")])
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = f"{exc.problem or exc.context or 'invalid YAML'}".strip()
        raise PlaybookInvalid(
            [PlaybookProblem(file, line, "", f"YAML syntax: {message}")]
        ) from None
    finally:
        loader.dispose()
    document = YamlDocument(file, data)
    problems: list[PlaybookProblem] = []
    _record(node, (), document, problems)
    if problems:
        raise PlaybookInvalid(problems)
    return document


def _record(
    node: yaml.Node, path: Path, document: YamlDocument, problems: list[PlaybookProblem]
) -> None:
    document.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode):
        block = node.style in ("|", ">")  # the text starts on the line after the indicator
        document.content_lines[path] = node.start_mark.line + 1 + int(block)
    elif isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                line = key_node.start_mark.line + 1
                problems.append(
                    PlaybookProblem(document.file, line, dotted(child), "duplicate key")
                )
            seen.add(key)
            document.lines[child] = key_node.start_mark.line + 1
            _record(value_node, child, document, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record(item, (*path, index), document, problems)


def dotted(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else part
    return text
