"""Decisions for many triggers at once: the steps of `reasoning.decide`, a column at a time.

Features, scorecard, points tables, score, rules, choosing tables and guardrails, in decide's
order. Each step runs its compiled expression (or `reasoning.tables` for a table) once per
distinct combination of the values it reads across the triggers — `visits_7d >= 5` runs once
per distinct visit count, not once per trigger — and spreads the result to every trigger with
those values. The expression language is pure, so this gives what one call per trigger
gives. The steps, their order and the handling of every error are those of `decide`; only the
explanation is left out.

One difference in form, not in result: live evaluates all scorecard conditions in one call and
falls back to one by one when one of them fails. Here they always run one by one, which gives
the same values and errors, and each condition reads only one or two values, so its distinct
inputs are few.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opsloop.core.expressions import CompiledExpression, ExpressionError, normalize
from opsloop.core.playbooks import GUARDED_KINDS, TextSpec
from opsloop.learning.replay_features import INDEXING, STRING
from opsloop.reasoning.compiler import CompiledPlaybook
from opsloop.reasoning.hit_policies import CompiledTable, run_table
from opsloop.reasoning.text_triage import Classified, message_text, read_message

Columns = dict[str, list[Any]]
Scorer = Callable[[list[dict[str, Any]]], list[float]]
"""Probabilities for rows of a `model:` block's features, one call for all triggers."""
TextScorer = Callable[[list[str]], list[tuple[str, float]]]
"""The trained text classifier's (category, probability) for many messages at once."""
"""Values by name (`subject`, `entity`, `event`, each feature, then `points`, `score`,
`choice`), one per trigger."""

Errors = list[list[tuple[str, str]] | None]


@dataclass
class Decided:
    choices: list[str | None]
    scores: list[float | None]
    points: list[float]
    held: list[bool]
    errors: Errors
    """Per trigger, (where, message) of each expression that failed, or None."""


class Failed:
    """An expression's error, kept in place of its value."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


_MISSING = object()


def evaluate(
    expression: CompiledExpression,
    columns: Columns,
    rows: Sequence[int],
    caches: dict[str, dict[Any, Any]],
) -> list[Any]:
    """The expression's value, or a `Failed`, on each of `rows` (indices into the columns)."""
    if INDEXING.search(STRING.sub('""', expression.text)):
        # `payload["a b"]` and closures read values the names do not show: no memo.
        return [_evaluate(expression, columns, i) for i in rows]
    cache = caches.setdefault(expression.text, {})
    keyed = [_key_column(columns, name, rows) for name in expression.names]
    keys: Sequence[Any]
    if not keyed:
        keys = [()] * len(rows)
    elif len(keyed) == 1:
        keys = keyed[0]
    else:
        keys = list(zip(*keyed, strict=True))
    out: list[Any] = []
    for i, key in zip(rows, keys, strict=True):
        try:
            found = cache.get(key, _MISSING)
        except TypeError:  # a list or an object among the inputs: evaluated, not remembered
            out.append(_evaluate(expression, columns, i))
            continue
        if found is _MISSING:
            found = cache[key] = _evaluate(expression, columns, i)
        out.append(found)
    return out


def _evaluate(expression: CompiledExpression, columns: Columns, i: int) -> Any:
    context = {root: columns[root][i] for root in expression.roots if root in columns}
    try:
        return expression.evaluate(context)
    except ExpressionError as exc:
        return Failed(str(exc))


def _key_column(columns: Columns, name: str, rows: Sequence[int]) -> list[Any]:
    root, _, rest = name.partition(".")
    column = columns.get(root)
    if column is None:
        return [None] * len(rows)
    if rest:
        parts = rest.split(".")
        values = [_walk(column[i], parts) for i in rows]
    else:
        values = [column[i] for i in rows]
    if bool in set(map(type, values)):
        # 1, 1.0 and True hash alike; the expression language tells them apart.
        values = [(v,) if v is True or v is False else v for v in values]
    return values


def _walk(value: Any, parts: list[str]) -> Any:
    for depth, part in enumerate(parts):
        if not isinstance(value, dict):
            return ("not an object", depth, value)  # what the expression meets instead
        value = value.get(part)
    return value


