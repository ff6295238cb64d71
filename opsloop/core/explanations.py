"""What a decision's explanation holds, as readers see it (`GET /api/decisions/{id}`,
`opsloop decisions ID`, the inbox).

Reasoning writes the explanation (opsloop/reasoning/decide.py, with the model's entry from
reasoning/predictions.py, the message's from reasoning/text_triage.py and the tables' from
reasoning/hit_policies.py) and the store keeps it compressed. Every key is optional: a decision
whose playbook failed on its event has only `error` and `why`, and a key appears only when the
playbook uses what it describes (a model, a text block, decision tables). The values the
playbook's own expressions saw (`features`, each `saw`) are free-form.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from opsloop.core.playbooks import Mode


class PlaybookRef(TypedDict):
    name: str
    version: int


class TriggerRef(TypedDict):
    event_id: int
    type: str
    occurred_at: str
    """ISO 8601."""


class ScorecardLine(TypedDict):
    label: str
    when: str
    saw: dict[str, Any]
    """The values the condition read, by name."""
    matched: bool
    points: float
    error: NotRequired[str]
    """Why the condition (or its points) could not be evaluated; the line then gives 0."""


class ScoreEntry(TypedDict, total=False):
    formula: str
    saw: dict[str, Any]
    value: float
    error: str
    """Why the score could not be computed (the decision is then an error)."""


class TableRowEntry(TypedDict):
    index: int
    label: str
    when: dict[str, Any]
    """The row's cells: input → test."""
    saw: dict[str, Any]
    matched: bool
    points: NotRequired[float]
    choose: NotRequired[str]
    priority: NotRequired[float]
    error: NotRequired[str]


class TableEntry(TypedDict):
    """One decision table that ran: every row, what it saw, and the rows used."""

    name: str
    label: str | None
    hit: str
    """The hit policy: `first`, `priority`, `collect_sum` …"""
    gives: Literal["choose", "points"]
    rows: list[TableRowEntry]
    used: list[int]
    result: Any
    """Points (a number) for a points table; an option's name, or None, for a choosing one."""


class RuleEntry(TypedDict):
    index: int
    label: str
    when: str
    saw: dict[str, Any]
    choose: str
    matched: bool
    error: NotRequired[str]


class ChosenBy(TypedDict):
    """What made the choice: a rule (`rule` is its index), a choosing table's row (`table`,
    `row`), or neither (`rule` None: the playbook's `otherwise`)."""

    rule: int | None
    label: str
    when: str | dict[str, Any] | None
    """A rule's condition; a table row's cells."""
    table: NotRequired[str]
    row: NotRequired[int]


class Hold(TypedDict):
    """Why a person must look at the decision: a guarded or sensitive action, a guardrail that
    matched (or could not be checked), or the message (upset, unclassified, a drafted reply)."""

    reason: str
    action: NotRequired[int]
    """The option's action (by position) that is guarded or sensitive."""
    when: NotRequired[str]
    """The guardrail's condition."""
    saw: NotRequired[dict[str, Any]]
    error: NotRequired[str]
    text: NotRequired[bool]
    """Held for the message."""


ModelEntry = TypedDict(
    "ModelEntry",
    {
        "as": str,
        "predicts": str,
        "name": str | None,
        "version": int | None,
        "p": float,
        "used": bool,
        "fallback": bool,
        "note": str,
        "error": str,
        # The features that moved the prediction most: `feature`, `value`, `typical`, `effect`.
        "top_features": list[dict[str, Any]],
        # The challenger computed in shadow: `version` and `p`, or `error`.
        "challenger": dict[str, Any],
        "score_part": float | None,
    },
    total=False,
)
"""The playbook's model: the probability the expressions saw under `as`, and where it came
from (the champion, or the fallback and why). A functional TypedDict: `as` is a keyword."""


class TextEntry(TypedDict, total=False):
    """The message a text-triage playbook read: sentiment, category, the AI-drafted reply."""

    field: str
    """Where the message is in the event's payload."""
    sentiment: float
    upset: bool
    upset_reasons: list[str]
    missing: str
    classify: dict[str, Any]
    """The category: `as`, `by`, `label`, `confidence`, and what the classifier adds."""
    llm_calls: list[dict[str, Any]]
    draft: str
    draft_error: str
    draft_sent: list[str]


class VariantChoice(TypedDict, total=False):
    """The variant a message experiment chose for one action (service/decide/experiments.py)."""

    option: str
    action: int
    variant: str
    how: Literal["thompson", "kept"]
    """`thompson`: the highest posterior draw; `kept`: the winner a person kept."""
    draws: dict[str, float]


class Explanation(TypedDict, total=False):
    playbook: PlaybookRef
    trigger: TriggerRef
    features: dict[str, Any]
    """Feature values by name, as the playbook computed them."""
    feature_errors: dict[str, str]
    model: ModelEntry
    text: TextEntry
    scorecard: list[ScorecardLine]
    tables: list[TableEntry]
    points: float
    score: ScoreEntry
    rules: list[RuleEntry]
    chosen_by: ChosenBy
    choice: str
    drafted_options: list[str]
    variants: list[VariantChoice]
    """Message experiments: the variant chosen for each action with `variants:`."""
    guardrails: list[Hold]
    mode: Mode
    reasons: str
    """The scorecard lines and table rows that gave points, in one line."""
    why: str
    sampled_for_review: bool
    nothing_to_do: bool
    """`recommend` only: the chosen option has no actions, so the decision was settled
    (`logged`) without waiting for review."""
    error: str
    """Why the playbook failed on the event (then only `why` is besides it)."""
