"""Setting sources up in the browser, owners only: choose a kind (or an example) at
`/sources/_new`, fill in its form, and edit a source's form at `/sources/{name}/edit`.

A form becomes the YAML definition a person would write (opsloop/web/pages/source_forms.py) and
is stored by `ops.ingest.add_source`, the call behind `opsloop source add` and `PUT
/api/sources/{name}`: the same validation, the same audit entry. Its errors are shown beside
the field they name (422). Secrets are write-only: the field is never filled in, an edit that
leaves it empty keeps the stored one, and a secret just set is shown once on the source's page
(opsloop/web/pages/secret_once.py). The addresses start with `_`, which a source name cannot,
so a source may be called `new`.

Without JavaScript a form posts and is answered with a redirect, or with its errors; with htmx
the errors replace the form in place and success loads the source's page.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.errors import Conflict, InvalidInput, NotFound, PlaybookInvalid
from opsloop.core.sources import SOURCE_NAME
from opsloop.service import OpsLoop, StoredSource
from opsloop.web.deps import ops
from opsloop.web.pages import secret_once, source_forms
from opsloop.web.pages.admin_common import is_htmx
from opsloop.web.pages.source_forms import ADVANCED, CARDS, GROUPS, KINDS, FormState
from opsloop.web.pages.ui import PageOwner, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

ACTIVE = "/sources"
NEW = "/sources/_new"
FORM_FILE = "web form"
"""What messages name as the file of a definition made in the form."""
SENDERS = {
    "stripe": "Stripe",
    "shopify": "Shopify",
    "hubspot": "HubSpot",
    "calendly": "Calendly",
}


@router.get(NEW, summary="Add a source: choose its kind, or start from an example")
def choose_kind(request: Request, service: Service, who: PageOwner) -> HTMLResponse:
    examples = service.ingest.source_examples()
    cards = [
        {"card": card, "examples": [e for e in examples if e.spec.kind == card.kind]}
        for card in CARDS
    ]
    return render(request, "source_new.html", {"cards": cards}, active=ACTIVE)


@router.get(NEW + "/{kind}", summary="The form for a new source of this kind")
def new_form(
    request: Request, service: Service, who: PageOwner, kind: str, example: str | None = None
) -> HTMLResponse:
    if kind not in KINDS:
        return _missing(request, f"There is no kind of source called “{kind}”.")
    state = source_forms.blank(kind)
    notes = None
    if example:
        try:
            found = service.ingest.source_example(example)
        except NotFound:
            return _missing(request, f"There is no example source called “{example}”.")
        if found.spec.kind != kind:
            return _missing(request, f"The example “{example}” is a {found.spec.kind} source.")
        state = source_forms.filled(found.spec)
        state.values["name"] = found.spec.name
        notes = found.notes
    return _form(request, service, kind, state, editing=None, notes=notes, example=example)


@router.post(NEW + "/{kind}", summary="Add a source from the form")
async def create(request: Request, service: Service, who: PageOwner, kind: str) -> Response:
    if kind not in KINDS:
        return _missing(request, f"There is no kind of source called “{kind}”.")
    return await _submit(request, service, who.actor, kind, editing=None)


@router.get("/sources/{name}/edit", summary="A source's form, filled in (its secret never is)")
def edit_form(request: Request, service: Service, who: PageOwner, name: str) -> HTMLResponse:
    source = _source(service, name)
    if source is None:
        return _no_source(request, name)
    state = source_forms.filled(source.spec)
    return _form(request, service, source.spec.kind, state, editing=source)


@router.post("/sources/{name}/edit", summary="Save a source from its form")
async def save(request: Request, service: Service, who: PageOwner, name: str) -> Response:
    source = _source(service, name)
    if source is None:
        return _no_source(request, name)
    return await _submit(request, service, who.actor, source.spec.kind, editing=source)


# --- posting -------------------------------------------------------------------------------


async def _submit(
    request: Request, service: OpsLoop, actor: str, kind: str, *, editing: StoredSource | None
) -> Response:
    form = await request.form()
    state, data = source_forms.read(kind, form)
    name = editing.name if editing else str(form.get("name") or "").strip()
    state.values["name"] = name
    if not name:
        state.add_error("name", "is required")
    given = str(form.get("secret") or "").strip() or None
    wanted = str(form.get("generate_secret") or "") in ("on", "true", "1")
    state.values["generate_secret"] = wanted
    secret = given
    verify = str(data.get("verify") or "none")
    if given is None and wanted and (kind != "webhook" or verify != "none"):
        secret = service.ingest.generated_source_secret(kind, verify)
        if secret is None:
            sender = SENDERS.get(verify, "the sender")
            state.add_error(
                "secret",
                f"{sender} chooses this secret, so OpsLoop cannot make one: paste the one it "
                "shows you",
            )
    if state.errors:
        return _form(request, service, kind, state, editing=editing, status_code=422)
    try:
        added = await run_in_threadpool(
            service.ingest.add_source,
            source_forms.as_yaml(name, data),
            FORM_FILE,
            secret=secret,
            actor=actor,
            replace=editing is not None,
            name=name if editing else None,
        )
    except PlaybookInvalid as exc:
        for problem in exc.problems:
            _error_at(kind, state, problem.field, problem.message)
    except InvalidInput as exc:
        for error in exc.errors:
            _error_at(kind, state, error.field, _in_words(error.message))
    except Conflict:
        state.add_error(
            "name", f"a source named {name} exists already: edit it, or choose another name"
        )
    if state.errors:
        return _form(request, service, kind, state, editing=editing, status_code=422)
    target = f"/sources/{added.name}"
    query = {"done": "added" if added.created else "saved"}
    response = Response(status_code=303)
    if secret:
        pad = secret_once.hand_over(response, request, target, secret)
        if pad:
            query[secret_once.PAD] = pad
    where = f"{target}?{urlencode(query)}"
    if is_htmx(request):
        # htmx follows a redirect inside its request; the page should load as a whole.
        response.status_code = 200
        response.headers["HX-Redirect"] = where
    else:
        response.headers["location"] = where
    return response


def _error_at(kind: str, state: FormState, path: str, message: str) -> None:
    slot = "name" if path == "name" else source_forms.place(kind, path, state)
    state.add_error(slot, message if slot == path or not path else f"{path}: {message}")


def _in_words(message: str) -> str:
    # The service's hint names the command line's way to give a secret; here it is the form.
    return message.replace(
        "--secret-file FILE, or secret_env: VARIABLE in the file",
        "enter it, or the environment variable that holds it",
    )


# --- rendering -----------------------------------------------------------------------------


def _form(
    request: Request,
    service: OpsLoop,
    kind: str,
    state: FormState,
    *,
    editing: StoredSource | None,
    notes: str | None = None,
    example: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    card = next(card for card in CARDS if card.kind == kind)
    action = f"/sources/{editing.name}/edit" if editing else f"{NEW}/{kind}"
    context: dict[str, Any] = {
        "kind": kind,
        "card": card,
        "groups": GROUPS[kind],
        "common": source_forms.COMMON,
        "state": state,
        "values": state.values,
        "errors": state.errors,
        "advanced_slot": ADVANCED,
        "editing": editing,
        "action": action,
        "notes": notes,
        "example": example,
        "mappings": service.ingest.builtin_mappings(),
        "rules": source_forms.RULES,
        "may_generate": kind in ("webhook", "segment"),
        "generate": state.values.get(
            "generate_secret",
            editing is None
            and (kind == "segment" or state.values.get("verify") in ("hmac", "standard")),
        ),
    }
    if is_htmx(request) and request.method == "POST":
        return render(request, "source_form_body.html", context, status_code=status_code)
    return render(request, "source_form.html", context, status_code=status_code, active=ACTIVE)


def _source(service: OpsLoop, name: str) -> StoredSource | None:
    if not re.fullmatch(SOURCE_NAME, name):
        return None  # no source can have this name; the page says so as for any unknown one
    try:
        return service.ingest.get_source(name)
    except NotFound:
        return None


def _no_source(request: Request, name: str) -> HTMLResponse:
    return render(request, "source_not_found.html", {"name": name}, status_code=404, active=ACTIVE)


def _missing(request: Request, message: str) -> HTMLResponse:
    return render(
        request, "source_not_found.html", {"message": message}, status_code=404, active=ACTIVE
    )
