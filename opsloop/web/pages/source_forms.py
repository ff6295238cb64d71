"""The source form: each kind's fields, the definition a filled-in form stands for, the form a
stored definition fills, and where a validation error belongs on it.

A field's name is the dotted path of its key in the YAML definition (`http.auth.type`), so a
form becomes the same document a person would write, and the errors that validation reports
for a path (`http.url: 'ftp://x' is not an http:// or https:// URL`) are shown beside the field
of that path. What the form has no field for is written in its "advanced" YAML, which is merged
over the form's values; an error in a key written there is shown beside it.

The secret is not a field of the definition: it is given apart, as on the command line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from opsloop.core.errors import PlaybookInvalid
from opsloop.core.sources import SourceSpec
from opsloop.core.yaml_source import parse_yaml

Widget = Literal["text", "textarea", "select", "checkbox", "number", "scalar", "mapping"]
RULES = "_rules"
"""The mapping choice that says the rules are written in the advanced YAML."""
ADVANCED = "advanced"
"""The slot of errors in keys the advanced YAML wrote."""
TOP = ""
"""The slot of errors that belong to no field: shown above the form."""
KINDS = ("webhook", "segment", "http", "folder", "sql", "imap")


@dataclass(frozen=True, slots=True)
class Field:
    path: str
    label: str
    widget: Widget = "text"
    help: str = ""
    default: str = ""
    """Shown as the placeholder (text) or chosen (select, checkbox) on a new form."""
    choices: tuple[tuple[str, str], ...] = ()
    required: bool = False

    @property
    def id(self) -> str:
        return "f-" + self.path.replace(".", "-")


@dataclass(frozen=True, slots=True)
class Group:
    key: str
    """The block its fields belong to (`http.pagination`), where that block's own errors go."""
    title: str
    fields: tuple[Field, ...]
    note: str = ""
    secret: bool = False
    """The source's secret is asked for in this group."""


@dataclass(frozen=True, slots=True)
class KindCard:
    kind: str
    title: str
    summary: str