def decide_all(
    compiled: CompiledPlaybook,
    columns: Columns,
    n: int,
    caches: dict[str, dict[Any, Any]],
    progress: Callable[[int, int], None] | None = None,
    scorer: Scorer | None = None,
    text_scorer: TextScorer | None = None,
) -> Decided:
    """Features (event features already in `columns`), scorecard, points tables, score, rules,
    choosing tables and guardrails for `n` triggers; `columns` gains each feature, each points
    table's result, `points`, `score` and `choice`."""
    spec = compiled.playbook
    everyone = range(n)
    errors: Errors = [None] * n
    steps = len(compiled.features) + len(compiled.scorecard) + len(compiled.rules) + 2
    done = 0

    def fail(i: int, where: str, message: str) -> None:
        errors[i] = [*(errors[i] or []), (where, message)]

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    for feature in compiled.features:
        if feature.kind == "trait":
            # As reasoning.features: the whole name as one key first, then the nested path.
            assert feature.path is not None
            values = [feature.path.read(entity) for entity in columns["entity"]]
        elif feature.formula is not None:
            values = evaluate(feature.formula, columns, everyone, caches)
            for i, value in enumerate(values):
                if value.__class__ is Failed:
                    fail(i, f"features.{feature.name}.formula", value.message)
                    values[i] = None
        else:
            values = columns[feature.name]
        default = feature.spec.default
        columns[feature.name] = [default if v is None else v for v in values]
        step()

    if (model := spec.model) is not None:
        # As the live decision does: the champion's probability rounded to 4 places, or the
        # fallback while there is none (a backtest never trains or retires a model).
        if scorer is None or n == 0:
            columns[model.output] = [normalize(model.fallback)] * n
        else:
            rows = [{name: columns[name][i] for name in model.features} for i in everyone]
            columns[model.output] = [round(float(p), 4) for p in scorer(rows)]

    text_held = [False] * n
    if spec.text is not None:
        text_held = _read_messages(spec.text, columns, n, text_scorer)

    total: list[float] = [0] * n
    for number, line in enumerate(compiled.scorecard):
        matched = []
        for i, result in enumerate(evaluate(line.when, columns, everyone, caches)):
            if result is True:
                matched.append(i)
            elif result.__class__ is Failed:
                fail(i, f"scorecard[{number}].when", result.message)
        if line.points is None:
            fixed = normalize(float(line.line.points))
            for i in matched:
                total[i] += fixed
        else:
            for i, given in zip(
                matched, evaluate(line.points, columns, matched, caches), strict=True
            ):
                if given.__class__ is Failed:
                    fail(i, f"scorecard[{number}].points", given.message)
                elif not _is_number(given):
                    fail(i, f"scorecard[{number}].points", f"points gave {given!r}, not a number")
                else:
                    total[i] += normalize(float(given))
        step()
    points = [normalize(float(value)) for value in total]
    if compiled.point_tables:
        # As live: each points table adds its result, and its name reads as that result.
        for table in compiled.point_tables:
            results = _table(table, columns, everyone, caches, fail)
            columns[table.name] = results
            points = [p + result for p, result in zip(points, results, strict=True)]
        points = [normalize(float(value)) for value in points]
    columns["points"] = points

    scores: list[float | None] = [None] * n
    alive: list[int] = []
    for i, result in enumerate(evaluate(compiled.score, columns, everyone, caches)):
        if result.__class__ is Failed:
            fail(i, "score", result.message)
        elif not _is_number(score := normalize(result)):
            fail(i, "score", f"gave {score!r}, not a number")
        else:
            scores[i] = score
            alive.append(i)
    columns["score"] = scores
    step()

    choices: list[str | None] = [None] * n
    pending = alive
    for number, rule in enumerate(compiled.rules):
        undecided = []
        for i, result in zip(pending, evaluate(rule.when, columns, pending, caches), strict=True):
            if result is True:
                choices[i] = rule.rule.choose
                continue
            if result.__class__ is Failed:
                fail(i, f"rules[{number}].when", result.message)
            undecided.append(i)
        pending = undecided
        step()
    for table in compiled.choice_tables:  # no rule matched: tables in order, then otherwise
        undecided = []
        for i, result in zip(pending, _table(table, columns, pending, caches, fail), strict=True):
            if result is None:
                undecided.append(i)
            else:
                choices[i] = result
        pending = undecided
    for i in pending:
        choices[i] = spec.otherwise
    columns["choice"] = choices

    guarded = {
        name: any(a.kind in GUARDED_KINDS or a.sensitive for a in option.actions)
        for name, option in spec.options.items()
    }
    held = [False] * n
    for i in alive:
        # As live: guarded actions, the message's holds, and drafted replies wait for a person.
        choice = choices[i]
        held[i] = guarded[choice] or text_held[i] or choice in compiled.drafted  # type: ignore[index]
    for number, guardrail in enumerate(compiled.guardrails):
        for i, result in zip(alive, evaluate(guardrail.when, columns, alive, caches), strict=True):
            if result.__class__ is Failed:
                held[i] = True  # a guardrail that cannot be checked holds: fail safe, as live
                fail(i, f"guardrails[{number}].when", result.message)
            elif result is True:
                held[i] = True
    step()
    return Decided(choices, scores, points, held, errors)


