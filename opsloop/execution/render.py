"""Turn an option's action specs into concrete requests, rendered once when the action is
created, so the ledger records exactly what will be sent before anything is sent."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from opsloop.core.decisions import Decision
from opsloop.core.expressions import normalize
from opsloop.core.playbooks import (
    EmailAction,
    NotifyAction,
    Option,
    TaskAction,
    UpdateTraitsAction,
    Variant,
    WebhookAction,
)
from opsloop.execution.templates import RenderError, render, render_value


def template_context(
    decision: Decision, option_name: str, option: Option, *, draft: str | None = None
) -> dict[str, Any]:
    inputs = decision.inputs
    features = inputs.get("features", {})
    explanation = decision.explanation
    return {
        **features,
        **_message_values(explanation.get("text")),
        "features": features,
        "subject": decision.subject,
        "entity": inputs.get("entity", {}),
        "event": inputs.get("event", {}),
        "score": normalize(decision.score),
        "points": explanation.get("points"),
        "choice": option_name,
        "option": {"name": option_name, "label": option.label or option_name},
        "why": explanation.get("reasons", decision.why),
        "explanation": decision.why,
        "decision": {
            "id": decision.id,
            "playbook": decision.playbook,
            "version": decision.playbook_version,
        },
        "playbook": decision.playbook,
        "draft": draft,
    }


def _message_values(text: dict[str, Any] | None) -> dict[str, Any]:
    """What a `text:` block gave the decision's expressions, for templates too."""
    if not text:
        return {}
    values = {"sentiment": text.get("sentiment"), "upset": text.get("upset")}
    classify = text.get("classify")
    if classify:
        values[classify["as"]] = classify.get("label")
        values[f"{classify['as']}_confidence"] = classify.get("confidence")
    return values


def plan_actions(
    decision: Decision, option_name: str, option: Option, now: datetime, *, draft: str | None = None
) -> list[dict[str, Any]]:
    """Rows for the `actions` table, one per action of the chosen option, in order.

    An action whose template fails to render (say a filter applied to a missing trait) is
    recorded dead-lettered with the error, so the decision and its other actions still stand
    and the failure is visible where deliveries are watched."""
    context = template_context(decision, option_name, option, draft=draft)
    rows = []
    for position, spec in enumerate(option.actions):
        row: dict[str, Any] = {
            "decision_id": decision.id,
            "position": position,
            "kind": spec.kind,
            "guarded": spec.guarded,
            "status": "pending",
            "attempts": 0,
            "idempotency_key": uuid.uuid4().hex,
            "created_at": now,
            "updated_at": now,
        }
        variant = _variant(decision, option_name, position, spec)
        try:
            if variant is None:
                row["request"] = render_request(spec, context, decision, now)
            else:
                chosen = spec.model_copy(update=variant.fields())
                row["request"] = {
                    **render_request(chosen, context, decision, now),
                    "variant": variant.name,
                }
        except RenderError as exc:
            row["request"] = {"render_error": str(exc)}
            row["status"] = "dead"
            row["last_error"] = f"a template of this action failed: {exc}"
        rows.append(row)
    return rows


def _variant(decision: Decision, option_name: str, position: int, spec: Any) -> Variant | None:
    """The variant of this action the decision chose (service/decide/experiments.py), if any:
    it replaces the action's subject, body or text, rendered as the action itself is."""
    variants = getattr(spec, "variants", ())
    if not variants:
        return None
    for chosen in decision.explanation.get("variants") or ():
        if chosen.get("option") == option_name and chosen.get("action") == position:
            return next((v for v in variants if v.name == chosen.get("variant")), None)
    return None


def render_request(
    spec: Any, context: dict[str, Any], decision: Decision, now: datetime
) -> dict[str, Any]:
    if isinstance(spec, EmailAction):
        return {
            "to": render(spec.to, context).strip(),
            "cc": render(spec.cc, context).strip() if spec.cc else None,
            "reply_to": render(spec.reply_to, context).strip() if spec.reply_to else None,
            "subject": render(spec.subject, context).strip(),
            "body": render(spec.body, context),
            "html": render(spec.html, context, html=True) if spec.html else None,
        }
    if isinstance(spec, WebhookAction):
        data = (
            render_value(spec.body, context)
            if spec.body is not None
            else _summary(decision, context)
        )
        return {
            "url": render(spec.url, context).strip() if spec.url else None,
            "endpoint": spec.endpoint,
            "type": f"opsloop.{spec.kind}" if spec.kind != "webhook" else "opsloop.action",
            "data": data,
        }
    if isinstance(spec, NotifyAction):
        return {
            "channel": spec.channel,
            "url": render(spec.url, context).strip() if spec.url else None,
            "text": render(spec.text, context).strip(),
        }
    if isinstance(spec, UpdateTraitsAction):
        return {"subject": decision.subject, "traits": render_value(spec.traits, context)}
    if isinstance(spec, TaskAction):
        return {
            "title": render(spec.title, context).strip(),
            "notes": render(spec.notes, context).strip() if spec.notes else None,
            "assignee": spec.assignee,
            "due_at": (now + spec.due_in).isoformat() if spec.due_in else None,
        }
    raise TypeError(f"no renderer for action kind {getattr(spec, 'kind', spec)!r}")


def _summary(decision: Decision, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "decision_id": decision.id,
        "playbook": decision.playbook,
        "subject": decision.subject,
        "choice": context["choice"],
        "score": context["score"],
        "why": decision.why,
        "entity": context["entity"],
    }
