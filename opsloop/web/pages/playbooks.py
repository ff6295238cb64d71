"""The playbooks pages: the list with each playbook's readiness for `auto`; one playbook in plain
words with its YAML, versions and a diff between any two; the YAML editor that validates as
you type (owners); backtests of a saved version or of the text being edited (reviewers); and
promotion to `auto` or a move back to `recommend`/`shadow` (owners).

Every page calls the service façade; a backtest runs in a worker thread so the event loop
keeps serving while it replays history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from opsloop.core.backtest_reports import BacktestRun, ChoiceShare
from opsloop.core.errors import Conflict, InvalidInput, NotFound, PlaybookInvalid, PlaybookProblem
from opsloop.core.playbooks import MODES, Playbook, parse_playbook
from opsloop.service import OpsLoop, PlaybookDetail
from opsloop.web.deps import ops
from opsloop.web.pages import playbook_diff
from opsloop.web.pages.playbook_outline import MODE_WORDS, outline
from opsloop.web.pages.ui import PageOwner, PageReader, PageReviewer, page_router, render

if TYPE_CHECKING:
    from opsloop.service import PlaybookDetail, ReadinessReport

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

ACTIVE = "/playbooks"
EDITOR_FILE = "web editor"
"""What the version history shows as the `file` of a version saved in the editor."""
PERIODS = [("30d", "the last 30 days"), ("90d", "the last 90 days"), ("180d", "the last 180 days"),
           ("365d", "the last year")]  # fmt: skip
DEFAULT_PERIOD = "90d"
SOURCE_LIMIT = 200_000
"""Characters of YAML the editor accepts; a playbook is a few kilobytes."""

STARTER = """\
# A new playbook. Change what you need, watch the checks below, then Save.
# Every key is explained in docs/playbooks.md.
name: my-playbook
description: One line that says what this playbook is for.
subject: lead                 # the kind of subject it decides about: lead, ticket, customer ...
mode: recommend               # every decision waits for a person until it earns auto

trigger:
  events: lead.created        # the event type(s) that start a decision

features:
  visits_7d:
    count: page.viewed
    within: 7d
    label: Page views in the last 7 days

scorecard:
  - label: Engaged this week
    when: visits_7d >= 5
    points: 50

rules:
  - label: Engaged
    when: score >= 50
    choose: follow_up

otherwise: wait

options:
  follow_up:
    label: Follow up today
    actions:
      - kind: task
        title: "Call {{ subject }}"
        due_in: 1d
  wait:
    label: Leave for now
