"""Decision tables: rows of cell tests on named inputs, and a hit policy that turns the rows
that match into one result: points for the score, or the option to choose.

A table reads like the spreadsheet a business already keeps ("mid-size SaaS with a budget:
+30"). Each cell is a zen-engine unary test, the cell language of zen's own decision tables
(`>= 100`, `[10..500]`, `"saas", "retail"`), with YAML-friendly shorthands defined in one place,
`cell_test`. This module holds the model and the checks that need no engine;
`opsloop.reasoning.hit_policies` compiles the cells and applies the hit policies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opsloop.core.yaml_source import Path

HitPolicy = Literal["first", "collect_sum", "priority"]
HIT_POLICIES: tuple[HitPolicy, ...] = ("first", "collect_sum", "priority")

ANY = "-"
"""A cell that matches every value, as in DMN tables."""

INPUT_PATTERN = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
# Text made only of these is a value, not a test: `saas`, `New York`, `mid-market`, `ana@x.co`.
# Everything a test needs (`< > = ! ( ) [ ] " ' $ ,`, a leading digit or sign) is left out.
_PLAIN_TEXT = re.compile(r"[^\W\d][\w .@/&-]*")
_LITERALS = frozenset({"true", "false", "null"})
_SCALARS = (str, int, float, bool, type(None))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableRow(_Model):
    when: dict[str, Any] = Field(default_factory=dict)
    """Input name → cell. Inputs not listed (or `-`) match any value; no cells: every time."""
    points: float | None = None
    choose: str | None = None
    priority: float | None = None
    """With `hit: priority`: the matching row with the highest priority gives the result."""
    label: str | None = None

    @property
    def output(self) -> Literal["points", "choose"] | None:
        if self.points is not None:
            return "points"
        return "choose" if self.choose is not None else None


class DecisionTable(_Model):
    label: str | None = None
    hit: HitPolicy = "first"
    rows: tuple[TableRow, ...] = Field(min_length=1)

    @property
    def chooses(self) -> bool:
        """Does this table choose an option (rather than give points)?"""
        return any(row.output == "choose" for row in self.rows)

    def inputs(self, path: Path, known: set[str]) -> Iterator[tuple[Path, str, frozenset[str]]]:
        """Each well-formed input name, as an expression (a name read) with the names it may
        use, so it is checked like any other expression: unknown names get a suggestion."""
        allowed = frozenset(known)
        for index, row in enumerate(self.rows):
            for name in row.when:
                if INPUT_PATTERN.fullmatch(name):
                    yield (*path, "rows", index, "when", name), name, allowed

    def problems(self) -> Iterator[tuple[Path, str]]:
        kind: Literal["points", "choose"] | None = None
        for index, row in enumerate(self.rows):
            here: Path = ("rows", index)
            if row.points is not None and row.choose is not None:
                yield (*here, "choose"), "a row gives `points` or `choose`, not both"
            elif row.output is None:
                yield here, "a row needs `points` (a number) or `choose` (an option)"
            elif kind is None:
                kind = row.output
            elif row.output != kind:
                yield (
                    (*here, row.output),
                    f"the rows above give {kind}; a table either gives points or chooses an "
                    "option, so put these rows in a second table",
                )
            if self.hit == "priority" and row.priority is None:
                yield here, "every row of a `hit: priority` table needs `priority` (highest wins)"
            if self.hit != "priority" and row.priority is not None:
                yield (*here, "priority"), "`priority` is only used with `hit: priority`"
            for name, cell in row.when.items():
                if not INPUT_PATTERN.fullmatch(name):
                    yield (
                        (*here, "when", name),
                        "an input is a feature name or a dotted path such as entity.industry "
                        "or event.payload.plan",
                    )
                for where, message in cell_problems(cell):
                    yield (*here, "when", name, *where), message
        if self.hit == "collect_sum" and kind == "choose":
            yield (
                ("hit",),
                "collect_sum adds up points; a table that chooses uses first or priority",
            )


def cell_problems(cell: Any) -> Iterator[tuple[Path, str]]:
    if isinstance(cell, list):
        if not cell:
            yield (), f"an empty list matches nothing; write {ANY} to match any value"
        for index, item in enumerate(cell):
            if not isinstance(item, _SCALARS):
                yield (index,), "a list item is text, a number, true, false or null"
            elif isinstance(item, str) and item.strip() in ("", ANY):
                yield (index,), f"`{ANY}` (any value) cannot be one item of a list"
    elif not isinstance(cell, _SCALARS):
        yield (), "a cell is text, a number, true, false, null or a list of those"


def cell_test(cell: Any) -> str | None:
    """The zen unary test a cell stands for, or None when it matches any value.

    - `-`, empty text, or an input left out: any value.
    - a number, `true`, `false`, `null`: equal to it.
    - plain text (starts with a letter; only letters, digits, spaces and `_ - . @ / &`): that
      exact text, so `saas` needs no quotes; `true`, `false` and `null` keep their meaning.
    - a list: any of its items, each read by these rules.
    - any other text: a zen unary test on the input, `$` (`>= 100`, `[10..500]`, `"a", "b"`).
    """
    if isinstance(cell, list):
        return ", ".join(cell_test(item) or "null" for item in cell)
    if cell is None:
        return "null"
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, int | float):
        return repr(cell)
    text = str(cell).strip()
    if text in ("", ANY):
        return None
    if _PLAIN_TEXT.fullmatch(text) and text not in _LITERALS:
        return f'"{text}"'
    return text


def describe_cell(name: str, cell: Any) -> str:
    """`score >= 80`, `industry = saas`, `plan in [pro, team]`: a cell as a reader says it."""
    if isinstance(cell, list):
        return f"{name} in [{', '.join(_written(item) for item in cell)}]"
    text = _written(cell)
    if text[:1] in "<>=!([":
        return f"{name} {text}"
    return f"{name} = {text}"


def _written(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()