@dataclass
class FormState:
    """A form as shown: its values by path, its errors by slot, the advanced YAML."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    advanced: str = ""

    def add_error(self, slot: str, message: str) -> None:
        self.errors.setdefault(slot, []).append(message)


CARDS = (
    KindCard(
        "webhook",
        "Webhook",
        "A tool posts to OpsLoop when something happens: Stripe, Shopify, HubSpot, Calendly, "
        "a helpdesk, your own code.",
    ),
    KindCard(
        "segment",
        "Website tracking",
        "Your website or app sends Segment-style tracking calls (the OpsLoop tag, analytics.js "
        "or any Segment library).",
    ),
    KindCard(
        "http",
        "HTTP API",
        "OpsLoop reads a JSON API on a schedule, only what changed since the last time.",
    ),
    KindCard(
        "folder",
        "Drop folder",
        "OpsLoop picks up CSV or JSON Lines files dropped in a folder (a till's or an ERP's "
        "exports).",
    ),
    KindCard(
        "sql",
        "SQL query",
        "OpsLoop runs a query against a database on a schedule, from where it left off.",
    ),
    KindCard("imap", "Mailbox", "OpsLoop reads new mail from a support mailbox (read-only)."),
)

VERIFY = (
    ("hmac", "HMAC-SHA256: your own code, Zapier, n8n, Make, GitHub, Typeform"),
    ("stripe", "Stripe (Stripe-Signature)"),
    ("standard", "Standard Webhooks (Svix, Resend, Clerk, another OpsLoop)"),
    ("shopify", "Shopify (X-Shopify-Hmac-Sha256)"),
    ("hubspot", "HubSpot (X-HubSpot-Signature-v3)"),
    ("calendly", "Calendly (Calendly-Webhook-Signature)"),
    ("none", "None: refuse every delivery, unless unsigned ones are allowed below"),
)

_DESCRIPTION = Field("description", "Description", help="For people: what this source sends.")
_ENABLED = Field(
    "enabled",
    "Enabled",
    "checkbox",
    help="A disabled source refuses deliveries and is not synced.",
    default="true",
)
_MAPPING = Field(
    "mapping",
    "Mapping",
    "mapping",
    help="How a record becomes events: a built-in mapping for the sender, none when records are "
    "already OpsLoop events, or your own rules under mapping: in the advanced YAML.",
)
_TIMEZONE = Field(
    "timezone",
    "Time zone",
    help="For timestamps written without one, e.g. Europe/Lisbon.",
    default="UTC",
)
_REGION = Field(
    "region",
    "Country of phone numbers",
    help="Two letters (PT, US) for phone numbers written without +.",
)
_INTERVAL = Field(
    "interval", "Every", help="How often OpsLoop reads it (at least 1m).", default="10m"
)
_SECRET_ENV = Field(
    "secret_env",
    "Or read it from the environment variable",
    help="Instead of storing it: the variable is read each time, so it can be rotated without "
    "an edit here. Leave the secret empty then.",
)
_SCHEDULE = Group("", "Schedule and meaning", (_INTERVAL, _MAPPING, _TIMEZONE, _REGION))

GROUPS: dict[str, tuple[Group, ...]] = {
    "webhook": (
        Group(
            "",
            "How deliveries are checked",
            (
                Field("verify", "Signature", "select", default="hmac", choices=VERIFY),
                Field(
                    "tolerance",
                    "Tolerance",
                    help="How far a signed timestamp may be from this server's clock "
                    "(Stripe, Standard Webhooks, Calendly, HubSpot, HMAC over the timestamp).",
                    default="5m",
                ),
                _SECRET_ENV,
            ),
            secret=True,
        ),
        Group(
            "",
            "HMAC-SHA256 (signature hmac)",
            (
                Field(
                    "signed",
                    "What is signed",
                    "select",
                    default="timestamp",
                    choices=(
                        ("timestamp", "The Unix time, a dot and the body (refuses replays)"),
                        ("body", "The body alone (GitHub, Typeform)"),
                    ),
                ),
                Field("signature_header", "Signature header", default="X-OpsLoop-Signature"),
                Field(
                    "signature_encoding",
                    "Signature encoding",
                    "select",
                    default="hex",
                    choices=(("hex", "hex (GitHub)"), ("base64", "base64 (Typeform)")),
                ),
                Field(
                    "timestamp_header",
                    "Timestamp header",
                    help="When the timestamp is signed.",
                    default="X-OpsLoop-Timestamp",
                ),
            ),
        ),
        Group(
            "",
            "HubSpot (signature hubspot)",
            (
                Field(
                    "public_url",
                    "Address HubSpot calls",
                    help="Only behind a proxy that changes the address: HubSpot signs the URL "
                    "it calls.",
                ),
            ),
        ),
        Group(
            "",
            "Unsigned deliveries (signature none)",
            (
                Field(
                    "allow_unsigned",
                    "Accept unsigned deliveries",
                    "checkbox",
                    help="Anyone who knows the address can then send events as this source, "
                    "and they may not change the email or phone a trusted source set.",
                ),
            ),
        ),
        Group(
            "",
            "What the deliveries mean",
            (
                _MAPPING,
                _TIMEZONE,
                _REGION,
                Field(
                    "dedupe_window",
                    "Repeats within",
                    help="The same event sent again within this window is stored once "
                    "(default 24h, but none for Standard Webhooks; 0s turns it off).",
                ),
            ),
        ),
    ),
    "segment": (
        Group("", "Write key", (_SECRET_ENV,), secret=True),
        Group(
            "segment",
            "Subjects",
            (
                Field(
                    "segment.subject_kind",
                    "Identified people are",
                    help="identify('42') is the subject <kind>:42.",
                    default="lead",
                ),
                Field(
                    "segment.visitor_kind",
                    "Anonymous visitors are",
                    help="Before they are identified: <kind>:<anonymousId>.",
                    default="visitor",
                ),
                Field("segment.group_kind", "Groups are", default="account"),
            ),
        ),
    ),
    "http": (
        Group(
            "http",
            "Request",
            (
                Field(
                    "http.url",
                    "URL",
                    help="https://… of the list to read.",
                    required=True,
                ),
                Field(
                    "http.auth.type",
                    "Authentication",
                    "select",
                    default="none",
                    choices=(
                        ("none", "none"),
                        ("bearer", "Authorization: Bearer <token>"),
                        ("basic", "basic: a user name and the secret as password"),
                        ("header", "the token in a header of its own"),
                    ),
                ),
                Field("http.auth.username", "User name", help="basic authentication."),
                Field("http.auth.header", "Header", help="e.g. X-Api-Key, for header auth."),
                _SECRET_ENV,
            ),
            secret=True,
        ),
        Group(
            "http",
            "Items",
            (
                Field(
                    "http.items",
                    "Where the list is",
                    help="Dotted path to the items in a response, e.g. data; empty when the "
                    "response is the list.",
                ),
                Field("http.key", "Item id", help="Dotted path to each item's id.", default="id"),
            ),
        ),
        Group(
            "http.pagination",
            "Pages",
            (
                Field(
                    "http.pagination.type",
                    "Pagination",
                    "select",
                    default="none",
                    choices=(
                        ("none", "none: one request"),
                        ("page", "page numbers"),
                        ("offset", "offsets"),
                        ("cursor", "a cursor from the response"),
                        ("link", "the Link: rel=next header"),
                    ),
                ),
                Field(
                    "http.pagination.param",
                    "Page parameter",
                    help="Default page, offset or cursor.",
                ),
                Field(
                    "http.pagination.size_param", "Size parameter", help="e.g. per_page or limit."
                ),
                Field("http.pagination.size", "Page size", "number", default="100"),
                Field("http.pagination.start", "First page", "number", default="1"),
                Field(
                    "http.pagination.cursor_path",
                    "Next cursor at",
                    help="Dotted path in the response, e.g. meta.next_cursor.",
                ),
            ),
        ),
        Group(
            "http.incremental",
            "Only what changed",
            (
                Field(
                    "http.incremental.field",
                    "Updated-at field",
                    help="Dotted path in each item, e.g. updated_at.",
                ),
                Field(
                    "http.incremental.param",
                    "Since parameter",
                    help="The query parameter that asks for items updated since, e.g. updated_since.",
                ),
            ),
        ),
        _SCHEDULE,
    ),
    "folder": (
        Group(
            "folder",
            "Folder",
            (
                Field(
                    "folder.path",
                    "Folder",
                    help="On this server, e.g. /srv/drop/till.",
                    required=True,
                ),
                Field(
                    "folder.pattern",
                    "Files",
                    help="A glob; .csv, .jsonl and .ndjson are read.",
                    default="*",
                ),
                Field("folder.done", "Move finished files to", help="Default <folder>/processed."),
                Field("folder.delimiter", "CSV delimiter", default=","),
                Field(
                    "folder.key",
                    "Row id",
                    help="Column holding each row's id; default the file's content and line.",
                ),
            ),
        ),
        _SCHEDULE,
    ),
    "sql": (
        Group(
            "sql",
            "Query",
            (
                Field(
                    "sql.url",
                    "Database URL",
                    help="e.g. postgresql+psycopg://reader@db.internal/erp; leave the password "
                    "out and give it as the secret.",
                    required=True,
                ),
                Field(
                    "sql.query",
                    "Query",
                    "textarea",
                    help="A SELECT; with a cursor column it compares it with :cursor.",
                    required=True,
                ),
                Field(
                    "sql.cursor",
                    "Cursor column",
                    help="Its largest value so far is the next :cursor.",
                ),
                Field("sql.cursor_start", "Cursor start", "scalar", help="e.g. 1970-01-01 or 0."),
                Field("sql.key", "Row id column", default="id"),
                _SECRET_ENV,
            ),
            secret=True,
        ),
        _SCHEDULE,
    ),
    "imap": (
        Group(
            "imap",
            "Mailbox",
            (
                Field("imap.host", "Server", help="e.g. imap.example.com", required=True),
                Field("imap.port", "Port", "number", help="Default 993 with SSL, else 143."),
                Field(
                    "imap.security",
                    "Security",
                    "select",
                    default="ssl",
                    choices=(("ssl", "SSL/TLS"), ("starttls", "STARTTLS"), ("none", "none")),
                ),
                Field("imap.username", "User name", required=True),
                Field("imap.mailbox", "Mailbox", default="INBOX"),
                _SECRET_ENV,
            ),
            secret=True,
        ),
        _SCHEDULE,
    ),
}
"""Each kind's form, in order; every kind also has the name, description and Enabled."""

