"""The language model, as the rest of OpsLoop uses it: built from settings, booked in the
database, and checked by `test_connection` (the CLI's `opsloop llm test`, the settings page).

    with language_model(ctx, needed_by="playbook support-triage") as llm:
        fields = select_fields(context, playbook_field_names)
        result = llm.classify(text, ["billing", "bug", "other"], fields=fields, decision_id=...)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opsloop.core.llm_calls import ModelUsage
from opsloop.reasoning.llm_client import LanguageModel, LLMError, LLMNotConfigured
from opsloop.service.context import Context
from opsloop.store import llm_calls as llm_store
from opsloop.store.llm_calls import DatabaseLedger


def language_model(ctx: Context, *, needed_by: str = "") -> LanguageModel:
    """The configured model with the database ledger; `close()` it (or use `with`) when done.
    Raises `LLMNotConfigured`, naming the settings to set and `needed_by` (a playbook, a
    command), when no model is configured."""
    return LanguageModel(ctx.settings.llm, DatabaseLedger(ctx.db, ctx.clock), needed_by=needed_by)


def is_configured(ctx: Context) -> bool:
    return bool(ctx.settings.llm.url and ctx.settings.llm.model)


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    ok: bool
    url: str | None
    model: str | None
    """The configured model name."""
    served_model: str | None = None
    """The name the server answered with, e.g. `gpt-4o-mini-2024-07-18`."""
    latency_ms: float | None = None
    error: str | None = None


def test_connection(ctx: Context) -> ConnectionCheck:
    """Send one tiny request (no retries, no cache) and report the model and latency, or what
    is wrong in words a person can act on. Never raises for a model problem."""
    settings = ctx.settings.llm
    started = time.perf_counter()
    try:
        with language_model(ctx, needed_by="the connection test") as llm:
            ping = llm.ping()
    except (LLMError, LLMNotConfigured) as exc:
        return ConnectionCheck(
            ok=False,
            url=settings.url,
            model=settings.model,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            error=str(exc),
        )
    return ConnectionCheck(
        ok=True,
        url=settings.url,
        model=settings.model,
        served_model=ping.served_model,
        latency_ms=ping.latency_ms,
    )


def recent_calls(
    ctx: Context, *, decision_id: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    with ctx.db.read() as conn:
        return llm_store.list_calls(conn, decision_id=decision_id, limit=limit)


def usage(ctx: Context, *, since: datetime | None = None) -> dict[str, ModelUsage]:
    """Per model: calls, cache hits, failures, tokens and cost."""
    with ctx.db.read() as conn:
        return llm_store.usage_totals(conn, since=since)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
