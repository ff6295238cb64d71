"""The playbook form's rows and YAML: a playbook's text read into rows (to fill the form in), the
submitted fields read back into rows, and the rows written as YAML (to check and to save).

YAML stays the source of truth: the form is another way to write it, and its YAML is checked and
applied exactly as the text editor's is (opsloop/web/pages/playbook_form.py). The form edits the
common shapes: name, description, subject, mode, the trigger's events and cooldown, features,
scorecard lines and the score, rules and `otherwise`, options and their actions, the outcome.

Nothing else is dropped. Every mapping the form edits (the playbook, its trigger and outcome, a
feature, a line, a rule, an option, an action) carries the keys it has no field for — decision
tables, guardrails, a model, text triage, a review deadline, an absence or a schedule, an
option's sequence, an action's `cc` — as YAML in a hidden field beside its fields, and they are
written back as they were. Comments are not kept, except the file's opening comment lines.

Pure functions on plain values: no request, no service.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from opsloop.core.errors import PlaybookInvalid
from opsloop.core.playbooks import FEATURE_KINDS, GUARDED_KINDS, parse_playbook
from opsloop.core.yaml_source import dotted, parse_yaml

Codec = Literal["text", "name", "duration", "expression", "events", "points", "yaml", "flag"]
"""How a YAML value is shown in a field, and the field's text written back."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    """The field's name in its row: `features-3-<name>`."""
    key: str
    """The YAML key it writes."""
    codec: Codec = "text"


TOP_FIELDS = (
    Field("name", "name", "name"),
    Field("description", "description"),
    Field("subject", "subject", "name"),
    Field("mode", "mode", "name"),
    Field("score", "score", "expression"),
    Field("otherwise", "otherwise", "name"),
)
TRIGGER_FIELDS = (Field("events", "events", "events"), Field("cooldown", "cooldown", "duration"))
OUTCOME_FIELDS = (
    Field("success", "success", "events"),
    Field("failure", "failure", "events"),
    Field("within", "within", "duration"),
)
FEATURE_FIELDS = (
    Field("field", "field", "name"),
    Field("within", "within", "duration"),
    Field("where", "where", "expression"),
    Field("default", "default", "yaml"),
    Field("label", "label"),
)
FEATURE_SOURCE: dict[str, Codec] = {
    "trait": "name",
    "formula": "expression",
    **dict.fromkeys(("count", "sum", "avg", "min", "max", "last", "days_since"), "events"),
}
"""The codec of a feature's kind key (`trait: plan`, `count: page.viewed`, `formula: ...`),
shown in the row's `source` field."""
LINE_FIELDS = (
    Field("label", "label"),
    Field("when", "when", "expression"),
    Field("points", "points", "points"),
)
RULE_FIELDS = (
    Field("label", "label"),
    Field("when", "when", "expression"),
    Field("choose", "choose", "name"),
)
OPTION_FIELDS = (Field("label", "label"), Field("description", "description"))
WEBHOOK_FIELDS = (
    Field("endpoint", "endpoint", "name"),
    Field("url", "url"),
    Field("data", "body", "yaml"),
)
SOURCE_MISSING = {
    "trait": "name the trait it reads, e.g. company_size",
    "formula": "write the formula, e.g. visits_7d + 2 * demo_requests_30d",
}
"""What a feature of a kind without its `source` is told; event kinds: `EVENTS_MISSING`."""
EVENTS_MISSING = "name the event types it reads, e.g. page.viewed"
ACTION_FIELDS: dict[str, tuple[Field, ...]] = {
    "email": (Field("to", "to"), Field("subject", "subject"), Field("body", "body")),
    "notify": (Field("channel", "channel", "name"), Field("text", "text")),
    "webhook": WEBHOOK_FIELDS,
    "task": (
        Field("title", "title"),
        Field("assignee", "assignee"),
        Field("due_in", "due_in", "duration"),
        Field("notes", "notes"),
    ),
    "update_traits": (Field("traits", "traits", "yaml"),),
    **dict.fromkeys(sorted(GUARDED_KINDS), WEBHOOK_FIELDS),
}
ACTION_COMMON = (Field("sensitive", "sensitive", "flag"),)

LISTS = ("features", "scorecard", "rules", "options")
SECTIONS = ("trigger", *LISTS, "outcome")
"""Top-level keys the form has sections for."""
CANONICAL = ("name", "description", "subject", "mode", "trigger", "features", "scorecard",
             "score", "rules", "tables", "otherwise", "options", "guardrails", "outcome",
             "autonomy", "model", "text", "review", "report")  # fmt: skip
