"""The review stage as the edges see it: people's verdicts, the inbox, and the autonomy a playbook
earns. `OpsLoop.review` is one of these, on the service's context; every method is one use case."""

from __future__ import annotations

from opsloop.core.decisions import Decision, ReviewRequest
from opsloop.service.context import Context
from opsloop.service.review import autonomy, verdicts
from opsloop.service.review import inbox as inbox_service
from opsloop.service.review.views import Inbox, InboxItem, ModeChange, ReadinessReport
from opsloop.store.inbox import InboxOrder


class Review:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def verdict(self, decision_id: int, request: ReviewRequest) -> Decision:
        return verdicts.review(self.ctx, decision_id, request)

    def readiness(self, name: str) -> ReadinessReport:
        return autonomy.readiness(self.ctx, name)

    def change_mode(
        self, name: str, mode: str, *, actor: str, reason: str | None = None
    ) -> ModeChange:
        return autonomy.change_mode(self.ctx, name, mode, actor=actor, reason=reason)

    def inbox(
        self, *, playbook: str | None = None, order: InboxOrder = "newest", limit: int = 50
    ) -> Inbox:
        """The decisions waiting for a person, ready to review (opsloop/service/review/inbox.py)."""
        return inbox_service.inbox(self.ctx, playbook=playbook, order=order, limit=limit)

    def inbox_item(self, decision_id: int) -> InboxItem:
        return inbox_service.item(self.ctx, decision_id)

    def count_waiting(self) -> dict[str, int]:
        """How many decisions wait for a person, per playbook."""
        return inbox_service.count(self.ctx)
