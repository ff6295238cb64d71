"""The inbox: the decisions that wait for a person, with what a reviewer needs to act on each
(the option labels, the options to override with, the AI-drafted reply), and how many wait."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from opsloop.core.decisions import Decision
from opsloop.core.errors import NotFound
from opsloop.core.key_paths import read_path
from opsloop.core.playbooks import Option, parse_playbook
from opsloop.service.context import ActivePlaybook, Context
from opsloop.service.review.previews import ActionPreview, preview
from opsloop.service.review.views import Inbox, InboxItem
from opsloop.settings import Settings
from opsloop.store import decisions as decision_store
from opsloop.store import inbox as inbox_store
from opsloop.store import playbooks as playbook_store
from opsloop.store.inbox import InboxOrder as InboxOrder  # re-exported for the pages

ORDERS: tuple[InboxOrder, ...] = ("newest", "urgent")


def inbox(
    ctx: Context, *, playbook: str | None = None, order: InboxOrder = "newest", limit: int = 50
) -> Inbox:
    """`items`: the waiting decisions (see `item`); `waiting`: how many wait per playbook;
    `total`: how many wait in all."""
    active = ctx.catalog.active()
    with ctx.db.read() as conn:
        found = inbox_store.fetch_waiting(conn, playbook=playbook, order=order, limit=limit)
        waiting = inbox_store.count_waiting(conn)
        book = _Options(active, conn)
        items = [
            _item(
                d,
                book.of(d.playbook, d.playbook_version),
                awaiting=True,
                due=_due(active, d),
                now=ctx.clock(),
                settings=ctx.settings,
            )
            for d in found
        ]
    return {"items": items, "waiting": waiting, "total": sum(waiting.values())}


def item(ctx: Context, decision_id: int) -> InboxItem:
    """One decision as the inbox shows it, whether it still waits or not (`awaiting`)."""
    active = ctx.catalog.active()
    with ctx.db.read() as conn:
        decision = decision_store.get_decision(conn, decision_id)
        if decision is None:
            raise NotFound(f"no decision {decision_id}")
        awaiting = decision.status == "pending" or (
            decision.status == "auto"
            and decision.sampled
            and not decision_store.reviews_of(conn, decision_id)
        )
        options = _Options(active, conn).of(decision.playbook, decision.playbook_version)
    due = _due(active, decision) if decision.status == "pending" else None
    return _item(
        decision, options, awaiting=awaiting, due=due, now=ctx.clock(), settings=ctx.settings
    )


def options_of(ctx: Context, conn: Connection, decision: Decision) -> dict[str, Option]:
    """The options of the playbook version that made `decision`."""
    return _Options(ctx.catalog.active(), conn).of(decision.playbook, decision.playbook_version)


def count(ctx: Context) -> dict[str, int]:
    """How many decisions wait, per playbook."""
    with ctx.db.read() as conn:
        return inbox_store.count_waiting(conn)


def _due(active: dict[str, ActivePlaybook], decision: Decision) -> datetime | None:
    """When a waiting decision's review is due, by its playbook's `review.within`."""
    playbook = active.get(decision.playbook)
    review = playbook.compiled.playbook.review if playbook is not None else None
    if review is None or decision.status != "pending":
        return None
    return decision.created_at + review.within


def _item(
    decision: Decision,
    options: dict[str, Option],
    *,
    awaiting: bool,
    due: datetime | None,
    now: datetime,
    settings: Settings,
) -> InboxItem:
    explanation = decision.explanation
    text = explanation.get("text") or {}
    labels = {name: option.label or name for name, option in options.items()}
    return {
        "id": decision.id,
        "playbook": decision.playbook,
        "playbook_version": decision.playbook_version,
        "subject": decision.subject,
        "status": decision.status,
        "mode": decision.mode,
        "choice": decision.choice,
        "final_choice": decision.final_choice,
        "score": decision.score,
        "why": decision.why,
        "created_at": decision.created_at,
        "needs_approval": decision.needs_approval,
        "awaiting": awaiting,
        # A sampled `auto` decision: its actions ran already; the review is a second opinion.
        "after_the_fact": decision.status == "auto",
        "holds": [hold.get("reason", "") for hold in explanation.get("guardrails", [])],
        "labels": labels,
        "alternatives": [name for name in labels if name != decision.choice],
        "drafted": list(explanation.get("drafted_options", [])),
        "draft": text.get("draft") if isinstance(text.get("draft"), str) else None,
        "draft_error": text.get("draft_error"),
        "draft_cited": _text_or_none(text.get("draft_cited")),
        "draft_sources": list(text.get("draft_sources") or []),
        "message": _message(decision),
        "due_at": due,
        "overdue": due is not None and due <= now,
        "who": _who(decision),
        "preview": _preview(settings, decision, options, now)
        if awaiting and decision.status == "pending"
        else [],
    }


def _who(decision: Decision) -> str | None:
    """`Ana Silva, Acme`: the name and company the subject's traits had when it was decided."""
    entity = decision.inputs.get("entity") or {}
    name = entity.get("name") or " ".join(
        str(part) for part in (entity.get("first_name"), entity.get("last_name")) if part
    )
    parts = [str(part) for part in (name, entity.get("company")) if part]
    return ", ".join(parts) or None


def _preview(
    settings: Settings, decision: Decision, options: dict[str, Option], now: datetime
) -> list[ActionPreview]:
    option = options.get(decision.choice or "")
    if option is None:
        return []
    text = decision.explanation.get("text") or {}
    draft = text.get("draft") if isinstance(text.get("draft"), str) else None
    return preview(settings, decision, str(decision.choice), option, now, draft=draft)


def _message(decision: Decision) -> str | None:
    """The message a text-triage playbook read (`text.field` of the event's payload)."""
    field = (decision.explanation.get("text") or {}).get("field")
    if not isinstance(field, str):
        return None
    found = read_path((decision.inputs.get("event") or {}).get("payload") or {}, field)
    return found if isinstance(found, str) else None


class _Options:
    """The options of each playbook version a page shows, read once per version: a decision is
    reviewed against the version that made it, even if the playbook changed since."""

    def __init__(self, active: dict[str, ActivePlaybook], conn: Connection) -> None:
        self._active = active
        self._conn = conn
        self._seen: dict[tuple[str, int], dict[str, Option]] = {}

    def of(self, name: str, version: int) -> dict[str, Option]:
        key = (name, version)
        if key not in self._seen:
            self._seen[key] = self._load(name, version)
        return self._seen[key]

    def _load(self, name: str, version: int) -> dict[str, Option]:
        active = self._active.get(name)
        if active is not None and active.version == version:
            return dict(active.compiled.playbook.options)
        record = playbook_store.get_playbook(self._conn, name)
        if record is None:
            return {}
        for row in playbook_store.list_versions(self._conn, record["id"]):
            if row["version"] == version:
                playbook, _ = parse_playbook(row["source"], row["file"])
                return dict(playbook.options)
        return {}


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