def _read_messages(
    spec: TextSpec, columns: Columns, n: int, text_scorer: TextScorer | None
) -> list[bool]:
    """The `text:` block's names for every trigger, as `reasoning.triage` gives them live;
    returns which triggers the message holds for a person. A trained classifier runs once
    over all messages; the language model is never called in a replay, so an `llm` category
    is unknown (and holds), as it would be with the model unreachable."""
    payloads = [event.get("payload") or {} for event in columns["event"]]
    classified: list[Classified | None] = [None] * n
    classify = spec.classify
    if classify is not None and classify.using == "model" and text_scorer is not None:
        texts = [message_text(spec, payload) for payload in payloads]
        wanted = [i for i, text in enumerate(texts) if text]
        found = text_scorer([texts[i] or "" for i in wanted]) if wanted else []
        for i, (label, probability) in zip(wanted, found, strict=True):
            classified[i] = Classified(label, probability, by="model")
    elif classify is not None and classify.using == "llm":
        reason = "the language model is not called in a backtest"
        classified = [Classified(None, reason=reason)] * n
    held = [False] * n
    for i, payload in enumerate(payloads):
        signals = read_message(spec, payload, classified=classified[i])
        for name, value in signals.values.items():
            columns.setdefault(name, [None] * n)[i] = value
        held[i] = bool(signals.holds)
    return held


def _table(
    table: CompiledTable,
    columns: Columns,
    rows: Sequence[int],
    caches: dict[str, dict[Any, Any]],
    fail: Callable[[int, str, str], None],
) -> list[Any]:
    """A decision table's result on each of `rows`, run by `reasoning.tables` (as live) once
    per distinct combination of the values its cells read; cells that fail are reported."""
    inputs = sorted({cell.input for row in table.rows for cell in row.cells})
    cache = caches.setdefault(f"table {table.name} {table.table.model_dump_json()}", {})
    keyed = [_key_column(columns, name, rows) for name in inputs]
    keys: Sequence[Any] = list(zip(*keyed, strict=True)) if keyed else [()] * len(rows)
    out: list[Any] = []
    for i, key in zip(rows, keys, strict=True):
        try:
            found = cache.get(key, _MISSING)
        except TypeError:  # a list or an object among the inputs: run, not remembered
            found = _run_table(table, columns, i)
        if found is _MISSING:
            found = cache[key] = _run_table(table, columns, i)
        result, errors = found
        for where, message in errors:
            fail(i, where, message)
        out.append(result)
    return out


def _run_table(table: CompiledTable, columns: Columns, i: int) -> tuple[Any, list[tuple[str, str]]]:
    context = {root: columns[root][i] for root in table.roots if root in columns}
    entry, result = run_table(table, context)
    errors = [
        (f"tables.{table.name}.rows[{row['index']}]", row["error"])
        for row in entry["rows"]
        if "error" in row
    ]
    return result, errors


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
