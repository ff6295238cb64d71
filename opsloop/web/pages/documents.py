"""The Documents pages: the list with the question box, an owner's upload form and the
collection filter (`/documents`), one document with its passages anchored `#p3`
(`/documents/{id}`), and an owner's upload and delete. Answers and searches are the service's
(`ops.ask.answer_question`), the same as `GET /api/documents/answer` and `opsloop docs answer`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from opsloop.core.errors import InvalidInput, NotFound
from opsloop.service import OpsLoop
from opsloop.web.deps import ops
from opsloop.web.ids import page_id
from opsloop.web.pages.admin_common import TIME_HELPERS
from opsloop.web.pages.passage_html import MARKDOWN, answer_lines, passage_html
from opsloop.web.pages.ui import PageOwner, PageReader, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

DOCUMENTS = "/documents"
MAX_FILES = 20


@router.get(DOCUMENTS, summary="The documents, the question box and (owners) the upload form")
async def documents_page(
    request: Request,
    service: Service,
    who: PageReader,
    collection: str | None = None,
    q: str | None = None,
) -> HTMLResponse:
    return await _list(request, service, who.may("admin"), collection or None, q)


@router.post(DOCUMENTS + "/upload", summary="Add uploaded documents (owners)")
async def upload(request: Request, service: Service, who: PageOwner) -> Response:
    form = await request.form()
    try:
        collection = str(form.get("collection") or "default").strip() or "default"
        files = [
            (f.filename or "upload", f.content_type, await f.read())
            for f in form.getlist("file")[:MAX_FILES]
            if isinstance(f, UploadFile) and f.filename
        ]
    finally:
        await form.close()
    if not files:
        errors = ["Choose at least one file to upload."]
        return await _list(request, service, True, None, None, errors=errors, status_code=422)
    added: list[dict[str, Any]] = []
    errors = []
    for name, media_type, content in files:
        try:
            added.append(
                dict(
                    await run_in_threadpool(
                        service.ask.add_document,
                        name=name,
                        content=content,
                        media_type=media_type,
                        collection=collection,
                        source="upload",
                        actor=who.actor,
                    )
                )
            )
        except InvalidInput as exc:
            errors.append(str(exc))
    if errors:
        return await _list(
            request, service, True, None, None, errors=errors, added=added, status_code=422
        )
    query = urlencode({"added": ",".join(str(a["id"]) for a in added)})
    return RedirectResponse(f"{DOCUMENTS}?{query}", status_code=303)


@router.get(DOCUMENTS + "/{document_id}", summary="One document with its passages")
def document_page(
    request: Request, service: Service, who: PageReader, document_id: int
) -> HTMLResponse:
    try:
        found = service.ask.get_document(page_id(document_id, "document"))
    except NotFound as exc:
        return render(
            request,
            "document_missing.html",
            {"message": str(exc)},
            status_code=404,
            active=DOCUMENTS,
        )
    context = {
        "doc": found,
        "can_change": who.may("admin"),
        "passage_html": passage_html,
        **TIME_HELPERS,
    }
    return render(request, "document.html", context, active=DOCUMENTS)


@router.post(DOCUMENTS + "/{document_id}/delete", summary="Remove a document (owners)")
async def delete(request: Request, service: Service, who: PageOwner, document_id: int) -> Response:
    try:
        await run_in_threadpool(
            service.ask.delete_document, page_id(document_id, "document"), actor=who.actor
        )
    except NotFound as exc:
        return render(
            request,
            "document_missing.html",
            {"message": str(exc)},
            status_code=404,
            active=DOCUMENTS,
        )
    return RedirectResponse(f"{DOCUMENTS}?removed={document_id}", status_code=303)


async def _list(
    request: Request,
    service: OpsLoop,
    can_change: bool,
    collection: str | None,
    question: str | None,
    *,
    errors: list[str] | None = None,
    added: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    answer = None
    question_error = None
    if question and question.strip():
        try:
            answer = await run_in_threadpool(
                service.ask.answer_question, question, collection=collection
            )
        except InvalidInput as exc:
            question_error = str(exc)
    just_added = request.query_params.get("added", "")
    documents = await run_in_threadpool(service.ask.list_documents, collection=collection)
    markdown = {d["id"] for d in documents if d["media_type"] == MARKDOWN}
    context = {
        "documents": documents,
        "collections": await run_in_threadpool(service.ask.list_collections),
        "collection": collection,
        "question": question or "",
        "answer": answer,
        "answer_lines": answer_lines(answer, markdown) if answer else [],
        "question_error": question_error,
        "can_change": can_change,
        "errors": errors or [],
        "added": added or [],
        "just_added": {int(n) for n in just_added.split(",") if n.isdigit()},
        "removed": request.query_params.get("removed"),
        **TIME_HELPERS,
    }
    return render(request, "documents.html", context, status_code=status_code, active=DOCUMENTS)
