"""Acting on a decision that may act (auto, approved or overridden): an option's `actions` go to
the outbox at once; its `steps` start a sequence (opsloop/service/deliver/sequences.py)."""

from __future__ import annotations

from datetime import datetime

from opsloop.core.decisions import Decision
from opsloop.core.playbooks import Option
from opsloop.service.context import Context
from opsloop.service.deliver import sequences
from opsloop.service.deliver.outbox import queue_actions
from opsloop.store.database import Tx


def act(
    ctx: Context,
    tx: Tx,
    decision: Decision,
    option_name: str,
    option: Option,
    now: datetime,
    *,
    draft: str | None = None,
) -> None:
    """In the caller's transaction: queue the option's actions, or start its sequence."""
    if option.steps:
        sequences.start(ctx, tx, decision, option_name, option, now)
    else:
        queue_actions(ctx, tx, decision, option_name, option, now, draft=draft)
