"""What the operations chat returns and logs (opsloop/service/ask/chat.py): an answer, the
records it cites with the page where each lives, the tools it used, and the logged question."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict

RecordKind = Literal[
    "decision", "inbox", "task", "playbook", "metrics", "subject", "event", "document"
]
Route = Literal["router", "llm"]
"""How a question was answered: the small router of common questions, or the language model
planning with the tools."""


class ChatRecord(TypedDict):
    """One record a tool returned, as the answer cites it."""

    kind: RecordKind
    ref: str
    """How the answer names it: `decision:12`, `task:3`, `playbook:support-triage`,
    `subject:order:1042`, `event:77`, `document:4#2`."""
    title: str
    detail: str
    link: str
    """The page where it lives (and where a person acts on it): `/decisions/12`, `/tasks`…"""


class ToolUse(TypedDict):
    """One tool the chat called for a question."""

    name: str
    arguments: dict[str, Any]
    """As given (by the router or the model), free-form."""
    records: list[str]
    """The refs of the records it returned."""
    error: str | None


class ChatAnswer(TypedDict):
    """One question answered (`OpsLoop.ask.ask`, `POST /api/ask`, `/ask`, `opsloop ask`)."""

    id: int
    """The logged question's id."""
    question: str
    text: str
    route: Route
    citations: list[ChatRecord]
    """Only records a tool returned for this question."""
    tools: list[ToolUse]
    llm_calls: int
    cost: float | None
    """The language model's cost for this answer, in the currency of the configured prices;
    None without a model or without prices."""
    error: str | None
    """Why the model was not used although configured (the router answered instead)."""


class AskedQuestion(TypedDict):
    """One logged question (`OpsLoop.ask.questions`): one `questions` row."""

    id: int
    asked_at: datetime
    asked_by: str
    """An email, or `token:NAME`."""
    permission: str
    question: str
    route: Route
    answer: str
    tools: list[ToolUse]
    citations: list[ChatRecord]
    llm_calls: int
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    error: str | None
