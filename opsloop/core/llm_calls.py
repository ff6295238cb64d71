"""What the ledger books of each use of the language model: the row type shared by the LLM client
(opsloop/reasoning/llm_client.py), which makes one per call, and the store
(opsloop/store/llm_calls.py), which keeps it; and the totals the store adds up from those rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

Purpose = Literal["classify", "draft", "summarize", "test", "chat", "answer"]


@dataclass(frozen=True, slots=True)
class LLMCall:
    """One use of the model as the ledger books it; a cache hit is a call too."""

    purpose: Purpose
    model: str
    request_hash: str
    cached: bool
    status: Literal["ok", "failed"]
    latency_ms: float
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    """In the currency of the configured prices; None when no price is configured."""
    decision_id: int | None = None


class ModelUsage(TypedDict):
    """One model's use, added up from its calls (`opsloop llm usage`, the settings page)."""

    model: str
    calls: int
    cached: int
    """Calls answered from the response cache."""
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    """In the currency of the configured prices; None when no call had a price."""
