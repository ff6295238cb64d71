"""Run one playbook on one triggering event: features → scorecard → score → rules → guardrails,
with points decision tables after the scorecard and choosing ones after the rules.

The result carries an explanation that lists every scorecard line (the condition, the values it
saw, the points it gave), each rule tried and the one that chose, each decision table that ran
(every row, what it saw, whether it matched), and every guardrail that holds the decision for a
person. Nothing here touches storage.
"""

from __future__ import annotations

import hashlib
from typing import Any

from opsloop.core.decisions import DecisionDraft, initial_status
from opsloop.core.events import Event, HistoryEvent, subject_kind
from opsloop.core.expressions import ExpressionError, normalize
from opsloop.core.playbooks import GUARDED_KINDS, Mode
from opsloop.reasoning.compiler import CompiledPlaybook
from opsloop.reasoning.features import Features, base_context, compute_features
from opsloop.reasoning.hit_policies import run_table
from opsloop.reasoning.predictions import PlaybookModels, describe, predict, score_part
from opsloop.reasoning.text_triage import Classified, draft_hold, read_message
from opsloop.reasoning.text_triage import describe as describe_message


def decide(
    playbook: CompiledPlaybook,
    *,
    version: int,
    mode: Mode,
    event: Event,
    history: list[HistoryEvent],
    traits: dict[str, Any],
    models: PlaybookModels | None = None,
    text_models: PlaybookModels | None = None,
    classified: Classified | None = None,
    computed: dict[str, Any] | None = None,
    prepared: Features | None = None,
) -> DecisionDraft:
    """`models`: the playbook's trained models when it declares a `model:` (None: the fallback).
    `text_models`: its trained text classifier (`text.classify.using: model`); `classified`:
    the LLM's category (`using: llm`), asked before deciding by `opsloop.service.decide.llm_decisions`.
    `computed`: the values of `forecast` features, worked out by the service. `prepared`: the
    feature values and errors when the caller worked them out already, from these same inputs
    (a batch priming its model); `computed` is then not needed."""
    spec = playbook.playbook
    base = base_context(event, traits)
    features, feature_errors = prepared or compute_features(
        playbook,
        at=event.occurred_at,
        history=history,
        traits=traits,
        base=base,
        computed=computed,
    )
    context: dict[str, Any] = {**base, **features}
    explanation: dict[str, Any] = {
        "playbook": {"name": spec.name, "version": version},
        "trigger": {
            "event_id": event.id,
            "type": event.type,
            "occurred_at": base["event"]["occurred_at"],
        },
        "features": features,
    }
    if feature_errors:
        explanation["feature_errors"] = feature_errors
    if spec.model is not None:
        # The model reads the features; the scorecard, score, rules and guardrails read it.
        context[spec.model.output], explanation["model"] = predict(spec.model, models, features)
    text_holds: list[dict[str, Any]] = []
    if spec.text is not None:
        signals = read_message(spec.text, event.payload, models=text_models, classified=classified)
        context.update(signals.values)
        explanation["text"] = signals.explanation
        text_holds = signals.holds

    lines, points = _scorecard(playbook, context)
    explanation["scorecard"] = lines
    if playbook.point_tables:
        explanation["tables"], points = _point_tables(playbook, context, points)
    explanation["points"] = points
    context["points"] = points
    try:
        score = normalize(playbook.score.evaluate(context))
        if not isinstance(score, int | float) or isinstance(score, bool):
            raise ExpressionError(f"gave {score!r}, not a number")
    except ExpressionError as exc:
        explanation["score"] = {"formula": playbook.score.text, "error": str(exc)}
        explanation["why"] = f"Could not compute the score ({playbook.score.text}): {exc}"
        return _draft(
            playbook, version, mode, event, None, None, "error", features, traits, explanation
        )
    context["score"] = score
    explanation["score"] = {
        "formula": playbook.score.text,
        "saw": playbook.score.seen(context),
        "value": score,
    }

    choice, rules, chosen_by = _rules(playbook, context)
    if chosen_by["rule"] is None and playbook.choice_tables:
        tried = explanation.setdefault("tables", [])
        choice, chosen_by = _choice_tables(playbook, context, tried, choice, chosen_by)
    explanation["rules"] = rules
    explanation["chosen_by"] = chosen_by
    explanation["choice"] = choice
    context["choice"] = choice

    holds = _guardrails(playbook, choice, context) + text_holds
    if playbook.drafted:
        explanation["drafted_options"] = sorted(playbook.drafted)
    if choice in playbook.drafted:
        holds.append(draft_hold())
    explanation["guardrails"] = holds
    explanation["mode"] = mode
    explanation["reasons"] = _reasons(lines, explanation.get("tables", ()))
    explanation["why"] = _why(playbook, score, choice, chosen_by, explanation["reasons"])
    if spec.model is not None:
        model = explanation["model"]
        model["score_part"] = score_part(playbook, spec.model, context, score)
        explanation["why"] += f"; {describe(model)}"
    if "text" in explanation:
        explanation["why"] += f"; {describe_message(explanation['text'])}"
    option = spec.options.get(choice) if choice is not None else None
    # A do-nothing choice still goes to a person when reviews are what the playbook learns from
    # (`predicts: review:<option>`): "wait" overridden to "call" is the label worth most.
    learns_from_reviews = spec.model is not None and spec.model.review_option is not None
    acts = option is None or not option.does_nothing or learns_from_reviews
    status = initial_status(mode, needs_approval=bool(holds), acts=acts)
    if mode == "recommend" and status == "logged":
        # Nothing for a person to approve: in the ledger, but not in the inbox.
        explanation["nothing_to_do"] = True
    sampled = status == "auto" and sampled_for_review(spec.name, event.id, spec.autonomy.sample)
    if sampled:
        explanation["sampled_for_review"] = True
    return _draft(
        playbook,
        version,
        mode,
        event,
        choice,
        score,
        status,
        features,
        traits,
        explanation,
        sampled=sampled,
    )


