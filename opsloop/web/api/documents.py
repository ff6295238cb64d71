"""Documents and answers with citations (opsloop/service/ask/documents.py): list, add (the body
is the file), read, remove, search, answer. Reading needs `read`; adding and removing `admin`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from opsloop.core.errors import InvalidInput
from opsloop.service import OpsLoop
from opsloop.web.auth import READ, Owner
from opsloop.web.deps import ops
from opsloop.web.ids import DbId
from opsloop.web.responses import Json

router = APIRouter(tags=["documents"])
Service = Annotated[OpsLoop, Depends(ops)]
CollectionQuery = Annotated[str | None, Query(description="Only this collection.", max_length=100)]
QuestionQuery = Annotated[
    str, Query(description="The question or words.", min_length=1, max_length=2000)
]

_FILE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}}
            for kind in ("text/markdown", "text/html", "application/pdf", "text/plain")
        },
        "description": "The document's bytes; `Content-Type` says its kind (else the name's "
        "ending does). Up to 20 MiB.",
    }
}


@router.get(
    "/api/documents",
    summary="The documents, by collection and name",
    dependencies=[Depends(READ)],
)
def list_documents(service: Service, collection: CollectionQuery = None) -> Json:
    return Json(
        {
            "documents": service.ask.list_documents(collection=collection),
            "collections": service.ask.list_collections(),
        }
    )


@router.post(
    "/api/documents",
    summary="Add a document (a new version when the name is in the collection already)",
    status_code=201,
    responses={200: {"description": "The same bytes as the current version: nothing changed."}},
    openapi_extra=_FILE_BODY,
)
async def add_document(
    request: Request,
    service: Service,
    who: Owner,
    name: Annotated[
        str,
        Query(description="The document's name, e.g. returns.md.", min_length=1, max_length=500),
    ],
    collection: Annotated[str, Query(description="Its collection.", max_length=100)] = "default",
) -> Json:
    content = await request.body()
    if not content:
        raise InvalidInput.single("content", "the body is empty: send the file's bytes")
    added = await run_in_threadpool(
        service.ask.add_document,
        name=name,
        content=content,
        media_type=request.headers.get("content-type"),
        collection=collection,
        source="api",
        actor=who.actor,
    )
    return Json(added, status_code=200 if added["status"] == "unchanged" else 201)


@router.get(
    "/api/documents/search",
    summary="The passages that best match the words, best first",
    dependencies=[Depends(READ)],
)
async def search_documents(
    service: Service,
    q: QuestionQuery,
    collection: CollectionQuery = None,
    limit: Annotated[int, Query(ge=1, le=50, description="How many passages.")] = 5,
) -> Json:
    hits = await run_in_threadpool(
        service.ask.search_passages, q, collection=collection, limit=limit
    )
    return Json({"passages": hits})


@router.get(
    "/api/documents/answer",
    summary="An answer whose every sentence cites a retrieved passage, or an abstention",
    dependencies=[Depends(READ)],
)
async def answer_question(
    service: Service, q: QuestionQuery, collection: CollectionQuery = None
) -> Json:
    return Json(await run_in_threadpool(service.ask.answer_question, q, collection=collection))


@router.get(
    "/api/documents/{document_id}",
    summary="One document with its passages",
    dependencies=[Depends(READ)],
)
def get_document(document_id: DbId, service: Service) -> Json:
    return Json(service.ask.get_document(document_id))


@router.delete(
    "/api/documents/{document_id}",
    summary="Remove a document and all its passages",
    status_code=200,
)
def delete_document(document_id: DbId, service: Service, who: Owner) -> Json:
    service.ask.delete_document(document_id, actor=who.actor)
    return Json({"id": document_id, "removed": True})