"""


# --- the list and one playbook -----------------------------------------------------------


@router.get("/playbooks", summary="Every playbook with its mode and readiness for auto")
def playbook_list(request: Request, service: Service, who: PageReader) -> HTMLResponse:
    rows = []
    for playbook in sorted(service.decide.list_playbooks(), key=lambda p: p["name"]):
        rows.append({**playbook, "readiness": _readiness(service, playbook["name"])})
    context = {
        "playbooks": rows,
        "playbooks_dir": service.settings.resolved_playbooks_dir,
        "may_edit": who.may("admin"),
    }
    return render(request, "playbooks.html", context, active=ACTIVE)


@router.get("/playbooks/_new", summary="The YAML editor with a new playbook to start from")
def new_playbook(request: Request, who: PageOwner) -> HTMLResponse:
    return _editor(request, source=STARTER, editing=None)


@router.get("/playbooks/{name}", summary="One playbook in plain words, its YAML and versions")
def playbook_detail(
    request: Request,
    name: str,
    service: Service,
    who: PageReader,
    old: Annotated[int | None, Query(alias="from")] = None,
    new: Annotated[int | None, Query(alias="to")] = None,
    view: str = "unified",
    saved: int | None = None,
    unchanged: bool = False,
    moved: str | None = None,
    installed: bool = False,
) -> HTMLResponse:
    try:
        record = service.decide.get_playbook(name)
    except NotFound:
        return _not_found(request, name)
    playbook, problem = _parse(record["source"] or "", name)
    versions = [{**v, "when": _when(v["created_at"])} for v in record["versions"]]
    context = {
        "name": name,
        "record": record,
        "playbook": playbook,
        "parse_problem": problem,
        "outline": outline(playbook) if playbook else None,
        "has_experiments": playbook is not None and _has_variants(playbook),
        "has_forecasts": playbook is not None
        and any(feature.forecast is not None for feature in playbook.features.values()),
        "schedule_times": _schedule_times(record),
        "channel_warnings": service.decide.channel_warnings(name),
        "readiness": _readiness(service, name),
        "mode_words": MODE_WORDS.get(record["mode"], ""),
        "asks_auto": playbook is not None and playbook.mode == "auto" and record["mode"] != "auto",
        "versions": versions,
        "may_edit": who.may("admin"),
        "may_backtest": who.may("review"),
        "periods": PERIODS,
        "default_period": DEFAULT_PERIOD,
        "saved": saved,
        "unchanged": unchanged,
        "moved": moved if moved in MODES else None,
        "installed": installed,
        **_diff_context(service, name, record, old, new, view),
    }
    return render(request, "playbook.html", context, active=ACTIVE)


def _schedule_times(record: PlaybookDetail) -> dict[str, str]:
    """Each run's due time as the business reads it: in the schedule's time zone."""
    schedule = record["schedule"]
    if schedule is None:
        return {}
    zone = ZoneInfo(schedule["timezone"])
    due = [*schedule["next_runs"], *(run["due_at"] for run in schedule["last_runs"])]
    return {
        at: datetime.fromisoformat(at).astimezone(zone).strftime("%a %d %b %Y, %H:%M") for at in due
    }


@router.get("/playbooks/{name}/diff", summary="The difference between two versions")
def playbook_diff_fragment(
    request: Request,
    name: str,
    service: Service,
    who: PageReader,
    old: Annotated[int | None, Query(alias="from")] = None,
    new: Annotated[int | None, Query(alias="to")] = None,
    view: str = "unified",
) -> Response:
    if not request.headers.get("hx-request"):
        # Without htmx the comparison is part of the playbook's page. A version not given is
        # left out: an empty `to=` is no number, and the page would refuse it.
        given = {"from": old, "to": new, "view": view}
        query = urlencode({key: value for key, value in given.items() if value is not None})
        return RedirectResponse(f"/playbooks/{name}?{query}#compare", status_code=303)
    try:
        record = service.decide.get_playbook(name)
    except NotFound:
        return _not_found(request, name)
    context = {"name": name, **_diff_context(service, name, record, old, new, view)}
    return render(request, "playbook_diff.html", context)


# --- the editor ----------------------------------------------------------------------------


@router.get("/playbooks/{name}/edit", summary="The YAML editor on the active version")
def edit_playbook(request: Request, name: str, service: Service, who: PageOwner) -> HTMLResponse:
    try:
        record = service.decide.get_playbook(name)
    except NotFound:
        return _not_found(request, name)
    return _editor(request, source=record["source"] or "", editing=name, mode=record["mode"])


@router.post("/playbooks/validate", summary="Check the editor's YAML; the problems by line")
async def validate(request: Request, service: Service, who: PageOwner) -> HTMLResponse:
    form = await request.form()
    source = _source(form)
    context: dict[str, Any] = {"problems": [], "playbook": None, "notice": None}
    try:
        playbook = await run_in_threadpool(service.decide.validate_playbook, source, "draft.yaml")
    except PlaybookInvalid as exc:
        context["problems"] = _problems(exc.problems, source)
    else:
        context["playbook"] = playbook
        context["editing"] = str(form.get("editing") or "") or None
        context["notice"] = await run_in_threadpool(_mode_notice, service, playbook)
    # 422 with the problems listed: htmx swaps it in (templates/base.html, responseHandling).
    status = 422 if context["problems"] else 200
    return render(request, "playbook_problems.html", context, status_code=status)


@router.post("/playbooks/save", summary="Apply the editor's YAML as a new version")
async def save(request: Request, service: Service, who: PageOwner) -> Response:
    form = await request.form()
    source = _source(form)
    editing = str(form.get("editing") or "") or None
    try:
        applied = await run_in_threadpool(
            service.decide.apply_playbook, source, EDITOR_FILE, actor=who.actor
        )
    except PlaybookInvalid as exc:
        return _editor(
            request,
            source=source,
            editing=editing,
            problems=_problems(exc.problems, source),
            status_code=422,
        )
    query = f"saved={applied.version}" + ("" if applied.changed else "&unchanged=true")
    return RedirectResponse(f"/playbooks/{applied.name}?{query}", status_code=303)


# --- backtests -----------------------------------------------------------------------------


@router.post("/playbooks/backtest", summary="Replay a saved version or the edited YAML")
async def backtest(request: Request, service: Service, who: PageReviewer) -> HTMLResponse:
    form = await request.form()
    source = _source(form).strip() or None
    name = str(form.get("playbook") or "").strip() or None
    # ASCII only: `²` is a digit to isdigit() but not to int().
    version = str(form.get("version") or "").strip().encode("ascii", "replace").decode()
    since = str(form.get("since") or DEFAULT_PERIOD)
    context: dict[str, Any] = {"report": None, "error": None, "problems": [], "name": name}

    def run() -> tuple[BacktestRun, dict[str, Any] | None]:
        report = service.learn.backtest(
            playbook=None if source else name,
            version=int(version) if version.isdigit() and not source else None,
            source=source,
            since=since,
            actor=who.actor,
        )
        # No decision in the period: no chart (its shares would be drawn as "null").
        decided = any(choice["decisions"] for choice in report["choices"])
        return report, choice_chart(report["choices"]) if decided else None

    try:
        # Seconds of replaying: in a worker thread, so the event loop keeps serving others.
        report, chart = await run_in_threadpool(run)
    except PlaybookInvalid as exc:
        context["error"] = "The YAML has problems; fix them before backtesting it."
        context["problems"] = _problems(exc.problems, source or "")
    except (InvalidInput, NotFound) as exc:
        context["error"] = _sentence(str(exc))
    else:
        context["report"] = report
        context["chart"] = chart
        context["period_words"] = dict(PERIODS).get(since, f"since {since}")
    status = 200 if context["error"] is None else 422
    if request.headers.get("hx-request"):
        return render(request, "playbook_backtest.html", context, status_code=status)
    return render(
        request, "playbook_backtest_page.html", context, status_code=status, active=ACTIVE
    )


# --- promotion and demotion ----------------------------------------------------------------


@router.get("/playbooks/{name}/promote", summary="Confirm promotion to auto, with the evidence")
def confirm_promotion(
    request: Request, name: str, service: Service, who: PageOwner
) -> HTMLResponse:
    readiness = _readiness(service, name)
    if readiness is None:
        return _not_found(request, name)
    return _promote_page(request, name, readiness)


@router.post("/playbooks/{name}/mode", summary="Promote to auto, or move to recommend/shadow")
async def change_mode(request: Request, name: str, service: Service, who: PageOwner) -> Response:
    form = await request.form()
    mode = str(form.get("mode") or "")
    reason = str(form.get("reason") or "").strip() or None
    try:
        await run_in_threadpool(
            service.review.change_mode, name, mode, actor=who.actor, reason=reason
        )
    except NotFound:
        return _not_found(request, name)
    except (Conflict, InvalidInput) as exc:
        readiness = await run_in_threadpool(_readiness, service, name)
        if readiness is None:
            return _not_found(request, name)
        status = 409 if isinstance(exc, Conflict) else 422
        return _promote_page(request, name, readiness, refused=_sentence(str(exc)), status=status)
    return RedirectResponse(f"/playbooks/{name}?moved={mode}", status_code=303)


# --- helpers -------------------------------------------------------------------------------


def choice_chart(choices: list[ChoiceShare]) -> dict[str, Any]:
    """A Vega-Lite spec (made with Altair, drawn by the vendored Vega scripts) of how often a
    backtest's version chooses each option."""
    import altair as alt  # lazily: not needed to start the server (tests/test_startup.py)

    rows = [
        {
            "option": c["label"],
            "name": c["choice"],
            "decisions": c["decisions"],
            "share": c["share"],
        }
        for c in choices
    ]
    base = alt.Chart(alt.InlineData(values=rows)).encode(
        y=alt.Y("option:N", sort="-x", title=None, axis=alt.Axis(labelLimit=220)),
        x=alt.X("decisions:Q", title="decisions", axis=alt.Axis(tickMinStep=1, format="d")),
        tooltip=[
            alt.Tooltip("option:N", title="option"),
            alt.Tooltip("decisions:Q", title="decisions"),
            alt.Tooltip("share:Q", title="share", format=".1%"),
        ],
    )
    labels = base.mark_text(align="left", dx=4).encode(text=alt.Text("share:Q", format=".0%"))
    chart = alt.layer(base.mark_bar(), labels).properties(
        width="container",
        height=alt.Step(30),
        description="How often each option is chosen in the backtest",
    )
    spec: dict[str, Any] = chart.configure_view(stroke=None).to_dict()
    return spec


