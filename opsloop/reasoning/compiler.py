"""Compile a validated playbook into something fast to run: every expression compiled once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from opsloop.core.errors import PlaybookInvalid, PlaybookProblem
from opsloop.core.events import did_you_mean
from opsloop.core.expression_names import root
from opsloop.core.expressions import (
    CompiledExpression,
    ExpressionError,
    compile_expression,
    compile_group,
)
from opsloop.core.key_paths import KeyPath, key_path
from opsloop.core.playbooks import Feature, Guardrail, Playbook, Rule, ScoreLine
from opsloop.core.yaml_source import YamlDocument
from opsloop.reasoning.hit_policies import CompiledTable, compile_table


@dataclass(frozen=True, slots=True)
class CompiledFeature:
    name: str
    spec: Feature
    kind: str
    event_types: frozenset[str]
    within: timedelta | None
    where: CompiledExpression | None
    formula: CompiledExpression | None
    field_path: tuple[str, ...]
    path: KeyPath | None = None
    """How `trait:` (from the entity) or `field:` (from each event's payload) is read: the
    whole name as one key first, then the nested path (`core.key_paths`)."""


@dataclass(frozen=True, slots=True)
class CompiledLine:
    line: ScoreLine
    when: CompiledExpression
    points: CompiledExpression | None  # None: fixed points


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    when: CompiledExpression


@dataclass(frozen=True, slots=True)
class CompiledGuardrail:
    guardrail: Guardrail
    when: CompiledExpression


@dataclass(frozen=True, slots=True)
class CompiledPlaybook:
    playbook: Playbook
    features: tuple[CompiledFeature, ...]
    scorecard: tuple[CompiledLine, ...]
    score: CompiledExpression
    rules: tuple[CompiledRule, ...]
    guardrails: tuple[CompiledGuardrail, ...]
    conditions: CompiledExpression | None
    """All scorecard conditions in one expression, evaluated in one call (None: one by one)."""
    history_types: frozenset[str]
    """Event types the features read from the subject's history."""
    lookback: timedelta | None
    """How far back the features look; None when some feature reads all history."""
    point_tables: tuple[CompiledTable, ...] = ()
    """Decision tables giving points, in file order: run after the scorecard, before `score`."""
    choice_tables: tuple[CompiledTable, ...] = ()
    """Decision tables choosing an option, in file order: tried after `rules`, before
    `otherwise`."""
    drafted: frozenset[str] = frozenset()
    """Options that send `{{ draft }}`: a person always finalizes them."""
    select: CompiledExpression | None = None
    """A scheduled playbook's `trigger.select`: which subjects a run decides about."""

    @property
    def name(self) -> str:
        return self.playbook.name


def compile_playbook(playbook: Playbook, document: YamlDocument | None = None) -> CompiledPlaybook:
    """Compile every expression; raise PlaybookInvalid naming the line of each bad one."""
    compiled: dict[tuple[str | int, ...], CompiledExpression] = {}
    problems: list[PlaybookProblem] = []
    for path, text, allowed in playbook.expressions():
        try:
            expression = compile_expression(text)
        except ExpressionError as exc:
            problems.append(_problem(document, path, f"expression {text!r}: {exc}"))
            continue
        unknown = [name for name in expression.names if root(name) not in allowed]
        if unknown and path[0] == "scorecard" and path[-1] == "points":
            # `points: twenty-five` reads as names; say what points may be instead.
            message = (
                f"points are a number (25, -15) or an expression over the features; "
                f"{text!r} is neither"
            )
            problems.append(_problem(document, path, message))
            continue
        for name in unknown:
            hint = did_you_mean(root(name), allowed) or _order_hint(playbook, path, name)
            word = re.escape(name)
            if "." not in name and re.search(rf"(==|!=)\s*{word}\b|\b{word}\s*(==|!=)", text):
                # A bare word compared where text was meant: `entity.priority == urgent`.
                text_hint = f"for the text {name}, quote it: '{name}'"
                hint = f"{hint} Or, {text_hint}" if hint else f"; {text_hint}"
            problems.append(_problem(document, path, f"unknown name {root(name)!r}{hint}"))
        compiled[path] = expression
    tables: list[CompiledTable] = []
    for name, table in playbook.tables.items():
        compiled_table, cell_problems = compile_table(name, table)
        tables.append(compiled_table)
        problems.extend(_problem(document, path, message) for path, message in cell_problems)
    if problems:
        raise PlaybookInvalid(problems)

    features = tuple(
        CompiledFeature(
            name=name,
            spec=spec,
            kind=spec.kind,
            event_types=frozenset(spec.event_types),
            within=spec.within,
            where=compiled.get(("features", name, "where")),
            formula=compiled.get(("features", name, "formula")),
            field_path=key_path(spec.field).parts if spec.field else (),
            path=_feature_path(spec),
        )
        for name, spec in playbook.features.items()
    )
    event_features = [f for f in features if f.event_types]
    unbounded = any(f.within is None for f in event_features)
    lookback = (
        None
        if unbounded
        else max((f.within for f in event_features if f.within), default=timedelta(0))
    )
    scorecard = tuple(
        CompiledLine(
            line, compiled[("scorecard", i, "when")], compiled.get(("scorecard", i, "points"))
        )
        for i, line in enumerate(playbook.scorecard)
    )
    return CompiledPlaybook(
        playbook=playbook,
        conditions=compile_group([line.when for line in scorecard]),
        features=features,
        scorecard=scorecard,
        score=compiled[("score",)],
        rules=tuple(
            CompiledRule(rule, compiled[("rules", i, "when")])
            for i, rule in enumerate(playbook.rules)
        ),
        guardrails=tuple(
            CompiledGuardrail(g, compiled[("guardrails", i, "when")])
            for i, g in enumerate(playbook.guardrails)
        ),
        history_types=frozenset(t for f in event_features for t in f.event_types),
        lookback=lookback,
        point_tables=tuple(t for t in tables if not t.chooses),
        choice_tables=tuple(t for t in tables if t.chooses),
        drafted=playbook.drafted_options(),
        select=compiled.get(("trigger", "select")),
    )


def _problem(
    document: YamlDocument | None, path: tuple[str | int, ...], message: str
) -> PlaybookProblem:
    if document is not None:
        return document.problem(path, message)
    return PlaybookProblem("<playbook>", None, ".".join(str(p) for p in path), message)


def _order_hint(playbook: Playbook, path: tuple[str | int, ...], name: str) -> str:
    if root(name) in playbook.features:
        return "; features are computed in order, so a formula can only use features above it"
    if playbook.model is not None and root(name) == playbook.model.output:
        return "; the model reads the features, so a feature formula cannot use its output"
    if root(name) in ("score", "points", "choice"):
        return f"; {root(name)!r} is not known yet at this step"
    table = playbook.tables.get(root(name))
    if table is not None and table.chooses:
        return "; a table that chooses an option gives no value to read"
    if table is not None:
        return (
            "; a points table's result is known only after it runs: to later tables, score, "
            "rules and guardrails"
        )
    return ""


def _feature_path(spec: Feature) -> KeyPath | None:
    """The key path a trait or event feature reads (validation has checked it parses)."""
    if spec.trait is not None:
        return key_path(str(spec.trait), "entity")
    return key_path(spec.field) if spec.field else None
