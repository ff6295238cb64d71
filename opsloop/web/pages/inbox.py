"""The inbox (`/inbox`): decisions waiting for a person, reviewed in place with htmx and the
keyboard (static/inbox.js); and one decision in full (`/decisions/{id}`).

Both post reviews to `POST /decisions/{id}/review`. An htmx request from the inbox gets the row
back as a short confirmation (or with the error beside the field); one from the decision page
reloads that page; a plain form post is redirected (or shown the page with the error).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.decision_views import DecisionDetail
from opsloop.core.decisions import VERDICTS, ReviewRequest
from opsloop.core.errors import Conflict, InvalidInput, NotFound
from opsloop.service import ORDERS, InboxOrder, OpsLoop
from opsloop.web.deps import ops
from opsloop.web.pages.ui import PageReader, PageReviewer, page_router, render

if TYPE_CHECKING:
    from opsloop.service import InboxItem

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

PAGE_SIZE = 50
MAX_DRAFT = 20_000
MAX_REASON = 2_000
INBOX = "/inbox"


MY_TASKS = 5
"""Open tasks given to the person shown above the inbox; the Tasks page has them all."""


@router.get(INBOX, summary="Decisions waiting for a person")
def inbox(
    request: Request,
    service: Service,
    who: PageReader,
    playbook: str | None = None,
    sort: str = "newest",
) -> HTMLResponse:
    order = _order(sort)
    found = service.review.inbox(playbook=playbook or None, order=order, limit=PAGE_SIZE)
    context = {
        **_summary(found["waiting"], playbook or None, order),
        "items": found["items"],
        "may_review": who.may("review"),
        "my_tasks": service.deliver.list_tasks(status="open", assignee=who.name, limit=MY_TASKS),
        "fmt": Format(),
    }
    return render(request, "inbox.html", context, active=INBOX)


@router.get("/decisions/{decision_id}", summary="One decision, everything about it")
def decision(request: Request, service: Service, who: PageReader, decision_id: str) -> Response:
    number = _id(decision_id)
    try:
        if number is None:
            raise NotFound(f"no decision {decision_id}")
        return _decision_page(request, service, number, may_review=who.may("review"))
    except NotFound:
        return render(
            request,
            "decision_missing.html",
            {"decision_id": decision_id},
            status_code=404,
            active=INBOX,
        )


@router.post("/decisions/{decision_id}/review", summary="Approve, override or reject")
async def review(
    request: Request, service: Service, who: PageReviewer, decision_id: str
) -> Response:
    number = _id(decision_id)
    form = await request.form()
    values = {key: _text(form.get(key)) for key in ("verdict", "option", "reason", "draft")}
    origin = "detail" if form.get("origin") == "detail" else "inbox"
    htmx = request.headers.get("hx-request") == "true"
    try:
        if number is None:
            raise NotFound(f"no decision {decision_id}")
        item = await run_in_threadpool(service.review.inbox_item, number)
    except NotFound:
        return render(
            request, "decision_missing.html", {"decision_id": decision_id}, status_code=404
        )
    verdict = values["verdict"]
    try:
        if verdict not in VERDICTS:
            raise InvalidInput.single("verdict", "choose approve, override or reject")
        asked = _review_request(item, values, who.actor)
        await run_in_threadpool(service.review.verdict, number, asked)
    except (InvalidInput, Conflict) as exc:
        problem = _problem(exc)
        status = 409 if isinstance(exc, Conflict) else 422
        fresh = await run_in_threadpool(service.review.inbox_item, number)
        if not htmx:
            return await run_in_threadpool(
                lambda: _decision_page(
                    request,
                    service,
                    number,
                    may_review=True,
                    error=problem,
                    values=values,
                    status_code=status,
                )
            )
        context = {"item": fresh, "error": problem, "values": values, "fmt": Format()}
        if origin == "detail":
            return render(request, "decision_review.html", context, status_code=status)
        context["may_review"] = True
        return render(request, "inbox_row.html", context, status_code=status)
    if origin == "detail":
        target = f"/decisions/{number}"
        if htmx:
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    if not htmx:
        return RedirectResponse(INBOX, status_code=303)
    playbook, order = _filters_of(request.headers.get("hx-current-url", ""))
    waiting = await run_in_threadpool(service.review.count_waiting)
    context = {
        **_summary(waiting, playbook, order),
        "item": item,
        "done": _done(item, verdict, values["option"]),
        "oob": True,
    }
    return render(request, "inbox_done.html", context)


# --- helpers ---------------------------------------------------------------------------------


def _decision_page(
    request: Request,
    service: OpsLoop,
    decision_id: int,
    *,
    may_review: bool,
    error: dict[str, str] | None = None,
    values: dict[str, str | None] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    detail = service.decide.decision_detail(decision_id)
    item = service.review.inbox_item(decision_id)
    tasks = service.deliver.list_tasks(decision_id=decision_id)
    context = {
        "d": detail,
        "item": item,
        "tasks": {task["action_id"]: task for task in tasks},
        "verdict": _verdict(detail, item["labels"]),
        "may_review": may_review,
        "error": error,
        "values": values or {},
        "fmt": Format(),
    }
    return render(request, "decision.html", context, status_code=status_code, active=INBOX)


def _review_request(item: InboxItem, values: dict[str, str | None], actor: str) -> ReviewRequest:
    verdict = values["verdict"]
    reason = values["reason"]
    if reason is not None and len(reason) > MAX_REASON:
        raise InvalidInput.single("reason", f"keep it under {MAX_REASON} characters")
    option = values["option"] if verdict == "override" else None
    final = {"approve": item["choice"], "override": option, "reject": None}[str(verdict)]
    # The reply field is on the page whenever an option sends a drafted reply; it is sent to
    # the service only for such an option (the service refuses a draft for any other).
    draft = values["draft"] if final in item["drafted"] else None
    if draft is not None and len(draft) > MAX_DRAFT:
        raise InvalidInput.single("draft", f"keep the reply under {MAX_DRAFT} characters")
    return ReviewRequest(
        verdict=verdict,  # type: ignore[arg-type]  # checked against VERDICTS above
        reviewer=actor,
        option=option or None,
        reason=reason or None,
        draft=draft,
    )


def _problem(exc: InvalidInput | Conflict) -> dict[str, str]:
    """`{field: message}` for the form; a conflict belongs to no field."""
    if isinstance(exc, Conflict):
        return {"": _sentence(str(exc))}
    found: dict[str, str] = {}
    for error in exc.errors:
        found.setdefault(error.field, _sentence(error.message))
    return found


def _done(item: InboxItem, verdict: str | None, option: str | None) -> str:
    labels = item["labels"]
    ran = _label(labels, item["choice"])
    if item["after_the_fact"]:
        return {
            "approve": f"agreed — it already ran “{ran}”",
            "override": f"noted: you would have run “{_label(labels, option)}”; it already ran “{ran}”",
            "reject": f"noted: you would not have run it; it already ran “{ran}”",
        }[str(verdict)]
    return {
        "approve": f"approved — runs “{ran}”",
        "override": f"overridden — runs “{_label(labels, option)}” instead",
        "reject": "rejected — nothing runs",
    }[str(verdict)]


def _label(labels: dict[str, str], name: str | None) -> str | None:
    """An option's label; the name itself when it has none."""
    return None if name is None else labels.get(name, name)


