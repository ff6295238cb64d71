"""PyYAML's safe loader as `parse_yaml` (opsloop/core/yaml_source.py) uses it: the lines of
every key recorded, and anchors, aliases, merge keys, deep nesting, too many values, control
characters and values PyYAML cannot build refused with their line, before any node is built.

A module of its own so that PyYAML loads with the first file read, not with every process.
"""

from __future__ import annotations

from typing import Any

import yaml

from opsloop.core.errors import PlaybookInvalid, PlaybookProblem
from opsloop.core.yaml_source import (
    ALIASES_REFUSED,
    DEPTH_REFUSED,
    MAX_DEPTH,
    MAX_NODES,
    MERGE_REFUSED,
    MERGE_TAG,
    NODES_REFUSED,
    Path,
    YamlDocument,
    dotted,
)


def load(text: str, file: str) -> YamlDocument:
    """`parse_yaml`'s work: the document, or PlaybookInvalid with the line of the problem."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise PlaybookInvalid([_unreadable_character(text, file, exc)]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise PlaybookInvalid([PlaybookProblem(file, 1, "", "the file is empty")])
        # Lines are recorded before constructing, so a refused file costs no construction.
        document = YamlDocument(file, None)
        problems: list[PlaybookProblem] = []
        _record(node, (), document, problems)
        if problems:
            raise PlaybookInvalid(problems)
        document.data = loader.construct_document(node)
    except Refused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise PlaybookInvalid([PlaybookProblem(file, line, "", exc.problem or "")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = f"{exc.problem or exc.context or 'invalid YAML'}".strip()
        raise PlaybookInvalid(
            [PlaybookProblem(file, line, "", f"YAML syntax: {message}")]
        ) from None
    except yaml.YAMLError as exc:  # any other PyYAML error: still the author's, never a crash
        raise PlaybookInvalid([PlaybookProblem(file, None, "", f"YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return document


class Refused(yaml.MarkedYAMLError):
    """Something `parse_yaml` refuses on purpose, at `problem_mark`."""

    def __init__(self, message: str, mark: Any) -> None:
        # `mark` is a yaml.error.Mark; the stubs type event marks as a union with libyaml's.
        super().__init__(problem=message, problem_mark=mark)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors, aliases, merge keys, deep nesting and too many
    values as the events arrive: no alias is ever resolved, so a "billion laughs" file costs
    the few events up to its first anchor."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise Refused(ALIASES_REFUSED, event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise Refused(NODES_REFUSED, event.start_mark)
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise Refused(DEPTH_REFUSED, event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        node: yaml.MappingNode = super().compose_mapping_node(anchor)
        for key, _ in node.value:
            if key.tag == MERGE_TAG:
                raise Refused(MERGE_REFUSED, key.start_mark)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            # PyYAML's own constructors fail this way on `2024-13-45`, `!!bool maybe`, a
            # 5000-digit number: the value is wrong, so say which one and what it should be.
            raise Refused(_unreadable_value(node, exc), node.start_mark) from None
        if isinstance(value, str) and "\x00" in value:
            # `"\0"` in a quoted string: PostgreSQL cannot store a NUL in text.
            raise Refused("a NUL character (\\0) is not allowed in a value", node.start_mark)
        return value


KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "timestamp": "a date or time",
    "binary": "base64 data",
}


def _unreadable_value(node: yaml.Node, exc: Exception) -> str:
    kind = str(node.tag).rsplit(":", 1)[-1]
    wanted = KINDS.get(kind, f"a {kind}")
    if not isinstance(node, yaml.ScalarNode):
        return f"cannot read this value as {wanted}"
    text = str(node.value)
    shown = repr(text if len(text) <= 40 else text[:40] + "…")
    # A ValueError says what is wrong (`month must be in 1..12`); the others are PyYAML's
    # internals and would only confuse.
    reason = f": {str(exc).split(';')[0]}" if isinstance(exc, ValueError) and str(exc) else ""
    return f"cannot read {shown} as {wanted}{reason}"


def _unreadable_character(text: str, file: str, exc: yaml.reader.ReaderError) -> PlaybookProblem:
    position = exc.position if isinstance(exc.position, int) else 0
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    character = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1])
    return PlaybookProblem(
        file,
        line,
        "",
        f"the control character U+{character:04X} (column {column}) is not allowed in YAML; "
        "remove it",
    )


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
