"""The deliver stage as the edges see it: the outbox: actions sent, retried, cancelled; tasks; the
mail server's check. `OpsLoop.deliver` is one of these, on the service's context; every method
is one use case."""

from __future__ import annotations

from typing import Any

from opsloop.core.action_views import ActionDetail, ActionRow, TaskRow
from opsloop.service import reading
from opsloop.service.context import Context
from opsloop.service.deliver import outbox, sequences
from opsloop.service.deliver.connections import SmtpCheck, check_smtp
from opsloop.service.deliver.sequences import SequenceView


class Deliver:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def send(self, action_id: int) -> str:
        return outbox.deliver(self.ctx, action_id)

    def retry_action(self, action_id: int, *, actor: str) -> ActionRow:
        return outbox.retry_action(self.ctx, action_id, actor=actor)

    def cancel_action(self, action_id: int, *, actor: str) -> ActionRow:
        """Stop a pending or retrying action for good (audited); Conflict otherwise."""
        return outbox.cancel_action(self.ctx, action_id, actor=actor)

    def list_sequences(
        self,
        *,
        status: str | None = None,
        playbook: str | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[SequenceView]:
        """Sequences, newest first; `status` may be `open` (active or waiting)."""
        return sequences.list_sequences(
            self.ctx, status=status, playbook=playbook, subject=subject, limit=limit
        )

    def sequence_counts(self, playbook: str | None = None) -> dict[str, int]:
        return sequences.sequence_counts(self.ctx, playbook)

    def stop_sequence(self, sequence_id: int, *, who: str, reason: str) -> bool:
        """Stop one open sequence (audited); False when it had ended already."""
        return sequences.stop(self.ctx, sequence_id, who=who, reason=reason)

    def stop_sequences(
        self,
        *,
        who: str,
        reason: str,
        playbook: str | None = None,
        subject: str | None = None,
    ) -> int:
        """Stop every open sequence, or those of one playbook or one subject; return how many."""
        return sequences.stop_all(
            self.ctx, who=who, reason=reason, playbook=playbook, subject=subject
        )

    def count_actions(self) -> dict[str, int]:
        return reading.count_actions(self.ctx)

    def list_actions(self, **filters: Any) -> list[ActionRow]:
        return reading.list_actions(self.ctx, **filters)

    def get_action(self, action_id: int) -> ActionDetail:
        return reading.get_action(self.ctx, action_id)

    def check_smtp(self, *, send_to: str | None = None) -> SmtpCheck:
        """Connect to the SMTP server as configured (EHLO, NOOP); with `send_to`, send a test email."""
        return check_smtp(self.ctx, send_to=send_to)

    def list_tasks(self, **filters: Any) -> list[TaskRow]:
        return reading.list_tasks(self.ctx, **filters)

    def reassign_task(self, task_id: int, assignee: str | None, *, by: str) -> TaskRow:
        """Give an open task to someone else (audited); Conflict for a done one."""
        return reading.reassign_task(self.ctx, task_id, assignee, by=by)

    def complete_task(self, task_id: int, *, by: str) -> TaskRow:
        return reading.complete_task(self.ctx, task_id, by=by)
