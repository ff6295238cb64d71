"""Features: the numbers a decision looks at, computed from the subject's history.

Every feature is computed *as of the triggering event*: only events that occurred at or before
it count, and windows (`within: 7d`) end at its time. So a decision depends on what was known
then, whichever order the work runs in, and a replay over history gives the same answer.
Entity traits are the exception: they are the profile as it stands when the decision is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from opsloop.core.events import Event, HistoryEvent
from opsloop.core.expressions import ExpressionError, normalize
from opsloop.reasoning.compiler import CompiledFeature, CompiledPlaybook


def base_context(event: Event, traits: dict[str, Any]) -> dict[str, Any]:
    """What every expression may read besides features: the triggering event, the subject's
    traits and the subject. Live decisions and training rows both start from this, so a
    model is trained on exactly the inputs it is served."""
    return {
        "event": {
            "type": event.type,
            "source": event.source,
            "payload": event.payload,
            "occurred_at": event.occurred_at.isoformat(),
        },
        "entity": traits,
        "subject": event.subject,
    }


Features = tuple[dict[str, Any], dict[str, str]]
"""A decision's feature values and its feature errors by name (`compute_features`)."""


def compute_features(
    playbook: CompiledPlaybook,
    *,
    at: datetime,
    history: list[HistoryEvent],
    traits: dict[str, Any],
    base: dict[str, Any],
    computed: Mapping[str, Any] | None = None,
) -> Features:
    """Return (feature values, errors by feature name).

    `history` is the subject's events of the types the playbook reads, oldest first. `base` is
    the expression context without features (event, entity, subject); formulas see it too.
    `computed` holds the values of the features reasoning does not compute itself (`forecast`:
    the service fits the model, opsloop/learning/forecast_features.py); one missing is null.
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    relevant = [event for event in history if event.occurred_at <= at]
    for feature in playbook.features:
        try:
            if feature.kind == "forecast":
                value = (computed or {}).get(feature.name)
            elif feature.kind == "formula":
                assert feature.formula is not None  # a formula sees the earlier features too
                value = feature.formula.evaluate({**base, **values})
            else:
                value = _compute(feature, at, relevant, traits)
        except ExpressionError as exc:
            errors[feature.name] = str(exc)
            value = None
        if value is None:
            value = feature.spec.default
        values[feature.name] = value
    return values, errors


def _compute(
    feature: CompiledFeature,
    at: datetime,
    history: list[HistoryEvent],
    traits: dict[str, Any],
) -> Any:
    kind = feature.kind
    if kind == "trait":
        assert feature.path is not None
        return feature.path.read(traits)
    since = at - feature.within if feature.within is not None else None
    matching = [
        event
        for event in history
        if event.type in feature.event_types
        and (since is None or event.occurred_at > since)
        and (feature.where is None or _where(feature, event))
    ]
    if kind == "count":
        return len(matching)
    if kind == "days_since":
        if not matching:
            return None
        return round((at - matching[-1].occurred_at).total_seconds() / 86400, 2)
    path = feature.path
    assert path is not None  # validation: these kinds need `field`
    if kind == "last":
        return path.read(matching[-1].payload) if matching else None
    numbers = [
        value
        for value in (path.read(event.payload) for event in matching)
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    if kind == "sum":
        return normalize(float(sum(numbers)))
    if not numbers:
        return None
    if kind == "avg":
        return normalize(round(sum(numbers) / len(numbers), 6))
    if kind == "min":
        return min(numbers)
    return max(numbers)


def matches(feature: CompiledFeature, event: HistoryEvent) -> bool:
    """Does `event` count for this event feature (its type and `where`; not `within`)?"""
    return event.type in feature.event_types and (feature.where is None or _where(feature, event))


def _where(feature: CompiledFeature, event: HistoryEvent) -> bool:
    """Does `event` pass the feature's `where`? An event the condition cannot be checked on
    (`payload.amount > 100` on an event without an amount) does not match, as with scorecard
    lines; one odd event must not void the feature for the whole history."""
    where = feature.where
    assert where is not None
    context: dict[str, Any] = {"type": event.type, "payload": event.payload, "source": event.source}
    if "occurred_at" in where.roots:  # formatting a time is the costly part; only when read
        context["occurred_at"] = event.occurred_at.isoformat()
    try:
        return where.truth(context)
    except ExpressionError:
        return False
