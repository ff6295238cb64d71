"""Decisions that ask the language model: classify the message, decide, prepare a draft reply.

A playbook whose `text:` block uses the LLM (`classify: {using: llm}` or `draft:`) is decided
in a job rather than in the ingest transaction (`opsloop.service.decide.deciding` queues it in the
same transaction that stores the event, so it cannot be lost). The job:

1. reads the event, its history and traits;
2. asks the LLM for the category, sending the message and only the fields the playbook names;
3. decides, exactly as an inline decision does;
4. when the chosen option sends `{{ draft }}` and the decision waits for a person, asks the
   LLM for a draft reply (with only `draft.fields` as context, plus the passages of the
   business's documents that bear on the message, which the draft cites as [n] for the
   reviewer: `draft_cited` and `draft_sources` beside `draft`, which carries no markers);
5. stores the decision in one transaction, once: a repeated job finds it and stops.

Nothing here fails the event. No LLM configured, an unreachable one, or an answer outside
the labels leaves the category unknown, and the decision waits for a person with the reason;
a failed draft leaves the reviewer to write the reply, with the reason shown.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError

from opsloop.core.decisions import DecisionDraft
from opsloop.core.errors import OpsLoopError
from opsloop.core.llm_calls import LLMCall
from opsloop.core.playbooks import TextSpec
from opsloop.knowledge import answers
from opsloop.knowledge.retrieval import Hit
from opsloop.reasoning.decide import decide
from opsloop.reasoning.llm_client import LanguageModel, LLMError, LLMNotConfigured, select_fields
from opsloop.reasoning.text_triage import Classified, message_text
from opsloop.runtime.base import Job
from opsloop.service.context import Context
from opsloop.service.decide import deciding
from opsloop.service.decide.llm_setup import language_model
from opsloop.service.documents_index import documents
from opsloop.store import decisions as decision_store
from opsloop.store import events as event_store

log = logging.getLogger(__name__)

DOCUMENTS_FIELD = "documents"
DRAFT_PASSAGES = 3
DRAFT_MIN_COVERAGE = 0.2
"""A customer's message says much besides the question; a lower bar than answers' own."""
MAX_QUERY = 2000
CITE_NOTE = (
    'The context\'s "documents" are passages of the business\'s own documents, numbered by "n". '
    "Use them for facts, and after each sentence that uses one put its number in square "
    "brackets, like [2]; the markers are shown to the person and removed before sending."
)


def decide_jobs(ctx: Context, jobs: list[Job]) -> None:
    for job in jobs:
        decide_with_llm(ctx, str(job.payload["playbook"]), int(job.payload["event_id"]))


def decide_with_llm(ctx: Context, playbook_name: str, event_id: int) -> int | None:
    """Decide `event_id` for the playbook; return the decision id (None when the playbook is
    gone or the decision already exists)."""
    active = ctx.catalog.active().get(playbook_name)
    if active is None:
        log.warning(
            "playbook %s is no longer active; event %d not decided", playbook_name, event_id
        )
        return None
    spec = active.compiled.playbook.text
    assert spec is not None
    with ctx.db.read() as conn:
        if decision_store.exists_for(conn, active.id, event_id):
            return None
        event = event_store.get_events(conn, [event_id])[event_id]
        history, traits = deciding.read_inputs(ctx, conn, [(event, active)])
    subject_traits = traits.get(event.subject, {})
    text = message_text(spec, event.payload) or ""
    calls: list[dict[str, Any]] = []
    llm = _open(ctx, playbook_name)
    try:
        classified = _classify(llm, spec, text, event.payload, subject_traits, calls)
        with ctx.db.transaction() as tx:
            models = deciding.models_for(ctx, tx, active)
        draft = decide(
            active.compiled,
            version=active.version,
            mode=active.mode,
            event=event,
            history=history.get(event.subject, []),
            traits=subject_traits,
            models=models.tabular,
            text_models=models.text,
            classified=classified,
            computed=deciding.computed_for(active, event, history, traits),
        )
        if draft.choice in active.compiled.drafted and draft.status == "pending":
            _prepare_draft(llm, spec, text, draft, calls, sources=_sources_for(ctx, text))
    finally:
        if isinstance(llm, LanguageModel):
            llm.close()
    if calls:
        draft.explanation.setdefault("text", {})["llm_calls"] = calls
    try:
        with ctx.db.transaction() as tx:
            if decision_store.exists_for(tx.conn, active.id, event_id):
                return None
            [decision_id] = deciding.record_decisions(
                ctx, tx, [(draft, active)], {event.id: event}, history, ctx.clock()
            )
    except IntegrityError:
        return None  # another worker stored it a moment ago (unique event and playbook)
    return decision_id


def _open(ctx: Context, playbook: str) -> LanguageModel | OpsLoopError:
    try:
        return language_model(ctx, needed_by=f"playbook {playbook}")
    except LLMNotConfigured as exc:
        return exc


def _classify(
    llm: LanguageModel | OpsLoopError,
    spec: TextSpec,
    text: str,
    payload: dict[str, Any],
    traits: dict[str, Any],
    calls: list[dict[str, Any]],
) -> Classified | None:
    classify = spec.classify
    if classify is None or classify.using != "llm" or not text.strip():
        return None
    if isinstance(llm, OpsLoopError):
        return Classified(None, reason=str(llm))
    fields = select_fields(_named(payload, traits), classify.fields)
    try:
        result = llm.classify(
            text, list(classify.labels), fields=fields, instructions=classify.instructions
        )
    except LLMError as exc:
        return Classified(None, reason=f"the language model failed: {exc}")
    calls.append(_booked(result.call))
    detail: dict[str, Any] = {"sent": sorted(fields)}
    if fields.missing:
        detail["missing"] = list(fields.missing)
    return Classified(result.label, result.confidence, reason=result.reason, detail=detail)


def _prepare_draft(
    llm: LanguageModel | OpsLoopError,
    spec: TextSpec,
    text: str,
    draft: DecisionDraft,
    calls: list[dict[str, Any]],
    *,
    sources: list[Hit] | None = None,
) -> None:
    assert spec.draft is not None
    entry = draft.explanation.setdefault("text", {})
    if isinstance(llm, OpsLoopError):
        entry["draft_error"] = str(llm)
        return
    context = {**base_context_of(draft), **draft.inputs.get("features", {})}
    names = list(spec.draft.fields)
    instructions = spec.draft.instructions
    if sources:
        # The business's own documents (not personal data): the passages found for the
        # message, numbered, so the draft can say where each claim comes from.
        context[DOCUMENTS_FIELD] = answers.numbered(sources)
        names.append(DOCUMENTS_FIELD)
        instructions = f"{instructions.strip()}\n\n{CITE_NOTE}" if instructions else CITE_NOTE
    fields = select_fields(context, names)
    try:
        prepared = llm.draft_reply(
            text,
            context_fields=fields,
            tone=spec.draft.tone,
            instructions=instructions,
        )
    except LLMError as exc:
        entry["draft_error"] = f"the language model failed: {exc}"
        return
    calls.append(_booked(prepared.call))
    entry["draft"] = prepared.text
    entry["draft_sent"] = sorted(fields)
    if sources:
        cited_text, cited = answers.cited_markers(prepared.text, len(sources))
        # The reply a person edits and sends carries no markers; the cited text and the
        # passages are shown beside it (the decision page, the inbox).
        entry["draft"] = answers.without_markers(cited_text)
        entry["draft_cited"] = cited_text
        entry["draft_sources"] = [
            {
                "n": number,
                "cited": number in cited,
                "document_id": hit.passage.document_id,
                "document_name": hit.passage.document_name,
                "heading": hit.passage.heading,
                "excerpt": answers.clip_words(hit.passage.text, 40),
                "link": f"/documents/{hit.passage.document_id}#p{hit.passage.ordinal}",
            }
            for number, hit in enumerate(sources, start=1)
        ]


def _sources_for(ctx: Context, text: str) -> list[Hit]:
    """The passages of the business's documents that bear on the message; none when there are
    no documents or none covers enough of it. A failure here never stops the draft."""
    if not text.strip():
        return []
    try:
        hits = documents(ctx.db).search(text[:MAX_QUERY], limit=DRAFT_PASSAGES)
    except Exception:  # the draft goes on without documents
        log.exception("documents could not be searched for a draft")
        return []
    return answers.good_enough(hits, min_coverage=DRAFT_MIN_COVERAGE)


def base_context_of(draft: DecisionDraft) -> dict[str, Any]:
    inputs = draft.inputs
    return {
        "event": inputs.get("event", {}),
        "entity": inputs.get("entity", {}),
        "subject": draft.subject,
    }


def _named(payload: dict[str, Any], traits: dict[str, Any]) -> dict[str, Any]:
    """What `classify.fields` names are read from: `event.payload.*` and `entity.*`."""
    return {"event": {"payload": payload}, "entity": traits}


def _booked(call: LLMCall) -> dict[str, Any]:
    return {
        "purpose": call.purpose,
        "model": call.model,
        "cached": call.cached,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "cost": call.cost,
    }
