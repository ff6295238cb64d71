"""The operations chat: questions about the business answered from the ledger, citing the
records used, and never acting.

With a language model configured, the model plans with function calling over the read-only
tools (opsloop/service/ask/chat_tools.py): at most `MAX_ROUNDS` rounds of tool calls, then its
answer. Without one (or when the model fails), the router (opsloop/service/ask/chat_router.py)
answers the common questions. Either way the answer cites only records a tool returned for this
question, and every question is logged with who asked, the route, the tools called with their
arguments, the records cited and the model's calls, tokens and cost (`questions` table).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, cast

from opsloop.core.access import Principal
from opsloop.core.errors import InvalidInput
from opsloop.core.llm_calls import LLMCall
from opsloop.reasoning.llm_client import LLMError
from opsloop.service.ask import chat_router, chat_tools
from opsloop.service.ask.chat_tools import Toolbox
from opsloop.service.ask.chat_views import AskedQuestion, ChatAnswer, ChatRecord, Route
from opsloop.service.context import Context
from opsloop.service.decide.llm_setup import is_configured, language_model
from opsloop.store import questions as question_store

log = logging.getLogger(__name__)

MAX_QUESTION = 1000
"""Characters; a question, not a document."""
MAX_ROUNDS = 4
"""Rounds of tool calls the model may make before it must answer."""
MAX_CALLS_PER_ROUND = 6
MAX_CITATIONS = 12
MAX_ANSWER = 8000
"""Characters of a model's answer kept."""

SYSTEM_PROMPT = """\
You answer questions about a small business's operations for {who} ({role}), using only the
tools, which read the business's ledger: decisions, the review inbox, tasks, metrics, customers,
leads, orders and tickets (subjects), events and documents. It is {now} (UTC); the business's
time zone is {zone}.
You never act: you cannot review, approve, send, retry or change anything. When something needs
doing, say where a person does it (the record's link).
Cite every record you use by its ref in square brackets, e.g. [decision:12] or [task:3]; cite
only refs the tools returned. If the tools found nothing, say so; never guess.
Answer in a few short sentences or a short list."""

_REF = re.compile(r"\s?\[([a-z_]+:[^\[\]\s]+)\]")


def ask(ctx: Context, question: str, *, principal: Principal) -> ChatAnswer:
    """Answer `question` as `principal` and log it."""
    question = question.strip()
    if not question:
        raise InvalidInput.single("question", "ask a question")
    if len(question) > MAX_QUESTION:
        raise InvalidInput.single("question", f"keep a question under {MAX_QUESTION} characters")
    box = Toolbox(ctx, principal)
    calls: list[LLMCall | None] = []
    route: Route = "router"
    error: str | None = None
    text: str | None = None
    citations: list[ChatRecord] = []
    if is_configured(ctx):
        try:
            text, citations = _plan(ctx, box, question, calls)
            route = "llm"
        except LLMError as exc:
            error = str(exc)
            log.info("The chat's model failed; the router answers: %s", error)
    if text is None:
        routed = chat_router.answer(box, question)
        text, citations = routed.text, routed.citations
        if error:
            text = "(The language model could not answer, so this is the simple answer.)\n" + text
    made = [call for call in calls if call is not None]
    costs = [call.cost for call in made if call.cost is not None]
    row: dict[str, Any] = {
        "asked_at": ctx.clock(),
        "asked_by": principal.actor,
        "permission": principal.permission,
        "question": question,
        "route": route,
        "answer": text,
        "tools": box.uses,
        "citations": citations,
        "llm_calls": len(calls),
        "prompt_tokens": _total(call.prompt_tokens for call in made),
        "completion_tokens": _total(call.completion_tokens for call in made),
        "cost": sum(costs) if costs else None,
        "error": error,
    }
    with ctx.db.transaction() as tx:
        question_id = question_store.record_question(tx.conn, row)
    log.info(
        "Question %s answered by the %s with %d tools",
        question_id,
        route,
        len(box.uses),
        extra={"action": "ask", "route": route, "asked_by": principal.actor},
    )
    return {
        "id": question_id,
        "question": question,
        "text": text,
        "route": route,
        "citations": citations,
        "tools": box.uses,
        "llm_calls": len(calls),
        "cost": row["cost"],
        "error": error,
    }


def questions(ctx: Context, *, asked_by: str | None = None, limit: int = 20) -> list[AskedQuestion]:
    """The logged questions, newest first; one person's (or token's) when `asked_by` is given."""
    with ctx.db.read() as conn:
        rows = question_store.list_questions(conn, asked_by=asked_by, limit=limit)
    # Rows of the `questions` table: its columns are AskedQuestion's keys.
    return [cast(AskedQuestion, row) for row in rows]


def _total(values: Any) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


# --- with a model ----------------------------------------------------------------------------


def _plan(
    ctx: Context, box: Toolbox, question: str, calls: list[LLMCall | None]
) -> tuple[str, list[ChatRecord]]:
    """Let the model call tools for at most `MAX_ROUNDS` rounds, then answer; `calls` gets
    every call made (None for one that failed: the LLM ledger has its row), so a failure
    half-way still counts."""
    principal = box.principal
    system = SYSTEM_PROMPT.format(
        who=principal.actor,
        role=principal.role or f"API token, scope {principal.permission}",
        now=f"{ctx.clock():%Y-%m-%d %H:%M}",
        zone=ctx.settings.timezone,
    )
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": question},
    ]
    tools = chat_tools.specs()
    text = ""
    with language_model(ctx, needed_by="the operations chat") as llm:
        for round_ in range(MAX_ROUNDS + 1):
            last = round_ == MAX_ROUNDS
            if last:
                messages.append(
                    {
                        "role": "system",
                        "content": "Answer now with what the tools returned; call no more tools.",
                    }
                )
            try:
                turn = llm.plan(messages, tools)
            except LLMError:
                calls.append(None)
                raise
            calls.append(turn.call)
            text = turn.text
            if not turn.tool_calls or last:
                break
            messages.append(
                {
                    "role": "assistant",
                    "content": turn.text or None,
                    "tool_calls": [call.as_message_part() for call in turn.tool_calls],
                }
            )
            for index, call in enumerate(turn.tool_calls):
                if index < MAX_CALLS_PER_ROUND:
                    found = box.run(call.name, call.arguments)
                    reply = {"records": found.records, "facts": found.facts}
                else:
                    reply = {"error": f"at most {MAX_CALLS_PER_ROUND} tools at once"}
                messages.append({"role": "tool", "tool_call_id": call.id, "content": _json(reply)})
    if not text:
        text = "I could not put an answer together; these are the records I looked at."
    return cite(text[:MAX_ANSWER], box.seen)


def cite(text: str, seen: dict[str, ChatRecord]) -> tuple[str, list[ChatRecord]]:
    """The records `text` cites by ref (or by link) among those the tools returned; a ref no
    tool returned is taken out of the text. Citing none, the answer cites what it looked at."""
    cited: dict[str, ChatRecord] = {}

    def keep(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref in seen:
            cited.setdefault(ref, seen[ref])
            return match.group(0)
        log.info("The chat's model cited %s, which no tool returned; dropped", ref)
        return ""

    text = _REF.sub(keep, text).strip()
    for ref, record in seen.items():
        if re.search(re.escape(record["link"]) + r"(?![\w/])", text):
            cited.setdefault(ref, record)
    if not cited:
        cited = dict(list(seen.items())[:MAX_CITATIONS])
    return text, list(cited.values())[:MAX_CITATIONS]
