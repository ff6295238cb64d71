"""Text triage for one message: its tone, its category, and whether a person must answer it.

A playbook with a `text:` block reads the message at `event.payload.<field>` and gives its
expressions `sentiment` (VADER, -1 to +1), `upset` (angry or distressed: a very negative tone,
or words such as "lawyer" or "chargeback") and, with `classify:`, the category and its
probability. Holding rules, all fail-safe:

* an upset message waits for a person (`hold_when_upset`, on by default);
* a message that could not be classified (no trained model yet, the LLM failed or is not
  configured) waits for a person, with the reason;
* an option that sends `{{ draft }}` always waits: the AI prepared the reply, a person
  finalizes it.

The LLM parts happen in `opsloop.service.decide.llm_decisions`, outside any transaction; what they found
comes here as a `Classified`, so this module stays free of I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opsloop.core.key_paths import read_path
from opsloop.core.playbooks import TextSpec
from opsloop.reasoning.predictions import PlaybookModels, TextPredictor
from opsloop.reasoning.sentiment import needs_human


@dataclass(frozen=True, slots=True)
class Classified:
    """A category found outside this module (by the LLM), or why there is none."""

    label: str | None
    confidence: float = 0.0
    by: str = "llm"
    reason: str | None = None
    """The model's short reason for a label, or the error that left none."""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextSignals:
    values: dict[str, Any]
    """Names for expressions: sentiment, upset, and the category and its confidence."""
    explanation: dict[str, Any]
    holds: list[dict[str, Any]]
    """Reasons a person must look at this decision, as guardrail entries."""


def message_text(spec: TextSpec, payload: Mapping[str, Any]) -> str | None:
    # `body.text`, `Customer message text` or `payload["Customer message text"]`: read as
    # every path is (core.key_paths), the whole name as one key first.
    value = read_path(payload, spec.field)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def read_message(
    spec: TextSpec,
    payload: Mapping[str, Any],
    *,
    models: PlaybookModels | None = None,
    classified: Classified | None = None,
) -> TextSignals:
    """The signals of the message in `payload`. `models` are the trained text models for
    `using: model` (champion, and challenger computed in shadow); `classified` a category
    found elsewhere: what the LLM said, or a replay's batch prediction (None: not asked)."""
    text = message_text(spec, payload)
    check = needs_human(text or "", threshold=spec.upset_below)
    assert check.sentiment is not None
    values: dict[str, Any] = {
        "sentiment": round(check.sentiment.compound, 4),
        "upset": check.flagged,
    }
    explanation: dict[str, Any] = {
        "field": spec.field,
        "sentiment": values["sentiment"],
        "upset": check.flagged,
        "upset_reasons": check.reasons,
    }
    holds: list[dict[str, Any]] = []
    if text is None:
        explanation["missing"] = f"the event has no text at payload.{spec.field}"
    if check.flagged and spec.hold_when_upset:
        holds.append(
            {"reason": "the message reads as upset: " + "; ".join(check.reasons), "text": True}
        )
    if spec.classify is not None:
        found = _classify(spec, text, models, classified)
        output = spec.classify.output
        values[output] = found.label
        values[f"{output}_confidence"] = round(found.confidence, 4)
        explanation["classify"] = {
            "as": output,
            "by": found.by,
            "label": found.label,
            "confidence": values[f"{output}_confidence"],
            **({"reason": found.reason} if found.reason else {}),
            **found.detail,
        }
        if found.label is None:
            holds.append(
                {"reason": f"the message could not be classified: {found.reason}", "text": True}
            )
    return TextSignals(values, explanation, holds)


def _classify(
    spec: TextSpec,
    text: str | None,
    models: PlaybookModels | None,
    classified: Classified | None,
) -> Classified:
    assert spec.classify is not None
    if not text:
        return Classified(None, by=spec.classify.using, reason="there is no message text")
    if classified is not None:  # found elsewhere: by the LLM, or a replay's batch
        return classified
    if spec.classify.using == "llm":
        return Classified(None, reason="the language model was not asked")
    if models is None or models.champion is None:
        note = models.note if models is not None and models.note else "no text model is trained yet"
        return Classified(
            None, by="model", reason=f"{note} (import labelled messages, then opsloop train)"
        )
    champion = models.champion
    label, probability = _text(champion.predictor).classify(text)
    detail: dict[str, Any] = {"model": champion.name, "version": champion.version}
    if models.challenger is not None:
        try:
            shadow = _text(models.challenger.predictor).classify(text)
        except Exception as exc:  # shadow only: its failure must not touch the decision
            detail["challenger"] = {"version": models.challenger.version, "error": str(exc)}
        else:
            detail["challenger"] = {
                "version": models.challenger.version,
                "label": shadow[0],
                "confidence": shadow[1],
            }
    return Classified(label, probability, by="model", detail=detail)


def _text(predictor: object) -> TextPredictor:
    assert isinstance(predictor, TextPredictor), "not a text model"
    return predictor


def draft_hold() -> dict[str, Any]:
    return {
        "reason": "the reply is drafted by AI: a person reads and finalizes it before it is sent",
        "text": True,
    }


def describe(explanation: Mapping[str, Any]) -> str:
    """The message's part of a decision, for the one-line why."""
    parts = [f"sentiment {explanation['sentiment']:+.2f}"]
    if explanation.get("upset"):
        parts.insert(0, "upset")
    classify = explanation.get("classify")
    if classify is not None:
        if classify["label"] is None:
            parts.append(f"{classify['as']} unknown")
        else:
            parts.append(f"{classify['as']} {classify['label']} ({classify['confidence']:.0%})")
    return "message: " + ", ".join(parts)