COMMON = Group("", "Source", (_DESCRIPTION, _ENABLED))


def fields_of(kind: str) -> list[Field]:
    seen: dict[str, Field] = {f.path: f for f in COMMON.fields}
    for group in GROUPS[kind]:
        for one in group.fields:
            seen.setdefault(one.path, one)
    return list(seen.values())


def blank(kind: str) -> FormState:
    """A new form: selects and checkboxes at their defaults, text fields empty (their default
    is the placeholder)."""
    values: dict[str, Any] = {}
    for one in fields_of(kind):
        if one.widget == "checkbox":
            values[one.path] = one.default == "true"
        elif one.widget == "select":
            values[one.path] = one.default
    return FormState(values=values)


def filled(spec: SourceSpec) -> FormState:
    """The form a stored definition fills: each field's value, and the rest of what was written
    (mapping rules, headers, ...) as the advanced YAML."""
    dump = spec.model_dump(mode="json")
    values: dict[str, Any] = {}
    for one in fields_of(spec.kind):
        value = _get(dump, one.path)
        if one.widget == "mapping":
            values[one.path] = value if isinstance(value, str) else RULES if value else ""
        elif one.widget == "checkbox":
            values[one.path] = bool(value)
        else:
            values[one.path] = "" if value is None else str(value)
    rest = spec.written()
    for key in ("name", "kind"):
        rest.pop(key, None)
    for one in fields_of(spec.kind):
        if one.widget == "mapping" and not isinstance(spec.mapping, str):
            continue  # rules stay in the advanced YAML
        _pop(rest, one.path)
    advanced = yaml.safe_dump(rest, sort_keys=False, allow_unicode=True) if rest else ""
    return FormState(values=values, advanced=advanced)