def sampled_for_review(playbook: str, event_id: int, share: float) -> bool:
    """Is this `auto` decision one of the share a person still reviews? Decided by a hash of
    the playbook and the event rather than a random draw, so a replay picks the same ones."""
    digest = hashlib.blake2b(f"{playbook}:{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64 < share


def _draft(
    playbook: CompiledPlaybook,
    version: int,
    mode: Mode,
    event: Event,
    choice: str | None,
    score: float | None,
    status: Any,
    features: dict[str, Any],
    traits: dict[str, Any],
    explanation: dict[str, Any],
    *,
    sampled: bool = False,
) -> DecisionDraft:
    holds = explanation.get("guardrails") or []
    return DecisionDraft(
        playbook=playbook.name,
        subject=event.subject,
        event_id=event.id,
        mode=mode,
        choice=choice,
        score=score,
        status=status,
        needs_approval=bool(holds),
        inputs={
            "features": features,
            "entity": traits,
            "event": {"id": event.id, "type": event.type, "payload": event.payload},
            "version": version,
        },
        explanation=explanation,
        sampled=sampled,
    )


def _scorecard(
    playbook: CompiledPlaybook, context: dict[str, Any]
) -> tuple[list[dict[str, Any]], float]:
    lines: list[dict[str, Any]] = []
    total: float = 0
    results: list[Any] | None = None
    if playbook.conditions is not None:
        try:
            results = playbook.conditions.evaluate(context)
        except ExpressionError:
            results = None  # one condition failed: find which, one by one
    for index, compiled in enumerate(playbook.scorecard):
        line = compiled.line
        entry: dict[str, Any] = {
            "label": line.label or line.when,
            "when": line.when,
            "saw": compiled.when.seen(context),
        }
        if results is not None:
            matched = results[index] is True
        else:
            try:
                matched = compiled.when.truth(context)
            except ExpressionError as exc:
                matched = False
                entry["error"] = str(exc)
        given: float = 0
        if matched:
            try:
                given = compiled.points.evaluate(context) if compiled.points else line.points  # type: ignore[assignment]
                if not isinstance(given, int | float) or isinstance(given, bool):
                    raise ExpressionError(f"points gave {given!r}, not a number")
            except ExpressionError as exc:
                entry["error"] = str(exc)
                given = 0
        entry["matched"] = matched
        entry["points"] = normalize(float(given)) if matched else 0
        total += entry["points"]
        lines.append(entry)
    return lines, normalize(float(total))


def _rules(
    playbook: CompiledPlaybook, context: dict[str, Any]
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    tried: list[dict[str, Any]] = []
    for index, compiled in enumerate(playbook.rules):
        rule = compiled.rule
        entry: dict[str, Any] = {
            "index": index,
            "label": rule.label or rule.when,
            "when": rule.when,
            "saw": compiled.when.seen(context),
            "choose": rule.choose,
        }
        try:
            matched = compiled.when.truth(context)
        except ExpressionError as exc:
            matched = False
            entry["error"] = str(exc)
        entry["matched"] = matched
        tried.append(entry)
        if matched:
            return rule.choose, tried, {"rule": index, "label": entry["label"], "when": rule.when}
    otherwise = playbook.playbook.otherwise
    return otherwise, tried, {"rule": None, "label": "otherwise", "when": None}


def _guardrails(
    playbook: CompiledPlaybook, choice: str, context: dict[str, Any]
) -> list[dict[str, Any]]:
    holds: list[dict[str, Any]] = []
    option = playbook.playbook.options[choice]
    for index, action in enumerate(option.actions):
        if action.kind in GUARDED_KINDS:
            holds.append(
                {
                    "action": index,
                    "reason": f"`{action.kind}` actions always need a person's approval",
                }
            )
        elif action.sensitive:
            holds.append(
                {"action": index, "reason": f"the `{action.kind}` action is marked sensitive"}
            )
    for compiled in playbook.guardrails:
        try:
            matched = compiled.when.truth(context)
        except ExpressionError as exc:
            # A guardrail that cannot be checked holds the decision: fail safe, not open.
            holds.append(
                {
                    "when": compiled.guardrail.when,
                    "reason": compiled.guardrail.reason,
                    "error": str(exc),
                }
            )
            continue
        if matched:
            holds.append(
                {
                    "when": compiled.guardrail.when,
                    "reason": compiled.guardrail.reason,
                    "saw": compiled.when.seen(context),
                }
            )
    return holds


def _point_tables(
    playbook: CompiledPlaybook, context: dict[str, Any], points: float
) -> tuple[list[dict[str, Any]], float]:
    """Run the points tables in order: each adds its result to the points, and is a name the
    later tables, the score, rules and guardrails can read."""
    entries: list[dict[str, Any]] = []
    for table in playbook.point_tables:
        entry, result = run_table(table, context)
        entries.append(entry)
        context[table.name] = result
        points += result
    return entries, normalize(float(points))


def _choice_tables(
    playbook: CompiledPlaybook,
    context: dict[str, Any],
    tried: list[dict[str, Any]],
    otherwise: str,
    chosen_by: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """No rule matched: the choosing tables are tried in order; the first with a result
    chooses, else `otherwise` stands."""
    for table in playbook.choice_tables:
        entry, result = run_table(table, context)
        tried.append(entry)
        if result is not None:
            row = entry["rows"][entry["used"][0]]
            by = {"rule": None, "table": table.name, "row": row["index"], "label": row["label"]}
            return result, {**by, "when": row["when"]}
    return otherwise, chosen_by


def _reasons(lines: list[dict[str, Any]], tables: Any = ()) -> str:
    reasons = [
        f"{line['label']} {line['points']:+g}"
        for line in lines
        if line["matched"] and line["points"]
    ]
    points_tables = [table for table in tables if table["gives"] == "points"]
    for table in points_tables:  # the rows that gave points, as scorecard lines do
        rows = [table["rows"][index] for index in table["used"]]
        reasons.extend(f"{row['label']} {row['points']:+g}" for row in rows if row["points"])
    if reasons:
        return "; ".join(reasons)
    if points_tables:
        return "no scorecard line or table row matched"
    return "no scorecard line matched"


def _why(
    playbook: CompiledPlaybook,
    score: float,
    choice: str,
    chosen_by: dict[str, Any],
    because: str,
) -> str:
    option = playbook.playbook.options[choice]
    name = option.label or choice
    rule = (
        chosen_by["label"] if chosen_by["rule"] is not None else "no rule matched, so the default"
    )
    if "table" in chosen_by:
        table = playbook.playbook.tables[chosen_by["table"]]
        rule = f"{table.label or chosen_by['table']}: {chosen_by['label']}"
    return f"{name} — score {score:g} ({rule}): {because}"


def triggers(playbook: CompiledPlaybook, event_type: str, subject: str) -> bool:
    spec = playbook.playbook
    return event_type in spec.trigger.events and subject_kind(subject) == spec.subject
