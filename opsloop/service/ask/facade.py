"""The ask stage as the edges see it: documents and answers drawn from them, and the
read-only operations chat. `OpsLoop.ask` is one of these, on the service's context; every
method is one use case."""

from __future__ import annotations

from pathlib import Path

from opsloop.core.access import Principal
from opsloop.service.ask import documents
from opsloop.service.ask.chat_views import AskedQuestion, ChatAnswer
from opsloop.service.ask.document_views import (
    Answer,
    DocumentAdded,
    DocumentDetail,
    DocumentSummary,
    PassageHit,
    SyncReport,
)
from opsloop.service.context import Context


class Ask:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # Documents and answers with citations (opsloop/service/ask/documents.py).

    def add_document(
        self,
        *,
        name: str,
        content: bytes,
        media_type: str | None = None,
        collection: str = "default",
        source: str = "upload",
        actor: str,
    ) -> DocumentAdded:
        return documents.add_document(
            self.ctx,
            name=name,
            content=content,
            media_type=media_type,
            collection=collection,
            source=source,
            actor=actor,
        )

    def list_documents(self, *, collection: str | None = None) -> list[DocumentSummary]:
        return documents.list_documents(self.ctx, collection=collection)

    def list_collections(self) -> list[str]:
        return documents.list_collections(self.ctx)

    def get_document(self, document_id: int) -> DocumentDetail:
        return documents.get_document(self.ctx, document_id)

    def delete_document(self, document_id: int, *, actor: str) -> None:
        documents.delete_document(self.ctx, document_id, actor=actor)

    def sync_folder(self, folder: Path, *, collection: str = "default", actor: str) -> SyncReport:
        return documents.sync_folder(self.ctx, folder, collection=collection, actor=actor)

    def sync_documents_folder(self) -> SyncReport | None:
        """Mirror the documents folder (`documents_dir`) into the `folder` collection; None
        when there is no such folder."""
        return documents.sync_documents_folder(self.ctx)

    def search_passages(
        self, query: str, *, collection: str | None = None, limit: int = 5
    ) -> list[PassageHit]:
        return documents.search_passages(self.ctx, query, collection=collection, limit=limit)

    def answer_question(self, question: str, *, collection: str | None = None) -> Answer:
        return documents.answer_question(self.ctx, question, collection=collection)

    # The operations chat (opsloop/service/ask/chat.py).

    def ask(self, question: str, *, principal: Principal) -> ChatAnswer:
        """Answer a question about the business from the ledger as `principal` sees it,
        citing the records used; logged. Never acts."""
        from opsloop.service.ask import chat

        return chat.ask(self.ctx, question, principal=principal)

    def questions(self, *, asked_by: str | None = None, limit: int = 20) -> list[AskedQuestion]:
        """The chat's log, newest first: one person's (or token's) questions with `asked_by`."""
        from opsloop.service.ask import chat

        return chat.questions(self.ctx, asked_by=asked_by, limit=limit)

    def chat_examples(self) -> list[str]:
        """Questions the chat answers even without a language model."""
        from opsloop.service.ask.chat_router import EXAMPLES

        return list(EXAMPLES)

    def chat_uses_model(self) -> bool:
        """Whether the chat plans with a language model (one is configured)."""
        from opsloop.service.decide.llm_setup import is_configured

        return is_configured(self.ctx)
