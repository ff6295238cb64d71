"""Safe, compiled expressions: zen-engine's expression language, never Python `eval`.

zen compiles an expression once and evaluates it against a JSON-like context in about a
microsecond. Its errors arrive as a RuntimeError whose first line is JSON; we turn them into a
short message a playbook author can act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import zen

from opsloop.core.expression_names import referenced_names


class ExpressionError(Exception):
    """An expression failed to compile or to evaluate; the message says why in plain words."""


def _message(exc: BaseException) -> str:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        detail = json.loads(first)
    except ValueError:
        return first
    source = str(detail.get("source", first))
    if "Unsupported type" in source:
        return "a value was null or of the wrong type"
    if source == "Incomplete parser output":
        return "could not parse the expression (check operators, brackets and function names)"
    return source


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    text: str
    names: tuple[str, ...]
    _compiled: Any
    roots: tuple[str, ...] = ()

    def evaluate(self, context: dict[str, Any]) -> Any:
        # zen converts the whole context on every call; hand it only what the expression reads.
        narrow = {root: context[root] for root in self.roots if root in context}
        try:
            return normalize(self._compiled.evaluate(narrow))
        except RuntimeError as exc:
            raise ExpressionError(_message(exc)) from None

    def truth(self, context: dict[str, Any]) -> bool:
        return self.evaluate(context) is True

    def seen(self, context: dict[str, Any]) -> dict[str, Any]:
        """The values of the names this expression reads, for the explanation."""
        if self.roots == self.names:  # plain names (the common case): no paths to follow
            return {name: context.get(name) for name in self.names}
        return {name: lookup(context, name) for name in self.names}


def compile_expression(text: str) -> CompiledExpression:
    problem = zen.validate_expression(text)
    if problem:
        raise ExpressionError(_message(RuntimeError(json.dumps(problem))))
    try:
        compiled = zen.compile_expression(text)
    except RuntimeError as exc:
        raise ExpressionError(_message(exc)) from None
    names = tuple(referenced_names(text))
    roots = tuple(dict.fromkeys(name.split(".", 1)[0] for name in names))
    return CompiledExpression(text, names, compiled, roots)


@dataclass(frozen=True, slots=True)
class CompiledTest:
    """A unary test (a decision table cell): `>= 100`, `[10..500]`, `"saas", "retail"`; the
    value tested is `$`."""

    text: str
    _compiled: Any

    def matches(self, value: Any) -> bool:
        try:
            return self._compiled.evaluate({"$": value}) is True
        except RuntimeError as exc:
            raise ExpressionError(_message(exc)) from None


def compile_test(text: str) -> CompiledTest:
    # Compiling is the check: zen 2.1's validate_unary_expression refuses tests its compiler
    # accepts and runs correctly (`>= 100`, `"a", "b"`).
    try:
        compiled = zen.compile_unary_expression(text)
    except RuntimeError as exc:
        raise ExpressionError(_message(exc)) from None
    names = [name for name in referenced_names(text) if name != "$"]
    if names:
        # A cell sees only its own value; any other name would silently be null.
        raise ExpressionError(f"a cell tests only its own value, not {names[0]!r}")
    return CompiledTest(text, compiled)


def compile_group(expressions: list[CompiledExpression]) -> CompiledExpression | None:
    """One expression computing the list of all their values: one call into zen for a whole
    scorecard. None when they cannot be combined (the caller then evaluates one by one)."""
    if len(expressions) < 2:
        return None
    text = "[" + ", ".join(f"({e.text})" for e in expressions) + "]"
    try:
        return compile_expression(text)
    except ExpressionError:
        return None


def lookup(context: dict[str, Any], dotted: str) -> Any:
    if "." not in dotted:
        return context.get(dotted)
    value: Any = context
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def normalize(value: Any) -> Any:
    """zen returns every number as a float; give whole numbers back as ints for people."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value