def _editor(
    request: Request,
    *,
    source: str,
    editing: str | None,
    mode: str | None = None,
    problems: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "source": source,
        "editing": editing,
        "mode": mode,
        "problems": problems,
        "periods": PERIODS,
        "default_period": DEFAULT_PERIOD,
    }
    return render(request, "playbook_editor.html", context, status_code=status_code, active=ACTIVE)


def _promote_page(
    request: Request,
    name: str,
    readiness: ReadinessReport,
    *,
    refused: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {"name": name, "readiness": readiness, "refused": refused}
    return render(request, "playbook_promote.html", context, status_code=status, active=ACTIVE)


def _not_found(request: Request, name: str) -> HTMLResponse:
    return render(
        request, "playbook_not_found.html", {"name": name}, status_code=404, active=ACTIVE
    )


def _readiness(service: OpsLoop, name: str) -> ReadinessReport | None:
    """The readiness evidence, or None for a playbook the catalog does not hold."""
    try:
        return service.review.readiness(name)
    except NotFound:
        return None


def _parse(source: str, name: str) -> tuple[Playbook | None, str | None]:
    """The stored version, parsed to be described in words. It passed validation when it was
    applied, so a failure here means the rules changed since: say so rather than fail."""
    try:
        return parse_playbook(source, f"{name}.yaml")[0], None
    except PlaybookInvalid as exc:
        return None, str(exc)


def _source(form: FormData) -> str:
    value = form.get("source")
    text = value if isinstance(value, str) else ""
    # Browsers send textarea lines with CRLF; keep the stored text as the person typed it.
    return text.replace("\r\n", "\n")[:SOURCE_LIMIT]


def _problems(problems: list[PlaybookProblem], source: str) -> list[dict[str, Any]]:
    """Each problem with its line and that line's text, so it reads without the file."""
    lines = source.splitlines()
    return [
        {
            "line": p.line,
            "field": p.field,
            "message": p.message,
            "text": lines[p.line - 1] if p.line and 0 < p.line <= len(lines) else None,
        }
        for p in problems
    ]


def _mode_notice(service: OpsLoop, playbook: Playbook) -> str | None:
    """`mode: auto` in the YAML is not granted by saving it: say what the mode will be."""
    if playbook.mode != "auto":
        return None
    try:
        current = service.decide.get_playbook(playbook.name)["mode"]
    except NotFound:
        current = None
    if current == "auto":
        return None
    kept = current or "recommend"
    return (
        f"mode: auto must be earned: saving keeps this playbook in {kept} until reviewers' "
        "agreement clears its target and an owner promotes it."
    )


def _diff_context(
    service: OpsLoop,
    name: str,
    record: PlaybookDetail,
    old: int | None,
    new: int | None,
    view: str,
) -> dict[str, Any]:
    numbers = [v["version"] for v in record["versions"]]
    view = "split" if view == "split" else "unified"
    context: dict[str, Any] = {"numbers": numbers, "view": view, "diff": None, "diff_error": None}
    if len(numbers) < 2:
        return {**context, "old": None, "new": None}
    active = record["version"] if record["version"] in numbers else numbers[0]
    if new is None:
        new = active
    if old is None:
        earlier = [n for n in numbers if n < new]
        old = earlier[0] if earlier else next(n for n in numbers if n != new)
    context.update(old=old, new=new)
    try:
        left = service.decide.get_playbook_version(name, old)
        right = service.decide.get_playbook_version(name, new)
    except NotFound as exc:
        context["diff_error"] = _sentence(str(exc))
        return context
    build = playbook_diff.side_by_side if view == "split" else playbook_diff.unified
    context["diff"] = build(left["source"], right["source"])
    return context


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def _has_variants(playbook: Playbook) -> bool:
    """Whether an option's action tries variants (a message test, with its own page)."""
    return any(
        getattr(action, "variants", ())
        for option in playbook.options.values()
        for action in option.actions
    )
