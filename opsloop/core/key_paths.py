"""Where a playbook reads a value: `trait:`, `field:` and `text.field` name a key path.

A CSV header is stored as it is written, so `opsloop import` turns the column `visits.last.7d`
into the flat key `"visits.last.7d"`, while a JSON body nests `{"visits": {"last": ...}}`. A
path is read one way everywhere (live features, backtests, training, the inbox):

* `visits.last.7d` — the whole text as **one key** first (the CSV column), then the
  **nested path** one key per dot (`visits` → `last` → `7d`);
* `Customer message text` — any text without dots is one key, spaces and all;
* `payload["Customer message text"]`, `["visits.last.7d"]`, `order["line items"].count` —
  a **quoted path**, read exactly as written: quoted keys may hold dots, spaces or anything
  else. A leading root (`payload` for `field:` and `text.field`, `entity` for `trait:`) is
  the value itself and may be left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_NAME = r"[A-Za-z_][\w\-]*"
_QUOTED = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
_SEGMENT = re.compile(rf"\.?({_NAME})|\[\s*({_QUOTED})\s*\]")
_QUOTED_PATH = re.compile(rf"^(?:{_NAME})?(?:\[\s*(?:{_QUOTED})\s*\]|\.{_NAME})*$")


@dataclass(frozen=True, slots=True)
class KeyPath:
    """A key path as written, and how it is read."""

    text: str
    parts: tuple[str, ...]
    """The nested path: one key per part."""
    flat: str | None
    """The whole text as one key, tried before `parts` (None when they are the same, or for
    a quoted path, which is read exactly as written)."""

    def read(self, value: Any) -> Any:
        """The value at this path, or None when it is not there."""
        if self.flat is not None and isinstance(value, Mapping) and self.flat in value:
            return value[self.flat]
        return walk(value, self.parts)


def walk(value: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


@lru_cache(maxsize=1024)
def key_path(text: str, root: str = "payload") -> KeyPath:
    """Parse a path (see the module docstring); `root` is the name a quoted path may start
    with. Raise ValueError for an empty path or a quoted one that does not parse."""
    written = text.strip()
    if not written:
        raise ValueError("is empty")
    if _looks_quoted(written):
        return KeyPath(text, _quoted_parts(written, root), None)
    parts = tuple(written.split("."))
    return KeyPath(text, parts, written if len(parts) > 1 else None)


def read_path(value: Any, text: str, root: str = "payload") -> Any:
    """`key_path(text, root).read(value)`; None when the path is not there or does not parse."""
    try:
        path = key_path(text, root)
    except ValueError:
        return None
    return path.read(value)


def path_problem(text: str, root: str = "payload") -> str | None:
    """Why `text` is not a usable path (for playbook validation), or None."""
    try:
        key_path(text, root)
    except ValueError as exc:
        return str(exc)
    return None


def _looks_quoted(text: str) -> bool:
    """`payload["a b"]`, `["a b"]`, `order["x"].y`: a bracket with a quote in it, at the start
    or after a first name (a column named `score [0-10]` is a plain key)."""
    return bool(re.match(rf"^(?:{_NAME})?\[\s*[\"']", text))


def _quoted_parts(text: str, root: str) -> tuple[str, ...]:
    if not _QUOTED_PATH.match(text):
        raise ValueError(
            f'{text!r} is not a quoted path; write it like {root}["Customer message text"] '
            "(quotes inside the brackets, keys joined by dots or brackets)"
        )
    parts: list[str] = []
    for match in _SEGMENT.finditer(text):
        name, quoted = match.group(1), match.group(2)
        if name is not None:
            parts.append(name)
        else:
            parts.append(_unquote(quoted))
    if len(parts) > 1 and parts[0] == root and not text.startswith("["):
        parts = parts[1:]
    return tuple(parts)


def _unquote(quoted: str) -> str:
    """The key inside quotes; a backslash keeps the next character as it is (`\\"`)."""
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])
