"""The playbook form (owners): a playbook written or changed with fields and Add/Remove buttons
instead of YAML, for the common shapes — trigger, features, scorecard lines, rules, options and
their actions, the outcome.

The form writes YAML (opsloop/web/pages/playbook_form_yaml.py), and the YAML stays the source of
truth: as you type it is checked with the text editor's validation (`validate_playbook`), each
problem is shown next to the field it came from, and the YAML it will save is shown beside the
form. Saving calls `apply_playbook` as the text editor does. What the form cannot edit (tables,
guardrails, a model, text triage, a review deadline, an absence or a schedule, a sequence) is
kept as written, and the page says so.

Without JavaScript the form still works: Add and Remove post it and it comes back with the row
added or removed; Save applies it and opens the playbook, or shows the form with its problems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.errors import NotFound, PlaybookInvalid
from opsloop.core.playbooks import ACTION_KINDS, MODES, Playbook
from opsloop.service import OpsLoop
from opsloop.web.deps import ops
from opsloop.web.pages.playbook_form_yaml import (
    LISTS,
    Built,
    FormUnreadable,
    PlaybookForm,
    Row,
    build,
    change_rows,
    dump,
    new_row,
    read_fields,
    read_playbook,
    same_playbook,
    yaml_text,
)
from opsloop.web.pages.playbooks import (
    ACTIVE,
    SOURCE_LIMIT,
    STARTER,
    _mode_notice,
    _not_found,
)
from opsloop.web.pages.ui import PageOwner, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

FORM_FILE = "web form"
"""What the version history shows as the `file` of a version saved from the form."""
CHECKED_AS = "form.yaml"
MAX_FIELDS = 5000
"""Fields one post may carry (a large playbook's form has a few hundred)."""
PLAYBOOK_NAME = re.compile(r"[a-z0-9][a-z0-9_\-]{0,79}")
"""A name a playbook can have (opsloop/core/playbooks.py); anything else is not found."""

FEATURE_CHOICES = [
    ("trait", "trait: a profile value"),
    ("count", "count of events"),
    ("sum", "sum of a field"),
    ("avg", "average of a field"),
    ("min", "smallest value of a field"),
    ("max", "largest value of a field"),
    ("last", "last value of a field"),
    ("days_since", "days since an event"),
    ("formula", "formula"),
]
KINDS_IN_WORDS = {
    "email": "email",
    "notify": "chat message (notify)",
    "webhook": "webhook",
    "task": "task for a person",
    "update_traits": "update the profile (update_traits)",
    "refund": "refund (always waits for a person)",
    "payment": "payment (always waits for a person)",
    "discount": "discount (always waits for a person)",
    "delete": "delete (always waits for a person)",
}
ACTION_CHOICES = [(kind, KINDS_IN_WORDS.get(kind, kind)) for kind in ACTION_KINDS]
KEPT_WORDS = {
    "tables": "Decision tables",
    "guardrails": "Guardrails",
    "autonomy": "What it takes to earn auto",
    "model": "A trained model",
    "text": "Text triage",
    "review": "A review deadline",
    "report": "Who gets its weekly report",
}
SECTION_WORDS = {"features": "feature", "scorecard": "line", "rules": "rule", "options": "option"}


@dataclass(frozen=True, slots=True)
class Shown:
    """A problem as the form shows it: next to `target` (a field, row or section) when it is
    known, in the list beside the form always."""

    target: str | None
    where: str
    """The YAML path, or the field in words for what the form itself refuses."""
    line: int | None
    message: str


@dataclass(frozen=True)
class Check:
    built: Built
    problems: list[Shown]
    playbook: Playbook | None
    notice: str | None

    @property
    def errors(self) -> dict[str, list[str]]:
        """The messages to show next to each field, row or section."""
        found: dict[str, list[str]] = {}
        for problem in self.problems:
            if problem.target:
                found.setdefault(problem.target, []).append(problem.message)
        return found

    @property
    def lines(self) -> set[int]:
        return {problem.line for problem in self.problems if problem.line}


# --- the pages ---------------------------------------------------------------------------------


@router.get("/playbooks/_new/form", summary="The playbook form on a small example playbook")
async def new_form(request: Request, service: Service, who: PageOwner) -> HTMLResponse:
    form = read_playbook(STARTER)
    form.header = ""  # the starter's comments speak of the text editor
    return await _page(request, service, form, editing=None)


@router.get("/playbooks/{name}/form", summary="The playbook form on the active version")
async def edit_form(request: Request, name: str, service: Service, who: PageOwner) -> HTMLResponse:
    if not PLAYBOOK_NAME.fullmatch(name):
        return _not_found(request, name)
    try:
        record = await run_in_threadpool(service.decide.get_playbook, name)
    except NotFound:
        return _not_found(request, name)
    try:
        form = read_playbook(record["source"] or "")
    except FormUnreadable as exc:
        context = {"editing": name, "unreadable": str(exc)}
        return render(request, "playbook_form.html", context, active=ACTIVE)
    return await _page(request, service, form, editing=name, mode=record["mode"])


@router.post("/playbooks/_form/validate", summary="Check the form: problems by field, its YAML")
async def validate(request: Request, service: Service, who: PageOwner) -> HTMLResponse:
    fields = await _fields(request)
    form, editing = read_fields(fields), _editing(fields)
    check = await run_in_threadpool(_check, service, form, editing)
    context = {"check": check, "editing": editing}
    # 422 with the problems: htmx swaps it in (templates/base.html, responseHandling).
    status = 422 if check.problems else 200
    return render(request, "playbook_form_check.html", context, status_code=status)


@router.post("/playbooks/_form/save", summary="Apply the form's YAML as a new version")
async def save(request: Request, service: Service, who: PageOwner) -> Response:
    fields = await _fields(request)
    form, editing = read_fields(fields), _editing(fields)
    op = fields.get("op", "")
    if op:  # Add, Remove or Enter without JavaScript: the form again, nothing saved
        change_rows(form, op)
        return await _page(request, service, form, editing=editing)
    check = await run_in_threadpool(_check, service, form, editing)
    if check.problems:
        return await _page(request, service, form, editing=editing, check=check, status_code=422)
    text = check.built.text
    if editing is not None and check.playbook is not None and check.playbook.name == editing:
        text = await run_in_threadpool(_unless_unchanged, service, editing, text)
    try:
        applied = await run_in_threadpool(
            service.decide.apply_playbook, text, FORM_FILE, actor=who.actor
        )
    except PlaybookInvalid as exc:  # the settings changed between the check and the save
        built = check.built
        problems = [Shown(built.place(p.field), p.field, p.line, p.message) for p in exc.problems]
        check = Check(built, problems, None, None)
        return await _page(request, service, form, editing=editing, check=check, status_code=422)
    query = f"saved={applied.version}" + ("" if applied.changed else "&unchanged=true")
    return RedirectResponse(f"/playbooks/{applied.name}?{query}", status_code=303)


# --- helpers -----------------------------------------------------------------------------------


async def _page(
    request: Request,
    service: OpsLoop,
    form: PlaybookForm,
    *,
    editing: str | None,
    mode: str | None = None,
    check: Check | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    if check is None:
        check = await run_in_threadpool(_check, service, form, editing)
    if mode is None and editing is not None:
        mode = await run_in_threadpool(_stored_mode, service, editing)
    context = {
        "form": form,
        "editing": editing,
        "mode": mode,
        "check": check,
        "errors": check.errors,
        "kept_notes": kept_notes(form),
        "mode_choices": [(mode, mode) for mode in MODES],
        "feature_kinds": FEATURE_CHOICES,
        "action_kinds": ACTION_CHOICES,
        "blank": {section: new_row(section, 0) for section in (*LISTS, "actions")},
        "next_key": _next_key,
        "kept_yaml": _kept_yaml,
        "order_yaml": dump(form.order).strip() if form.order else "",
        "option_names": [o.get("name").strip() for o in form.options if o.get("name").strip()],
    }
    return render(request, "playbook_form.html", context, status_code=status_code, active=ACTIVE)


def _check(service: OpsLoop, form: PlaybookForm, editing: str | None) -> Check:
    """The form's YAML checked by the text editor's validation, each problem placed on the form."""
    built = build(form)
    problems = [Shown(target, _where(form, target), None, msg) for target, msg in built.errors]
    if len(built.text) > SOURCE_LIMIT:
        too_long = f"the playbook is longer than {SOURCE_LIMIT:,} characters; shorten its texts"
        problems.append(Shown(None, "", None, too_long))
    try:
        playbook = service.decide.validate_playbook(built.text, CHECKED_AS)
    except PlaybookInvalid as exc:
        problems += [Shown(built.place(p.field), p.field, p.line, p.message) for p in exc.problems]
        return Check(built, problems, None, None)
    return Check(built, problems, playbook, None if problems else _mode_notice(service, playbook))


def kept_notes(form: PlaybookForm) -> list[tuple[str, list[str]]]:
    """(what, its keys) for each part of the playbook the form keeps without editing it."""
    notes = [(KEPT_WORDS.get(str(key), "Another key"), [str(key)]) for key in form.top.kept]
    if form.trigger.kept:
        notes.append(("The trigger", [str(key) for key in form.trigger.kept]))
    if form.outcome.kept:
        notes.append(("The outcome", [str(key) for key in form.outcome.kept]))
    for section in LISTS:
        for index, row in enumerate(form.rows(section), start=1):
            if row.kept:
                notes.append((_row_words(section, index, row), [str(k) for k in row.kept]))
            for number, action in enumerate(row.actions, start=1):
                if action.kept:
                    what = f"{_row_words(section, index, row)}, action {number}"
                    notes.append((what, [str(key) for key in action.kept]))
    return notes


def _row_words(section: str, index: int, row: Row) -> str:
    name = row.get("name").strip()
    return f"{SECTION_WORDS[section].capitalize()} {name or index}"


def _where(form: PlaybookForm, target: str) -> str:
    """A field of the form in words: `feature 2, name` for `features-7-name`."""
    found = re.fullmatch(
        r"(features|scorecard|rules|options)-(\d+)(?:-actions-(\d+))?(?:-(\w+))?", target
    )
    if found is None:
        return target.replace("-", " ")
    section, key, action_key, part = found.groups()
    rows = form.rows(section)
    index = next((i for i, row in enumerate(rows, start=1) if row.key == int(key)), 0)
    words = _row_words(section, index, rows[index - 1]) if index else SECTION_WORDS[section]
    if action_key is not None and index:
        actions = rows[index - 1].actions
        number = next((i for i, a in enumerate(actions, start=1) if a.key == int(action_key)), 0)
        words += f", action {number}"
    return f"{words}, {part.replace('_', ' ')}" if part else words


def _next_key(rows: list[Row]) -> int:
    return max((row.key for row in rows), default=-1) + 1


def _kept_yaml(kept: dict[Any, Any]) -> str:
    return yaml_text(kept) if kept else ""


async def _fields(request: Request) -> dict[str, str]:
    form = await request.form(max_fields=MAX_FIELDS)
    # Browsers send line breaks as CRLF; keep the text as the person typed it.
    return {
        name: value.replace("\r\n", "\n")[:SOURCE_LIMIT]
        for name, value in form.multi_items()
        if isinstance(value, str)
    }


def _editing(fields: dict[str, str]) -> str | None:
    name = fields.get("editing", "").strip()
    return name if PLAYBOOK_NAME.fullmatch(name) else None


def _unless_unchanged(service: OpsLoop, name: str, text: str) -> str:
    """`text`, or the active version's own text when the two are the same playbook: a form saved
    without a change adds no version that only lays the YAML out anew."""
    try:
        active = service.decide.get_playbook(name)["source"]
    except NotFound:
        return text
    return active if active is not None and same_playbook(text, active) else text


def _stored_mode(service: OpsLoop, name: str) -> str | None:
    try:
        return service.decide.get_playbook(name)["mode"]
    except NotFound:
        return None
