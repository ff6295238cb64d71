"""The operations chat page (`/ask`): a question box, each answer with the records it cites as
links to their pages, and this person's recent questions. Asking posts with htmx (`POST /ask`)
and the answer is put on top; without JavaScript the form posts and the page comes back with
it. Asking only reads: the answers link to the pages where a person acts (docs/ask.md)."""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from opsloop.core.access import Principal
from opsloop.core.errors import InvalidInput
from opsloop.service import OpsLoop
from opsloop.web.deps import ops
from opsloop.web.pages.admin_common import TIME_HELPERS, ago, is_htmx, sentence
from opsloop.web.pages.passage_html import MARKDOWN, inline_html
from opsloop.web.pages.ui import PageReader, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

ASK = "/ask"
RECENT = 10
_REF = re.compile(r"\[([a-z_]+:[^\[\]\s]+)\]")
_DOCUMENT_REF = re.compile(r"document:(\d+)#")


@router.get(ASK, summary="The operations chat: ask about the business, answers cite records")
def ask_page(request: Request, service: Service, who: PageReader) -> HTMLResponse:
    return _page(request, service, who)


@router.post(ASK, summary="Ask a question (read-only; logged); the answer with its records")
async def ask(request: Request, service: Service, who: PageReader) -> HTMLResponse:
    form = await request.form()
    question = str(form.get("question") or "")
    try:
        answer = await run_in_threadpool(service.ask.ask, question, principal=who)
    except InvalidInput as exc:
        error = sentence(str(exc))
        if is_htmx(request):
            return render(request, "ask_error.html", {"error": error})
        page = partial(_page, error=error, question=question, status_code=422)
        return await run_in_threadpool(page, request, service, who)
    if is_htmx(request):
        shown = await run_in_threadpool(_shown, service)
        context = {"answer": answer, **shown, **_times(service)}
        return render(request, "ask_answer.html", context)
    return await run_in_threadpool(_page, request, service, who)


def linked(
    text: str, citations: list[Any], markdown: Collection[int] = frozenset()
) -> list[Markup]:
    """The answer's lines, escaped, with each cited `[ref]` a link to the record's page. A line
    whose every `[ref]` is a passage of a Markdown document (its id in `markdown`) quotes that
    passage: its text is rendered as inline Markdown (passage_html.py) instead."""
    links = {c["ref"]: c["link"] for c in citations}

    def link(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref not in links:
            return str(escape(match.group(0)))
        return f'<a href="{escape(links[ref])}" data-ref="{escape(ref)}">[{escape(ref)}]</a>'

    lines = []
    for line in text.splitlines():
        refs = [match.group(1) for match in _REF.finditer(line)]
        quoted = bool(refs) and all(_is_markdown(ref, markdown) for ref in refs)
        shown = inline_html if quoted else escape
        parts, last = [], 0
        for match in _REF.finditer(line):
            parts.append(str(shown(line[last : match.start()])))
            parts.append(link(match))
            last = match.end()
        parts.append(str(shown(line[last:])))
        lines.append(Markup("".join(parts)))
    return lines


def detail(record: Any, markdown: Collection[int] = frozenset()) -> Markup:
    """A cited record's detail: a Markdown passage's rendered inline, any other escaped."""
    if record.get("kind") == "document" and _is_markdown(record["ref"], markdown):
        return inline_html(record["detail"])
    return escape(record["detail"])


def _is_markdown(ref: str, markdown: Collection[int]) -> bool:
    found = _DOCUMENT_REF.match(ref)
    return found is not None and int(found.group(1)) in markdown


def _shown(service: OpsLoop) -> dict[str, Any]:
    """`linked` and `detail` for the templates, knowing which documents are Markdown."""
    markdown = frozenset(
        d["id"] for d in service.ask.list_documents() if d["media_type"] == MARKDOWN
    )
    return {
        "linked": partial(linked, markdown=markdown),
        "detail": partial(detail, markdown=markdown),
    }


def _times(service: OpsLoop) -> dict[str, Any]:
    return {**TIME_HELPERS, "ago": partial(ago, now=service.now())}


def _page(
    request: Request,
    service: OpsLoop,
    who: Principal,
    *,
    error: str | None = None,
    question: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "asked": service.ask.questions(asked_by=who.actor, limit=RECENT),
        "examples": service.ask.chat_examples(),
        "with_model": service.ask.chat_uses_model(),
        "error": error,
        "question": question,
        **_shown(service),
        **_times(service),
    }
    return render(request, "ask.html", context, status_code=status_code, active=ASK)