def _verdict(detail: DecisionDetail, labels: dict[str, str]) -> str:
    """One sentence on where the decision stands."""
    status = detail["status"]
    review = detail["reviews"][-1] if detail["reviews"] else None
    by = f" by {review['reviewer']}" if review else ""
    choice = _label(labels, detail["choice"])
    final = _label(labels, detail["final_choice"])
    if status == "pending":
        return "Waiting for a person to review it: nothing has run yet."
    if status == "approved":
        return f"Approved{by}: ran “{choice}”."
    if status == "overridden":
        return f"Overridden{by}: ran “{final}” instead of “{choice}”."
    if status == "rejected":
        return f"Rejected{by}: nothing ran."
    if status == "auto":
        checked = f" Checked afterwards{by}." if review else ""
        sampled = (
            " It was picked for a person to check." if detail["sampled"] and not review else ""
        )
        return f"Ran “{choice}” automatically (auto mode).{sampled}{checked}"
    if status == "logged" and detail["explanation"].get("nothing_to_do"):
        return f"Nothing to do, so not sent for review: “{choice}” has no actions to run."
    if status == "logged":
        return "Logged only: the playbook is in shadow mode, so nothing ran."
    return "Could not decide: see why below."


def _summary(waiting: dict[str, int], playbook: str | None, order: InboxOrder) -> dict[str, Any]:
    def link(**change: str | None) -> str:
        query = {"playbook": playbook, "sort": order if order != "newest" else None, **change}
        kept = {key: value for key, value in query.items() if value}
        return INBOX + (f"?{urlencode(kept)}" if kept else "")

    total = sum(waiting.values())
    return {
        "waiting": waiting,
        "total": total,
        "shown_total": waiting.get(playbook, 0) if playbook else total,
        "playbook": playbook,
        "order": order,
        "link": link,
    }