"""Where a key the original file did not have goes: the order of docs/playbooks.md."""

_TEXT_NAMES = {
    "features": ("name", "source", *(f.name for f in FEATURE_FIELDS)),
    "scorecard": tuple(f.name for f in LINE_FIELDS),
    "rules": tuple(f.name for f in RULE_FIELDS),
    "options": ("name", *(f.name for f in OPTION_FIELDS)),
    "actions": tuple(sorted({f.name for fields in ACTION_FIELDS.values() for f in fields})),
}
"""The fields whose text makes a row worth writing; a row with none of them filled in (and
nothing kept) is a blank row, left out."""

FIELD_NAME = re.compile(
    r"(features|scorecard|rules|options)-(\d{1,6})-(?:actions-(\d{1,6})-)?([a-z_]+)"
)
ROW_TARGET = re.compile(r"(features|scorecard|rules|options)-(\d{1,6})(?:-actions-(\d{1,6}))?")
ONE_EVENT_TYPE = re.compile(r"[^\s,]+")
WHOLE = re.compile(r"[+-]?\d{1,18}")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class FormUnreadable(Exception):
    """The YAML has a shape the form cannot show; the message says which part."""


@dataclass
class Row:
    """One mapping of the form: a feature, a scorecard line, a rule, an option, an action, or
    the playbook's own keys, its trigger and its outcome."""

    key: int = 0
    """Its number in the field names (`features-3-name`); a row added later takes the next."""
    values: dict[str, str] = field(default_factory=dict)
    """Each field's text."""
    kept: dict[Any, Any] = field(default_factory=dict)
    """Its keys the form has no field for, written back as they were."""
    actions: list[Row] = field(default_factory=list)
    """An option's actions."""

    def get(self, name: str) -> str:
        return self.values.get(name, "")


@dataclass
class PlaybookForm:
    top: Row = field(default_factory=Row)
    trigger: Row = field(default_factory=Row)
    outcome: Row = field(default_factory=Row)
    features: list[Row] = field(default_factory=list)
    scorecard: list[Row] = field(default_factory=list)
    rules: list[Row] = field(default_factory=list)
    options: list[Row] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    """The top-level keys in the order of the file the form was filled from."""
    header: str = ""
    """The comment lines that open the file, kept at its top."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(field, message): what could not be read from the submitted fields."""

    def rows(self, section: str) -> list[Row]:
        rows: list[Row] = getattr(self, section)
        return rows


@dataclass(frozen=True)
class Built:
    """The form written as YAML."""

    text: str
    places: dict[str, str]
    """Dotted YAML path (`scorecard[0].when`, as validation names it) → the form's field, row
    or section it came from (`scorecard-3-when`)."""
    errors: list[tuple[str, str]]
    """(field, message): what the form itself refuses, such as two features of one name."""

    def place(self, path: str) -> str | None:
        """The form's field, row or section for a problem at `path`: the deepest one written
        there (`options.hot.actions[0].body.text` → the action's body field)."""
        while path:
            if path in self.places:
                return self.places[path]
            shorter = re.sub(r"(\[\d+\]|\.[^.\[\]]*)$", "", path)
            if shorter == path:
                return None
            path = shorter
        return None


# --- YAML → the form -------------------------------------------------------------------------


