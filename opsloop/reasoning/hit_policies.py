"""Decision tables compiled once per playbook version, and the hit policies that run them.

Every row is tested (also after the first match), so an explanation can say which rows matched
and which one gave the result. Hit policies:

- `first`: the first matching row, in file order;
- `collect_sum`: the sum of the points of every matching row;
- `priority`: the matching row with the highest `priority`, the earlier row on a tie.

A points table gives 0 and a choosing table gives no option when no row matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opsloop.core.decision_tables import (
    DecisionTable,
    TableRow,
    cell_problems,
    cell_test,
    describe_cell,
)
from opsloop.core.expressions import (
    CompiledTest,
    ExpressionError,
    compile_test,
    lookup,
    normalize,
)
from opsloop.core.yaml_source import Path


@dataclass(frozen=True, slots=True)
class CompiledCell:
    input: str
    cell: Any
    """As written in the YAML, for the explanation."""
    test: CompiledTest


@dataclass(frozen=True, slots=True)
class CompiledRow:
    row: TableRow
    label: str
    cells: tuple[CompiledCell, ...]
    """Only the cells that test something: `-` cells match any value and are left out."""


@dataclass(frozen=True, slots=True)
class CompiledTable:
    name: str
    table: DecisionTable
    rows: tuple[CompiledRow, ...]
    chooses: bool
    """Chooses an option (rather than gives points)."""

    @property
    def label(self) -> str:
        return self.table.label or self.name

    @property
    def roots(self) -> frozenset[str]:
        """The names the rows read: `entity` for `entity.plan`."""
        return frozenset(cell.input.split(".", 1)[0] for row in self.rows for cell in row.cells)


def compile_table(name: str, table: DecisionTable) -> tuple[CompiledTable, list[tuple[Path, str]]]:
    """Compile every cell; return the table and the problems (path within the playbook,
    message). The table is usable only when there are no problems."""
    problems: list[tuple[Path, str]] = []
    rows: list[CompiledRow] = []
    for index, row in enumerate(table.rows):
        cells: list[CompiledCell] = []
        for input_name, cell in row.when.items():
            where: Path = ("tables", name, "rows", index, "when", input_name)
            if any(cell_problems(cell)):
                continue  # a shape problem, reported by the playbook's structural checks
            if isinstance(cell, list):
                # Item by item first, so a problem points at the item's line.
                found = list(_list_problems(where, cell))
                if found:
                    problems.extend(found)
                    continue
            text = cell_test(cell)
            if text is None:
                continue
            try:
                cells.append(CompiledCell(input_name, cell, compile_test(text)))
            except ExpressionError as exc:
                problems.append((where, _cell_message(cell, text, exc)))
        rows.append(CompiledRow(row, row.label or _default_label(cells), tuple(cells)))
    return CompiledTable(name, table, tuple(rows), table.chooses), problems


def _list_problems(where: Path, cell: list[Any]) -> Iterator[tuple[Path, str]]:
    for index, item in enumerate(cell):
        text = cell_test(item)
        if text is None:
            continue
        try:
            compile_test(text)
        except ExpressionError as exc:
            yield (*where, index), _cell_message(item, text, exc)


def _cell_message(cell: Any, text: str, exc: ExpressionError) -> str:
    if isinstance(cell, str) and not any(mark in cell for mark in "\"'$<>=![]()"):
        # Text that is neither a test nor plain text (`3rd party`, `10..20`): say how to write
        # what was most likely meant.
        if ".." in cell:
            return (
                f'cell {text!r} is not a test; a range needs brackets, quoted in YAML: "[{cell}]"'
            )
        return f"cell {text!r} is not a test; to match this text, quote it: '\"{cell}\"'"
    return f"cell {text!r}: {exc}"


def _default_label(cells: list[CompiledCell]) -> str:
    if not cells:
        return "always"
    return " and ".join(describe_cell(cell.input, cell.cell) for cell in cells)


def run_table(table: CompiledTable, context: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Test every row; return (the explanation entry, the result): points for a points table,
    an option name or None for a choosing table."""
    entries: list[dict[str, Any]] = []
    matched: list[int] = []
    for index, compiled in enumerate(table.rows):
        entry = _run_row(index, compiled, context)
        entries.append(entry)
        if entry["matched"]:
            matched.append(index)
    used = _hit(table, matched)
    result = _result(table, used)
    explanation = {
        "name": table.name,
        "label": table.label,
        "hit": table.table.hit,
        "gives": "choose" if table.chooses else "points",
        "rows": entries,
        "used": used,
        "result": result,
    }
    return explanation, result


def table_result(table: CompiledTable, context: dict[str, Any]) -> Any:
    """The result alone, as `run_table` gives it, for replays that need no explanation."""
    matched = [index for index, row in enumerate(table.rows) if _matches(row, context)]
    return _result(table, _hit(table, matched))


def _matches(compiled: CompiledRow, context: dict[str, Any]) -> bool:
    try:
        return all(cell.test.matches(lookup(context, cell.input)) for cell in compiled.cells)
    except ExpressionError:
        return False


def _result(table: CompiledTable, used: list[int]) -> Any:
    if table.chooses:
        return table.rows[used[0]].row.choose if used else None
    return normalize(float(sum(table.rows[i].row.points or 0 for i in used)))


def _run_row(index: int, compiled: CompiledRow, context: dict[str, Any]) -> dict[str, Any]:
    row = compiled.row
    saw: dict[str, Any] = {}
    matched = True
    error: str | None = None
    for cell in compiled.cells:
        value = lookup(context, cell.input)
        saw[cell.input] = value
        if not matched:
            continue  # the row has failed; keep reading values for the explanation
        try:
            matched = cell.test.matches(value)
        except ExpressionError as exc:
            # As with scorecard lines: a cell that cannot be tested (`>= 100` on null) does
            # not match, and the explanation says why.
            matched = False
            error = f"{cell.input}: {exc}"
    entry: dict[str, Any] = {
        "index": index,
        "label": compiled.label,
        "when": dict(row.when),
        "saw": saw,
        "matched": matched,
    }
    if row.points is not None:
        entry["points"] = normalize(row.points)
    if row.choose is not None:
        entry["choose"] = row.choose
    if row.priority is not None:
        entry["priority"] = normalize(row.priority)
    if error is not None:
        entry["error"] = error
    return entry


def _hit(table: CompiledTable, matched: list[int]) -> list[int]:
    """The rows whose output makes the result, by the table's hit policy."""
    if not matched:
        return []
    hit = table.table.hit
    if hit == "collect_sum":
        return matched
    if hit == "priority":
        # max() keeps the first of equal keys: ties go to the earlier row.
        return [max(matched, key=lambda i: table.rows[i].row.priority or 0)]
    return matched[:1]