def _filters_of(url: str) -> tuple[str | None, InboxOrder]:
    """The inbox's filters from the page an htmx request came from (`HX-Current-URL`)."""
    query = parse_qs(urlsplit(url).query)
    playbook = (query.get("playbook") or [""])[0]
    return playbook or None, _order((query.get("sort") or ["newest"])[0])


def _order(sort: str) -> InboxOrder:
    return sort if sort in ORDERS else "newest"


def _id(text: str) -> int | None:
    # isascii: `²` is a digit to isdigit() but not to int(); 18 digits always fit in an id.
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    # Browsers send a textarea's line breaks as CRLF; store the reply as typed.
    return value.replace("\r\n", "\n")


def _sentence(message: str) -> str:
    message = message.strip()
    if not message:
        return message
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


class Format:
    """Small formatters the inbox and decision templates use."""

    @staticmethod
    def ago(at: datetime | None, now: datetime | None = None) -> str:
        if at is None:
            return ""
        now = now or datetime.now(UTC)
        seconds = max(0, int((now - at).total_seconds()))
        if seconds < 60:
            return "just now"
        if seconds < 3600:
            return f"{seconds // 60} min ago"
        if seconds < 86400:
            return f"{seconds // 3600} h ago"
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''} ago"

    @staticmethod
    def when(at: datetime | None) -> str:
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "—"

    @staticmethod
    def num(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        if float(value).is_integer():
            return f"{int(value):,}".replace(",", " ") if abs(value) >= 10_000 else str(int(value))
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}".rstrip("0").rstrip(".")

    @staticmethod
    def signed(value: Any) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return "+" + Format.num(value)
        return Format.num(value)

    @staticmethod
    def pct(value: Any) -> str:
        return f"{value:.0%}" if isinstance(value, int | float) else "—"

    @staticmethod
    def show(value: Any) -> str:
        """A value as the explanation saw it: numbers plainly, text quoted, the rest as JSON."""
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return Format.num(value)
        if isinstance(value, str):
            return json.dumps(value, ensure_ascii=False)
        return json.dumps(value, ensure_ascii=False, default=str)

    @staticmethod
    def pretty(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, indent=2, default=str, sort_keys=True)

    @staticmethod
    def duration(seconds: float | None) -> str:
        if seconds is None:
            return "—"
        if seconds < 3600:
            return f"{max(1, round(seconds / 60))} min"
        if seconds < 2 * 86400:
            return f"{round(seconds / 3600)} h"
        return f"{round(seconds / 86400)} days"