def read_playbook(text: str) -> PlaybookForm:
    """The form filled from a playbook's YAML; FormUnreadable when a part has a shape the form
    cannot show (a stored version passed validation, so only if the language changed since)."""
    try:
        data = parse_yaml(text, "playbook.yaml").data
    except PlaybookInvalid as exc:
        raise FormUnreadable(f"its YAML does not parse ({exc.problems[0].message})") from None
    if not isinstance(data, dict):
        raise FormUnreadable("it is not a mapping of keys to values")
    form = PlaybookForm(order=[str(key) for key in data], header=_header(text))
    form.top = _row(0, {k: v for k, v in data.items() if k not in SECTIONS}, TOP_FIELDS)
    if "trigger" in data:
        trigger = data["trigger"]
        if isinstance(trigger, str | list):
            trigger = {"events": trigger}  # the shorthand `trigger: lead.created`
        form.trigger = _row(0, _mapping(trigger, "the trigger"), TRIGGER_FIELDS)
    if data.get("outcome") is not None:
        form.outcome = _row(0, _mapping(data["outcome"], "the outcome"), OUTCOME_FIELDS)
    for index, (name, spec) in enumerate(_named(data.get("features"), "features")):
        form.features.append(_feature_row(index, name, _mapping(spec, f"the feature {name}")))
    for section, fields in (("scorecard", LINE_FIELDS), ("rules", RULE_FIELDS)):
        for index, item in enumerate(_listed(data.get(section), section)):
            form.rows(section).append(_row(index, _mapping(item, f"a {section} entry"), fields))
    for index, (name, spec) in enumerate(_named(data.get("options"), "options")):
        spec = dict(_mapping(spec, f"the option {name}"))
        actions = _listed(spec.pop("actions", []), f"the actions of {name}")
        option = _row(index, spec, OPTION_FIELDS)
        option.values["name"] = name
        option.actions = [
            _action_row(number, _mapping(action, f"an action of {name}"))
            for number, action in enumerate(actions)
        ]
        form.options.append(option)
    return form


def _row(key: int, mapping: Mapping[Any, Any], fields: tuple[Field, ...]) -> Row:
    row = Row(key)
    by_key = {f.key: f for f in fields}
    for name, value in mapping.items():
        spec = by_key.get(name)
        text = _show(spec.codec, value) if spec else None
        if spec is None or text is None:
            row.kept[name] = value
        else:
            row.values[spec.name] = text
    return row


def _feature_row(key: int, name: str, spec: Mapping[Any, Any]) -> Row:
    rest = dict(spec)
    kind, source = "", None
    for candidate in FEATURE_KINDS:
        # A kind the form has no field for (a `forecast:` block) stays as written, kept.
        if candidate in rest and candidate in FEATURE_SOURCE:
            source = _show(FEATURE_SOURCE[candidate], rest[candidate])
            if source is not None:
                kind = candidate
                del rest[candidate]
                break
    row = _row(key, rest, FEATURE_FIELDS)
    row.values.update(name=name, kind=kind, source=source or "")
    return row


def _action_row(key: int, spec: Mapping[Any, Any]) -> Row:
    rest = dict(spec)
    kind = rest.pop("kind", "")
    if not isinstance(kind, str):
        rest["kind"], kind = kind, ""
    row = _row(key, rest, ACTION_COMMON + ACTION_FIELDS.get(kind, ()))
    row.values["kind"] = kind
    return row


def _mapping(value: Any, what: str) -> Mapping[Any, Any]:
    if isinstance(value, dict):
        return value
    raise FormUnreadable(f"{what} is not a mapping of keys to values")


def _listed(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise FormUnreadable(f"its {what} is not a list")


def _named(value: Any, what: str) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict) and all(isinstance(name, str) for name in value):
        return list(value.items())
    raise FormUnreadable(f"its {what} are not a mapping of names to definitions")


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line)
        elif line.strip():
            break
    return "\n".join(lines)


