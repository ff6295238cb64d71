"""What a waiting decision would send if a person approved it: each action rendered exactly
as the outbox would record it (recipient, subject, body, webhook JSON), so nobody approves
blind. Nothing is stored: approving renders them again, for real, in its own transaction.

For an option with `steps` every `send` of the sequence is shown, with when it would go
(`at once`, `after 1 day`, `if no login within 2 days`): the sequence's first message and
what follows it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

from opsloop.core.decisions import Decision
from opsloop.core.durations import in_words
from opsloop.core.playbooks import Option, Step
from opsloop.execution.render import plan_actions
from opsloop.service.deliver.channel_checks import unconfigured
from opsloop.settings import Settings


class ActionPreview(TypedDict):
    kind: str
    request: dict[str, Any]
    """What it would send, as the outbox records it (`to`, `subject`, `body`; `url`, `data`;
    `text`; `title` …)."""
    error: str | None
    """A template that does not render: this action would be dead-lettered."""
    guarded: bool
    when: str | None
    """For a sequence's send: when it would go, in words."""
    warning: str | None
    """Why it could not be delivered as things are set up (naming the setting), or None."""


def preview(
    settings: Settings,
    decision: Decision,
    option_name: str,
    option: Option,
    now: datetime,
    *,
    draft: str | None,
) -> list[ActionPreview]:
    if not option.steps:
        whens: list[str | None] = [None] * len(option.actions)
        return _rendered(settings, decision, option_name, option, now, draft, whens)
    sends: list[tuple[Any, str]] = []
    _walk(option.steps, timedelta(0), "", sends)
    single = Option(label=option.label, actions=tuple(action for action, _ in sends))
    whens = [when for _, when in sends]
    return _rendered(settings, decision, option_name, single, now, draft, whens)


def _rendered(
    settings: Settings,
    decision: Decision,
    option_name: str,
    option: Option,
    now: datetime,
    draft: str | None,
    whens: list[str | None],
) -> list[ActionPreview]:
    rows = plan_actions(decision, option_name, option, now, draft=draft)
    return [
        {
            "kind": row["kind"],
            "request": row["request"] if row["status"] != "dead" else {},
            "error": row.get("last_error") if row["status"] == "dead" else None,
            "guarded": bool(row["guarded"]),
            "when": when,
            "warning": unconfigured(settings, spec),
        }
        for row, when, spec in zip(rows, whens, option.actions, strict=True)
    ]


def _walk(steps: tuple[Step, ...], after: timedelta, condition: str, found: list[Any]) -> None:
    """Each send with when it would go: the waits before it, and the branch it is in."""
    for step in steps:
        if step.send is not None:
            when = "at once" if not after else f"after {in_words(after)}"
            found.append((step.send, when + condition))
        elif step.wait is not None:
            after += step.wait
        else:
            assert step.within is not None
            awaited = " or ".join(step.wait_for)
            _walk(step.then, after, f"{condition}, if {awaited} comes", found)
            end = after + step.within
            _walk(step.otherwise, end, f"{condition}, if no {awaited} by then", found)
            after = end
