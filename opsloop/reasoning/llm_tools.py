"""Function calling: what a model asks for when it is offered tools, and one round of the
conversation as `LanguageModel.plan` returns it (opsloop/reasoning/llm_client.py).

The model only ever *asks* for a tool; the caller decides which tools exist and runs them.
Arguments the model sends are parsed here and never trusted further: a tool checks its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from opsloop.core.llm_calls import LLMCall


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool the model asked for, with its arguments."""

    id: str
    name: str
    arguments: dict[str, Any]
    """Parsed from the model's JSON; `{}` when it sent none, or something that was not an
    object (the tool then answers that its arguments are missing)."""

    def as_message_part(self) -> dict[str, Any]:
        """As the assistant message of the conversation repeats it to the model."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments)},
        }


@dataclass(frozen=True, slots=True)
class ToolTurn:
    """One answer of the model in a conversation with tools: tools to run, or a final text."""

    text: str
    """The model's words; empty while it asks for tools."""
    tool_calls: tuple[ToolCall, ...]
    call: LLMCall


def function_tool(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """One tool in the OpenAI `tools` shape."""
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def tool_calls_of(message: Any) -> tuple[ToolCall, ...]:
    """The tool calls in a chat completion's message (an OpenAI SDK object)."""
    found: list[ToolCall] = []
    for index, part in enumerate(getattr(message, "tool_calls", None) or []):
        function = getattr(part, "function", None)
        name = getattr(function, "name", None)
        if not isinstance(name, str) or not name:
            continue
        found.append(
            ToolCall(
                id=str(getattr(part, "id", None) or f"call_{index}"),
                name=name,
                arguments=_arguments(getattr(function, "arguments", None)),
            )
        )
    return tuple(found)


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