def read(kind: str, form: Mapping[str, Any]) -> tuple[FormState, dict[str, Any]]:
    """The form as posted (to show again) and the definition it stands for, without its name.
    Problems found here (the advanced YAML cannot be read, rules asked for and not written) are
    in the state's errors."""
    state = FormState(advanced=str(form.get(ADVANCED) or ""))
    data: dict[str, Any] = {"kind": kind}
    for one in fields_of(kind):
        if one.widget == "checkbox":
            checked = str(form.get(one.path) or "") in ("on", "true", "1")
            state.values[one.path] = checked
            if checked or one.default == "true":
                _set(data, one.path, checked)
            continue
        text = str(form.get(one.path) or "")
        text = text.strip() if one.widget != "textarea" else text.strip("\n")
        state.values[one.path] = text
        if not text.strip() or (one.widget == "mapping" and text == RULES):
            continue
        _set(data, one.path, _typed(one, text))
    extra = _advanced(state)
    if extra:
        data = _merged(data, extra)
    if state.values.get("mapping") == RULES and "mapping" not in extra:
        state.add_error("mapping", "write the rules under mapping: in the advanced YAML below")
    return state, data


def as_yaml(name: str, data: dict[str, Any]) -> str:
    return yaml.safe_dump({"name": name, **data}, sort_keys=False, allow_unicode=True)


def place(kind: str, path: str, state: FormState) -> str:
    """The slot an error at `path` is shown in: the advanced YAML when it wrote that key, else
    the field of that path, else the block holding it, else above the form."""
    if any(_under(path, written) for written in _paths(_advanced(state, quiet=True))):
        return ADVANCED
    slots = [f.path for f in fields_of(kind)] + [g.key for g in GROUPS[kind] if g.key]
    if path == "secret":
        return path
    found = [slot for slot in slots if _under(path, slot)]
    return max(found, key=len) if found else TOP


# --- helpers ---------------------------------------------------------------------------------


def _typed(one: Field, text: str) -> Any:
    if one.widget == "number" and re.fullmatch(r"-?\d+", text):
        return int(text)
    if one.widget == "scalar" and re.fullmatch(r"-?\d+", text):
        return int(text)  # a cursor that is a number, compared with a number column
    return text


def _advanced(state: FormState, *, quiet: bool = False) -> dict[str, Any]:
    text = state.advanced
    if not text.strip():
        return {}
    try:
        data = parse_yaml(text, "advanced YAML").data
    except PlaybookInvalid as exc:
        if not quiet:
            for problem in exc.problems:
                where = f"line {problem.line}: " if problem.line else ""
                state.add_error(ADVANCED, where + problem.message)
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        if not quiet:
            state.add_error(ADVANCED, "must be keys and values, as in a source's YAML file")
        return {}
    taken = [key for key in ("name", "kind", "secret") if key in data]
    if taken and not quiet:
        state.add_error(
            ADVANCED,
            f"{taken[0]}: is given by the form"
            + (
                " (the secret has its own field, never written in YAML here)"
                if taken[0] == "secret"
                else ""
            ),
        )
    return {key: value for key, value in data.items() if key not in taken}


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _paths(data: dict[str, Any], prefix: str = "") -> list[str]:
    found: list[str] = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            found += _paths(value, path)
        else:
            found.append(path)
    return found


def _under(path: str, slot: str) -> bool:
    return path == slot or path.startswith((slot + ".", slot + "["))


def _get(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


def _pop(data: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    chain = [data]
    for part in parents:
        inner = chain[-1].get(part)
        if not isinstance(inner, dict):
            return
        chain.append(inner)
    chain[-1].pop(last, None)
    for depth in range(len(parents), 0, -1):  # drop blocks left empty
        if not chain[depth]:
            chain[depth - 1].pop(parents[depth - 1], None)