def _show(codec: Codec, value: Any) -> str | None:
    """The field text for a YAML value, or None when the field cannot hold it (then the key is
    kept as it is)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if codec in ("text", "name"):
        return value if isinstance(value, str) else None
    if codec in ("duration", "expression", "points"):
        return value if isinstance(value, str) else str(value) if number else None
    if codec == "events":
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list) and items and all(_one_event_type(item) for item in items):
            return ", ".join(items)
        return None
    if codec == "flag":
        return ("true" if value else "") if isinstance(value, bool) else None
    return yaml_text(value)


def _one_event_type(item: Any) -> bool:
    return isinstance(item, str) and ONE_EVENT_TYPE.fullmatch(item) is not None


# --- the submitted fields → the form ----------------------------------------------------------


def read_fields(fields: Mapping[str, str]) -> PlaybookForm:
    """The form as the browser submitted it: `name`, `trigger-events`, `features-3-kind`,
    `options-1-actions-0-to`, each row's `...-kept` and the page's `kept`, `order`, `header`."""
    form = PlaybookForm(header=fields.get("header", ""))
    form.order = [str(key) for key in _kept_value(form, "order", fields.get("order", ""), [])]
    form.top = _fields_row(form, fields, "", TOP_FIELDS)
    form.trigger = _fields_row(form, fields, "trigger", TRIGGER_FIELDS)
    form.outcome = _fields_row(form, fields, "outcome", OUTCOME_FIELDS)
    rows: dict[str, dict[int, Row]] = {section: {} for section in LISTS}
    actions: dict[int, dict[int, Row]] = {}
    for name, value in fields.items():
        found = FIELD_NAME.fullmatch(name)
        if found is None:
            continue
        section, key, action_key, part = found.groups()
        if action_key is not None and section != "options":
            continue
        row = rows[section].setdefault(int(key), Row(int(key)))
        if action_key is not None:
            row = actions.setdefault(int(key), {}).setdefault(int(action_key), Row(int(action_key)))
        if part == "kept":
            row.kept = _kept_value(form, name.removesuffix("-kept"), value, {})
        else:
            row.values[part] = value
    for section in LISTS:
        form.rows(section).extend(row for _, row in sorted(rows[section].items()))
    for option in form.options:
        option.actions = [row for _, row in sorted(actions.get(option.key, {}).items())]
    return form


def _fields_row(
    form: PlaybookForm, fields: Mapping[str, str], prefix: str, specs: tuple[Field, ...]
) -> Row:
    row = Row()
    for spec in specs:
        row.values[spec.name] = fields.get(_id(prefix, spec.name), "")
    kept = _id(prefix, "kept")
    row.kept = _kept_value(form, prefix or "kept", fields.get(kept, ""), {})
    return row


def _kept_value(form: PlaybookForm, target: str, text: str, empty: Any) -> Any:
    """A hidden field's YAML; a damaged one (the page was tampered with) is an error."""
    if not text.strip():
        return empty
    try:
        value = parse_yaml(text, "form").data
    except PlaybookInvalid:
        value = None
    if type(value) is type(empty):
        return value
    form.errors.append((target, "the parts the form keeps could not be read: reload the page"))
    return empty


def _id(prefix: str, name: str) -> str:
    return f"{prefix}-{name}" if prefix else name


# --- rows added and removed without JavaScript -------------------------------------------------


def change_rows(form: PlaybookForm, op: str) -> bool:
    """`add:features`, `add:options-2-actions`, `remove:scorecard-3`, `remove:options-2-actions-0`:
    what the form's Add and Remove buttons do when no script handles them. False when `op` names
    nothing there."""
    verb, _, target = op.partition(":")
    if verb == "add":
        if target in LISTS:
            rows = form.rows(target)
            rows.append(new_row(target, _next(rows)))
            return True
        found = re.fullmatch(r"options-(\d{1,6})-actions", target)
        option = _find(form.options, int(found.group(1))) if found else None
        if option is not None:
            option.actions.append(new_row("actions", _next(option.actions)))
            return True
        return False
    found = ROW_TARGET.fullmatch(target) if verb == "remove" else None
    if found is None:
        return False
    section, key, action_key = found.groups()
    rows = form.rows(section)
    row = _find(rows, int(key))
    if action_key is not None and row is not None and section == "options":
        rows, row = row.actions, _find(row.actions, int(action_key))
    if row is None:
        return False
    rows.remove(row)
    return True


def new_row(section: str, key: int) -> Row:
    """A blank row, as the Add buttons make it."""
    if section == "features":
        return Row(key, {"kind": "trait"})
    if section == "actions":
        return Row(key, {"kind": "email"})
    return Row(key)


def _next(rows: list[Row]) -> int:
    return max((row.key for row in rows), default=-1) + 1


def _find(rows: list[Row], key: int) -> Row | None:
    return next((row for row in rows if row.key == key), None)


# --- the form → YAML ---------------------------------------------------------------------------


def build(form: PlaybookForm) -> Built:
    """The YAML the form says, where each of its values came from, and what the form refuses."""
    writer = _Writer(list(form.errors))
    data = writer.fields(form.top, TOP_FIELDS, "", ())
    trigger = writer.with_kept(
        writer.fields(form.trigger, TRIGGER_FIELDS, "trigger", ("trigger",)), form.trigger
    )
    writer.places["trigger"] = "trigger"
    if trigger:
        data["trigger"] = trigger
    features = writer.features(form.features)
    if features:
        data["features"] = features
    for section, specs in (("scorecard", LINE_FIELDS), ("rules", RULE_FIELDS)):
        items = writer.items(section, form.rows(section), specs)
        if items:
            data[section] = items
    options = writer.options(form.options)
    if options:
        data["options"] = options
    outcome = writer.with_kept(
        writer.fields(form.outcome, OUTCOME_FIELDS, "outcome", ("outcome",)), form.outcome
    )
    writer.places["outcome"] = "outcome"
    if outcome:
        data["outcome"] = outcome
    writer.with_kept(data, form.top)
    header = "\n".join(line for line in form.header.splitlines() if line.startswith("#"))
    text = dump(_ordered(data, form.order))
    return Built(f"{header}\n{text}" if header else text, writer.places, writer.errors)


