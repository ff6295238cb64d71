"""The difference between two versions of a playbook, line by line (difflib), as rows a
template can show in a unified view (one column, `-` and `+` lines) or side by side."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from itertools import zip_longest
from typing import Literal

CONTEXT = 3
"""Unchanged lines shown around each change, as `diff -u` does."""

Kind = Literal["same", "added", "removed", "changed", "hunk"]


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a diff. Unified: `old`/`new` line numbers and one `text`. Side by side:
    `text` is the old line and `new_text` the new one (None where that side has no line)."""

    kind: Kind
    old: int | None
    new: int | None
    text: str | None
    new_text: str | None = None


@dataclass(frozen=True, slots=True)
class Diff:
    rows: list[Row]
    added: int
    removed: int

    @property
    def same(self) -> bool:
        return not self.rows


def unified(old: str, new: str) -> Diff:
    a, b = old.splitlines(), new.splitlines()
    rows: list[Row] = []
    added = removed = 0
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(CONTEXT):
        first, last = group[0], group[-1]
        rows.append(Row("hunk", None, None, _hunk(first[1], last[2], first[3], last[4])))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows += [
                    Row("same", i + 1, j + 1, a[i])
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                ]
                continue
            rows += [Row("removed", i + 1, None, a[i]) for i in range(i1, i2)]
            rows += [Row("added", None, j + 1, b[j]) for j in range(j1, j2)]
            removed += i2 - i1
            added += j2 - j1
    return Diff(rows, added, removed)


def side_by_side(old: str, new: str) -> Diff:
    a, b = old.splitlines(), new.splitlines()
    rows: list[Row] = []
    added = removed = 0
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(CONTEXT):
        first, last = group[0], group[-1]
        rows.append(Row("hunk", None, None, _hunk(first[1], last[2], first[3], last[4])))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows += [
                    Row("same", i + 1, j + 1, a[i], b[j])
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                ]
                continue
            removed += i2 - i1
            added += j2 - j1
            for i, j in zip_longest(range(i1, i2), range(j1, j2)):
                kind: Kind = (
                    "changed"
                    if i is not None and j is not None
                    else ("removed" if i is not None else "added")
                )
                rows.append(
                    Row(
                        kind,
                        None if i is None else i + 1,
                        None if j is None else j + 1,
                        None if i is None else a[i],
                        None if j is None else b[j],
                    )
                )
    return Diff(rows, added, removed)


def _hunk(i1: int, i2: int, j1: int, j2: int) -> str:
    """`@@ -12,7 +12,8 @@`, as in a unified diff."""
    return f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@"
