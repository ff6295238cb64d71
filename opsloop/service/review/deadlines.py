"""Review deadlines and digests: nobody forgets what waits for them.

A playbook with `review: {within: 4h, then: ...}` gives each decision that waits for a person a
deadline. A `REVIEW_DEADLINE` job, queued in the transaction that stores the decision, runs
when it passes; if the decision still waits:

* `notify`: it is overdue (audited; the inbox and the next digest say so);
* `escalate`: it is escalated (audited; the owners' digests list it apart);
* `choose <option>`: it acts with that option, as the playbook says to when nobody answers
  (status `auto`, no review: it counts neither as agreement nor as an override; audited as
  `decision.defaulted`). Validation refuses a sensitive or drafted option here.

Every `review_digest_minutes` each reviewer and owner gets one email — never one per decision —
with how many decisions wait, how many are overdue (and, for owners, escalated), the oldest, and
a link into the inbox; `review_digest_channel` gets the same in chat. A digest is claimed per
(recipient, period) before it is sent, so a restart or a second process never sends a period
twice; nothing waiting, nothing sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opsloop.core.decisions import Decision
from opsloop.core.durations import in_words
from opsloop.core.errors import DeliveryError
from opsloop.core.playbooks import Option, ReviewDeadline, fallback_option
from opsloop.runtime.base import Job
from opsloop.service.context import Context
from opsloop.service.deliver.acting import act
from opsloop.service.jobs import REVIEW_DEADLINE
from opsloop.service.review import inbox
from opsloop.store import accounts as account_store
from opsloop.store import audit, review_digests
from opsloop.store import decisions as decision_store
from opsloop.store import inbox as inbox_store
from opsloop.store.database import Tx

log = logging.getLogger(__name__)

REVIEWING_ROLES = ("owner", "reviewer")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def schedule(
    ctx: Context, tx: Tx, waiting: list[tuple[int, ReviewDeadline]], now: datetime
) -> None:
    """Queue the deadline of each decision that now waits for a person."""
    for decision_id, review in waiting:
        ctx.runtime.enqueue(
            tx,
            REVIEW_DEADLINE,
            [({"decision_id": decision_id, "then": review.then.strip()}, None)],
            run_at=now + review.within,
        )


def deadline_jobs(ctx: Context, jobs: list[Job]) -> None:
    for job in jobs:
        passed(ctx, int(job.payload["decision_id"]), str(job.payload["then"]))


def passed(ctx: Context, decision_id: int, then: str) -> str:
    """A decision's review deadline passed; return what was done (`settled` when a person
    had answered already)."""
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        conn = tx.conn
        decision = decision_store.get_decision(conn, decision_id, lock=True)
        if decision is None or decision.status != "pending":
            return "settled"
        waited = in_words(_whole_minutes(now - decision.created_at))
        fallback = fallback_option(then)
        if fallback is None:
            verb = "decision.escalated" if then == "escalate" else "decision.overdue"
            audit.record(conn, now, "deadline", verb, decision_id, {"waited": waited})
            return verb.removeprefix("decision.")
        options = _options(ctx, decision)
        if fallback not in options or not decision_store.settle(
            conn, decision_id, status="auto", final_choice=fallback, at=now
        ):
            return "settled"
        audit.record(
            conn,
            now,
            "deadline",
            "decision.defaulted",
            decision_id,
            {"option": fallback, "waited": waited},
        )
        settled = decision_store.get_decision(conn, decision_id)
        assert settled is not None
        act(ctx, tx, settled, fallback, options[fallback], now)
    return "chose " + fallback


def _options(ctx: Context, decision: Decision) -> dict[str, Option]:
    """The options of the version that made the decision, read as the inbox reads them."""
    with ctx.db.read() as conn:
        return inbox.options_of(ctx, conn, decision)


# --- digests -----------------------------------------------------------------------------------


@dataclass
class Waiting:
    """What waits for people right now, as a digest counts it."""

    total: int = 0
    overdue: int = 0
    escalated: int = 0
    oldest: datetime | None = None
    by_playbook: dict[str, int] = field(default_factory=dict)


def waiting_now(ctx: Context, now: datetime) -> Waiting:
    deadlines = {
        name: playbook.compiled.playbook.review
        for name, playbook in ctx.catalog.active().items()
        if playbook.compiled.playbook.review is not None
    }
    with ctx.db.read() as conn:
        pending = inbox_store.pending_since(conn)
    found = Waiting()
    for name, created in pending:
        found.total += 1
        found.by_playbook[name] = found.by_playbook.get(name, 0) + 1
        found.oldest = created if found.oldest is None else min(found.oldest, created)
        review = deadlines.get(name)
        if review is not None and created + review.within <= now:
            found.overdue += 1
            found.escalated += review.kind == "escalate"
    return found


def overdue_at(ctx: Context, playbook: str, created_at: datetime) -> datetime | None:
    """When a decision of `playbook` made at `created_at` is overdue (None: no deadline)."""
    active = ctx.catalog.active().get(playbook)
    review = active.compiled.playbook.review if active is not None else None
    return None if review is None else created_at + review.within


def send_digests(ctx: Context) -> int:
    """Send this period's digests (once per recipient per period); return how many went."""
    minutes = ctx.settings.review_digest_minutes
    if minutes <= 0:
        return 0
    now = ctx.clock()
    waiting = waiting_now(ctx, now)
    if waiting.total == 0:
        return 0
    period = timedelta(minutes=minutes)
    start = EPOCH + ((now - EPOCH) // period) * period  # the period's identity
    with ctx.db.read() as conn:
        people = [
            user
            for user in account_store.list_users(conn)
            if user["role"] in REVIEWING_ROLES and user["disabled_at"] is None
        ]
    sent = 0
    for user in people:
        owner = user["role"] == "owner"
        text = digest_text(ctx, waiting, now, owner=owner)
        request = {"to": user["email"], "subject": _subject(waiting, owner), "body": text}
        sent += _send(ctx, user["email"], start, waiting, now, request, channel=False)
    name = ctx.settings.review_digest_channel
    if name:
        request = {"channel": name, "text": digest_text(ctx, waiting, now, owner=True)}
        sent += _send(ctx, f"channel:{name}", start, waiting, now, request, channel=True)
    return sent


def _send(
    ctx: Context,
    recipient: str,
    start: datetime,
    waiting: Waiting,
    now: datetime,
    request: dict[str, Any],
    *,
    channel: bool,
) -> int:
    with ctx.db.transaction() as tx:
        digest_id = review_digests.claim(
            tx.conn, recipient, start, waiting.total, waiting.overdue, now
        )
    if digest_id is None:
        return 0  # this period's digest went already
    key = f"digest-{digest_id}"
    try:
        # The service's channels, made (with httpx) when the first message goes out: listing
        # decisions never loads them (docs/performance.md#cli-start-up).
        ctx.channels["notify" if channel else "email"].send(request, idempotency_key=key)
    except DeliveryError as exc:
        # Not retried: the next period's digest says the same, counted afresh.
        log.warning("review digest to %s not sent: %s", recipient, exc)
        with ctx.db.transaction() as tx:
            review_digests.failed(tx.conn, digest_id, str(exc))
        return 0
    return 1


def _subject(waiting: Waiting, owner: bool) -> str:
    words = f"{waiting.total} decision{'' if waiting.total == 1 else 's'} wait for review"
    if waiting.overdue:
        words += f" ({waiting.overdue} overdue)"
    if owner and waiting.escalated:
        words += f", {waiting.escalated} escalated to you"
    return words


def digest_text(ctx: Context, waiting: Waiting, now: datetime, *, owner: bool) -> str:
    base = ctx.settings.link_base
    lines = [_subject(waiting, owner) + "."]
    if waiting.oldest is not None:
        lines.append(f"The oldest has waited {in_words(_whole_minutes(now - waiting.oldest))}.")
    for name, count in sorted(waiting.by_playbook.items()):
        lines.append(f"- {name}: {count} — {base}/inbox?playbook={name}")
    lines.append(f"Open the inbox: {base}/inbox?order=urgent")
    return "\n".join(lines)


def _whole_minutes(delta: timedelta) -> timedelta:
    return timedelta(minutes=max(1, int(delta.total_seconds() // 60)))