class _Writer:
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.places: dict[str, str] = {}
        self.errors = errors

    def fields(
        self, row: Row, specs: tuple[Field, ...], prefix: str, path: tuple[str | int, ...]
    ) -> dict[Any, Any]:
        written: dict[Any, Any] = {}
        for spec in specs:
            target = _id(prefix, spec.name)
            self.places[dotted((*path, spec.key))] = target
            try:
                value = _write(spec.codec, row.get(spec.name))
            except ValueError as exc:
                self.errors.append((target, str(exc)))
                continue
            if value is not _OMIT:
                written[spec.key] = value
        return written

    @staticmethod
    def with_kept(written: dict[Any, Any], row: Row) -> dict[Any, Any]:
        """What the form wrote, then the keys it keeps (a field filled in wins over them)."""
        for key, value in row.kept.items():
            written.setdefault(key, value)
        return written

    def named(self, section: str, row: Row, names: set[str], what: str) -> str | None:
        """The row's name, or None (with the reason) when it has none or repeats one."""
        prefix = f"{section}-{row.key}"
        name = row.get("name").strip()
        if not name:
            self.errors.append((f"{prefix}-name", f"give the {what} a name"))
            return None
        if name in names:
            message = f"another {what} is named {name}: give each its own name"
            self.errors.append((f"{prefix}-name", message))
            return None
        names.add(name)
        return name

    def features(self, rows: list[Row]) -> dict[str, Any]:
        self.places["features"] = "features"
        features: dict[str, Any] = {}
        for row in rows:
            name = (
                None
                if _blank(row, "features")
                else self.named("features", row, set(features), "feature")
            )
            if name is None:
                continue
            prefix, path = f"features-{row.key}", ("features", name)
            self.places[dotted(path)] = prefix
            spec: dict[str, Any] = {}
            kind = row.get("kind").strip()
            for candidate in FEATURE_KINDS:
                self.places[dotted((*path, candidate))] = f"{prefix}-source"
            value = _write(FEATURE_SOURCE.get(kind, "text"), row.get("source"))
            if kind and value is _OMIT:
                message = SOURCE_MISSING.get(kind, EVENTS_MISSING)
                self.errors.append((f"{prefix}-source", message))
            elif kind:
                spec[kind] = value
            spec.update(self.fields(row, FEATURE_FIELDS, prefix, path))
            features[name] = self.with_kept(spec, row)
        return features

    def items(self, section: str, rows: list[Row], specs: tuple[Field, ...]) -> list[Any]:
        self.places[section] = section
        items: list[Any] = []
        for row in rows:
            if _blank(row, section):
                continue
            prefix, path = f"{section}-{row.key}", (section, len(items))
            self.places[dotted(path)] = prefix
            items.append(self.with_kept(self.fields(row, specs, prefix, path), row))
        return items

    def options(self, rows: list[Row]) -> dict[str, Any]:
        self.places["options"] = "options"
        options: dict[str, Any] = {}
        for row in rows:
            blank = _blank(row, "options") and all(_blank(a, "actions") for a in row.actions)
            name = None if blank else self.named("options", row, set(options), "option")
            if name is None:
                continue
            prefix, path = f"options-{row.key}", ("options", name)
            self.places[dotted(path)] = prefix
            spec = self.fields(row, OPTION_FIELDS, prefix, path)
            actions: list[dict[Any, Any]] = []
            for action in row.actions:
                if _blank(action, "actions"):
                    continue
                place = f"{prefix}-actions-{action.key}"
                where = (*path, "actions", len(actions))
                self.places[dotted(where)] = place
                self.places[dotted((*where, "kind"))] = f"{place}-kind"
                kind = action.get("kind").strip()
                written: dict[Any, Any] = {"kind": kind} if kind else {}
                specs = ACTION_FIELDS.get(kind, ()) + ACTION_COMMON
                written.update(self.fields(action, specs, place, where))
                actions.append(self.with_kept(written, action))
            if actions:
                spec["actions"] = actions
            options[name] = self.with_kept(spec, row)
        return options


def _blank(row: Row, section: str) -> bool:
    return not row.kept and not any(row.get(name).strip() for name in _TEXT_NAMES[section])


class _Omit:
    """A blank field: its key is left out."""


_OMIT = _Omit()


def _write(codec: Codec, text: str) -> Any:
    """The YAML value of a field's text; ValueError (the message for the field) when the text
    cannot be one."""
    if not text.strip():
        return _OMIT
    if codec in ("name", "duration"):
        return text.strip()
    if codec == "events":
        items = [item for item in re.split(r"[\s,]+", text) if item]
        return items[0] if len(items) == 1 else Flow(items)
    if codec == "points":
        number = text.strip()
        if WHOLE.fullmatch(number):
            return int(number)
        if NUMBER.fullmatch(number) and math.isfinite(float(number)):
            return float(number)
        return text
    if codec == "flag":
        return True if text.strip().lower() in ("true", "on", "yes", "1") else _OMIT
    if codec == "yaml":
        try:
            return parse_yaml(text, "field").data
        except PlaybookInvalid as exc:
            raise ValueError(f"not a YAML value: {exc.problems[0].message}") from None
    return text


def _ordered(data: dict[Any, Any], order: list[str]) -> dict[Any, Any]:
    """The keys in the order the original file had them; a new key where docs/playbooks.md puts
    it, before the first key that comes after it there."""

    def rank(key: Any) -> int:
        return CANONICAL.index(key) if key in CANONICAL else len(CANONICAL)

    keys = [key for key in data if str(key) in order]
    keys.sort(key=lambda key: order.index(str(key)))
    for key in data:
        if key in keys:
            continue
        later = [i for i, existing in enumerate(keys) if rank(existing) > rank(key)]
        keys.insert(later[0] if later else len(keys), key)
    return {key: data[key] for key in keys}


# --- YAML text ---------------------------------------------------------------------------------


class Flow(list[Any]):
    """A list written on one line: `events: [lead.created, demo.requested]`."""


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, text of several lines as `|` blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    )


def _flow(dumper: yaml.SafeDumper, value: Flow) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


def _list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    """A short list of words on one line (`stop_when: [project.created, unsubscribed]`), the
    rest one item a line."""
    short = (
        all(
            isinstance(item, int | float | bool) or (isinstance(item, str) and "\n" not in item)
            for item in value
        )
        and len(", ".join(map(str, value))) <= FLOW_WIDTH
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=short)


FLOW_WIDTH = 72
_Dumper.add_representer(str, _text)
_Dumper.add_representer(Flow, _flow)
_Dumper.add_representer(list, _list)


def dump(data: Any) -> str:
    """YAML as people write it: keys in the given order, a blank line around each top-level
    key whose value takes several lines."""
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1000,
    )
    if not isinstance(data, dict):
        return text
    spaced = _spaced(text)
    try:  # a `|+` text keeps the blank lines after it: then leave the text as it is
        same = parse_yaml(spaced, "form").data == parse_yaml(text, "form").data
    except PlaybookInvalid:
        same = False
    return spaced if same else text


def _spaced(text: str) -> str:
    entries: list[list[str]] = []
    for line in text.splitlines():
        if line[:1] not in (" ", "-", "") or not entries:
            entries.append([line])
        else:
            entries[-1].append(line)
    lines: list[str] = []
    for index, entry in enumerate(entries):
        if index and (len(entry) > 1 or len(entries[index - 1]) > 1):
            lines.append("")
        lines.extend(entry)
    return "\n".join(lines) + "\n"


def yaml_text(value: Any) -> str:
    """A value as one field's YAML: `0`, `unknown`, `'0'` for the text 0, `stage: hot` lines for
    a mapping."""
    if isinstance(value, dict | list) and value:
        return dump(value).rstrip("\n")
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, allow_unicode=True, width=1000)
    return text.removesuffix("...\n").rstrip("\n")


def same_playbook(text: str, other: str) -> bool:
    """Whether two texts are the same playbook: the same model, key order included (features
    are computed top to bottom), whatever their layout and comments."""
    try:
        ours, theirs = parse_playbook(text)[0], parse_playbook(other)[0]
    except PlaybookInvalid:
        return False
    return json.dumps(ours.model_dump(mode="json")) == json.dumps(theirs.model_dump(mode="json"))
