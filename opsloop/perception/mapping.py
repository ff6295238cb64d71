"""Declarative mappings: the rules that turn a source's records into OpsLoop events.

```yaml
mapping:
  - when: "type == 'checkout.session.completed'"
    type: order.completed
    subject: "'customer:' + lower(data.object.customer_details.email)"
    occurred_at: "data.object.created"
    id: "id"
    payload:
      amount: "data.object.amount_total / 100"
  - otherwise: ignore
```

Every expression is zen-engine's (opsloop/core/expressions.py), compiled once when the
mapping is loaded. It sees the record's JSON fields by name, the HTTP headers (lowercased) as
`_headers` and the whole record as `_body`. A body that is a JSON list is mapped item by item.
The reference is docs/sources.md#mappings; built-in mappings are YAML files in `mappings/`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from opsloop.core.errors import FieldError, InvalidInput
from opsloop.core.events import EVENT_TYPE_PATTERN, NewEvent, did_you_mean, validate_events
from opsloop.core.expressions import (
    CompiledExpression,
    ExpressionError,
    compile_expression,
    normalize,
)
from opsloop.core.times import event_time, unix_time
from opsloop.core.yaml_source import parse_yaml
from opsloop.perception.records import Record

HEADERS = "_headers"
"""The name expressions read headers by: a leading `_` keeps it clear of most body fields."""
BODY = "_body"
"""The whole record, for a body field that `_headers` hides or a body that is not an object."""

RULE_FIELDS = ("when", "type", "type_expr", "subject", "occurred_at", "id", "payload", "traits")
OTHERWISE = ("ignore", "keep")
TYPE_KEYS = ("type", "event", "event_type", "subscriptionType", "topic")
"""Fields that usually name what a record is; quoted when no rule matches it."""
MILLISECONDS = 1e11
"""A unix time above this is year 5138 in seconds: it is milliseconds."""


@dataclass(frozen=True, slots=True)
class Mapped:
    """What a mapping made of one record."""

    events: list[NewEvent]
    ignored: str | None = None
    """Why nothing was made (`no rule matches type customer.updated`); None when events were."""


@dataclass(frozen=True, slots=True)
class _Rule:
    label: str
    """How messages name the rule: `mapping[2]`."""
    index: int
    when: CompiledExpression | None
    type: str | None
    type_expr: CompiledExpression | None
    subject: CompiledExpression
    occurred_at: CompiledExpression | None
    id: CompiledExpression | None
    payload: dict[str, Any] | None
    """name -> CompiledExpression, a constant, or a nested dict of these."""
    traits: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Mapping:
    """A source's mapping, loaded and compiled; `apply` it to each record."""

    origin: str
    rules: tuple[_Rule, ...]
    otherwise: Literal["ignore", "keep"] = "ignore"

    @classmethod
    def load(cls, spec: str | list[Any] | dict[str, Any], *, origin: str = "mapping") -> Mapping:
        """A built-in mapping by name (compiled once per process), or rules (a list, or one
        dict for a single rule).

        Raise InvalidInput naming each bad rule and field: `mapping[2].subject: ...`."""
        if isinstance(spec, str):
            names = builtin_names()
            if spec not in names:
                raise InvalidInput.single(
                    origin,
                    f"no built-in mapping {spec!r}{did_you_mean(spec, names)} "
                    f"(built-in: {', '.join(names)})",
                )
            return _builtin(spec)
        entries = spec if isinstance(spec, list) else [spec]
        if not isinstance(spec, (list, dict)) or not entries:
            raise InvalidInput.single(
                origin, "must be a built-in mapping's name or a list of rules"
            )

        def label(index: int) -> str:
            return f"{origin}[{index}]" if isinstance(spec, list) else origin

        errors: list[FieldError] = []
        rules: list[_Rule] = []
        otherwise: Literal["ignore", "keep"] = "ignore"
        for index, entry in enumerate(entries):
            where = label(index)
            if isinstance(entry, dict) and "otherwise" in entry:
                if index != len(entries) - 1:
                    errors.append(FieldError(where, "`otherwise` must be the last entry"))
                elif set(entry) != {"otherwise"} or entry["otherwise"] not in OTHERWISE:
                    errors.append(
                        FieldError(f"{where}.otherwise", "write `otherwise: ignore` or `keep`")
                    )
                else:
                    otherwise = entry["otherwise"]
                continue
            rule = _load_rule(entry, index, where, errors)
            if rule is not None:
                rules.append(rule)
        if errors:
            raise InvalidInput(errors)
        if not rules:
            raise InvalidInput.single(
                origin, "has no rules: give at least one `type` and `subject`"
            )
        return cls(origin, tuple(rules), otherwise)

    def apply(
        self, record: Record, *, source: str, received_at: datetime, zone: ZoneInfo
    ) -> Mapped:
        """The events `record` makes. A list body is mapped item by item.

        Raise InvalidInput naming the record's `where`, the rule and the field when an
        expression fails or gives nothing for a part an event needs."""
        if isinstance(record.data, list):
            if not record.data:
                return Mapped([], ignored=f"{record.where} is an empty list")
            items = [
                (f"{record.where} item {i}", _item_key(record.key, i), item)
                for i, item in enumerate(record.data)
            ]
        else:
            items = [(record.where, record.key, record.data)]
        headers = {name.lower(): value for name, value in record.headers.items()}
        events: list[NewEvent] = []
        unmatched: list[str] = []
        for where, key, item in items:
            scope = dict(item) if isinstance(item, dict) else {}
            # Set last, so a body field of the same name cannot pass for the headers.
            scope[HEADERS] = headers
            scope[BODY] = item
            matched = [rule for rule in self.rules if _matches(rule, scope, where)]
            if not matched:
                unmatched.append(_describe(item, headers) or where)
                if self.otherwise == "keep":
                    events.append(self._keep(item, key, source, received_at))
                continue
            for rule in matched:
                # One record making several events: each needs its own default key, or the
                # second would be dropped as a repeat of the first.
                default = key if len(matched) == 1 or key is None else f"{key}#{rule.index}"
                events.append(_make(rule, scope, where, default, source, received_at, zone))
        if events:
            return Mapped(events)
        return Mapped([], ignored="no rule matches " + ", ".join(dict.fromkeys(unmatched)))

    def _keep(self, item: Any, key: str | None, source: str, received_at: datetime) -> NewEvent:
        kind = _kind(source)
        digest = hashlib.sha256(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()
        raw = {
            "type": f"{kind}.received",
            "subject": f"{kind}:{key or digest[:16]}",
            "payload": item if isinstance(item, dict) else {"value": item},
            "idempotency_key": key,
        }
        return validate_events([raw], source=source, received_at=received_at)[0]


@cache
def builtin_names() -> list[str]:
    """The mappings OpsLoop ships: `mapping: stripe` in a source file."""
    folder = resources.files("opsloop.perception") / "mappings"
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


_COMPILED: dict[bytes, Mapping] = {}


def compiled(spec: str | list[Any] | dict[str, Any], *, origin: str = "mapping") -> Mapping:
    """`Mapping.load`, compiled once per distinct definition: each delivery of a source uses its
    mapping, and compiling rules costs milliseconds."""
    key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
    found = _COMPILED.get(key)
    if found is None:
        found = Mapping.load(spec, origin=origin)
        if len(_COMPILED) > 256:  # definitions change rarely; keep the cache bounded anyway
            _COMPILED.clear()
        _COMPILED[key] = found
    return found


@cache
def _builtin(name: str) -> Mapping:
    # Compiling a built-in takes milliseconds; a webhook delivery should not pay it each time.
    # Only packaged files are read here (`name` is one of builtin_names()); they go through
    # parse_yaml anyway, like every YAML OpsLoop reads.
    text = (resources.files("opsloop.perception") / "mappings" / f"{name}.yaml").read_text()
    return Mapping.load(parse_yaml(text, f"{name}.yaml").data["mapping"], origin=name)


# --- loading ---------------------------------------------------------------------------------


def _load_rule(entry: Any, index: int, where: str, errors: list[FieldError]) -> _Rule | None:
    if not isinstance(entry, dict):
        errors.append(FieldError(where, "must be a rule with `type` and `subject`"))
        return None
    before = len(errors)
    for name in entry:
        if name not in RULE_FIELDS:
            hint = did_you_mean(str(name), (*RULE_FIELDS, "otherwise"))
            errors.append(FieldError(f"{where}.{name}", "unknown field" + hint))
    event_type = entry.get("type")
    if ("type" in entry) == ("type_expr" in entry):
        errors.append(
            FieldError(f"{where}.type", "give either `type` (an event type) or `type_expr`")
        )
    elif "type" in entry and not (
        isinstance(event_type, str) and re.match(EVENT_TYPE_PATTERN, event_type)
    ):
        errors.append(
            FieldError(
                f"{where}.type",
                f"{event_type!r} is not an event type like `order.completed`; "
                "use `type_expr` to compute one",
            )
        )
    if "subject" not in entry:
        errors.append(
            FieldError(
                f"{where}.subject",
                "is required: an expression such as \"'customer:' + lower(email)\"",
            )
        )

    def expression(name: str) -> CompiledExpression | None:
        if name not in entry:
            return None
        return _compile(entry[name], f"{where}.{name}", errors)

    when, type_expr, subject = expression("when"), expression("type_expr"), expression("subject")
    occurred_at, key = expression("occurred_at"), expression("id")
    payload = _template(entry, "payload", where, errors)
    traits = _template(entry, "traits", where, errors)
    if len(errors) > before or subject is None:
        return None
    return _Rule(
        label=where,
        index=index,
        when=when,
        type=event_type if isinstance(event_type, str) else None,
        type_expr=type_expr,
        subject=subject,
        occurred_at=occurred_at,
        id=key,
        payload=payload,
        traits=traits,
    )


def _compile(text: Any, field: str, errors: list[FieldError]) -> CompiledExpression | None:
    if not isinstance(text, str) or not text.strip():
        errors.append(FieldError(field, f"must be an expression (text), not {text!r}"))
        return None
    try:
        return compile_expression(text)
    except ExpressionError as exc:
        errors.append(FieldError(field, f"`{text}`: {exc}"))
        return None


def _template(
    entry: dict[str, Any], name: str, where: str, errors: list[FieldError]
) -> dict[str, Any] | None:
    if name not in entry:
        return None
    return _compile_template(entry[name], f"{where}.{name}", errors)


def _compile_template(value: Any, field: str, errors: list[FieldError]) -> dict[str, Any]:
    if not isinstance(value, dict):
        errors.append(FieldError(field, "must map names to expressions"))
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{field}.{key}"
        if isinstance(item, dict):
            out[str(key)] = _compile_template(item, path, errors)
        elif isinstance(item, str):
            out[str(key)] = _compile(item, path, errors)
        elif item is None or isinstance(item, (int, float, bool)):
            out[str(key)] = item  # a constant: text needs quotes inside the expression
        else:
            errors.append(
                FieldError(path, "must be an expression, a number, true/false or a mapping")
            )
    return out


# --- applying --------------------------------------------------------------------------------


def _matches(rule: _Rule, scope: dict[str, Any], where: str) -> bool:
    if rule.when is None:
        return True
    return _evaluate(rule.when, scope, f"{rule.label}.when", where) is True


def _make(
    rule: _Rule,
    scope: dict[str, Any],
    where: str,
    default_key: str | None,
    source: str,
    received_at: datetime,
    zone: ZoneInfo,
) -> NewEvent:
    def part(expression: CompiledExpression, name: str) -> Any:
        return _evaluate(expression, scope, f"{rule.label}.{name}", where)

    def text(expression: CompiledExpression, name: str, *, required: bool) -> str | None:
        value = part(expression, name)
        if value is None or value == "":
            if not required:
                return None
            raise InvalidInput.single(
                f"{rule.label}.{name}", f"`{expression.text}` gave nothing on {where}"
            )
        if isinstance(value, (dict, list, bool)):
            raise InvalidInput.single(
                f"{rule.label}.{name}",
                f"`{expression.text}` gave {value!r} on {where}; it must give text",
            )
        return str(value)

    event_type = rule.type
    if rule.type_expr is not None:
        event_type = text(rule.type_expr, "type_expr", required=True)
    key = text(rule.id, "id", required=False) if rule.id is not None else None
    item: dict[str, Any] = {
        "type": event_type,
        "subject": text(rule.subject, "subject", required=True),
        # An `id` that gives nothing falls back to the record's key, like no `id` at all.
        "idempotency_key": key or default_key,
    }
    if rule.occurred_at is not None:
        value = part(rule.occurred_at, "occurred_at")
        if value is not None and value != "":
            try:
                item["occurred_at"] = instant(value, zone)
            except ValueError as exc:
                raise InvalidInput.single(
                    f"{rule.label}.occurred_at",
                    f"`{rule.occurred_at.text}` gave {value!r} on {where}: {exc}",
                ) from None
    body = scope[BODY]
    if rule.payload is not None:
        item["payload"] = _fill(rule.payload, scope, f"{rule.label}.payload", where)
    else:
        item["payload"] = body if isinstance(body, dict) else {"value": body}
    if rule.traits is not None:
        # A trait that came out null is left out: it must not wipe what the profile knows.
        item["traits"] = _drop_nulls(_fill(rule.traits, scope, f"{rule.label}.traits", where))
    try:
        return validate_events([item], source=source, received_at=received_at)[0]
    except InvalidInput as exc:
        fields = {"idempotency_key": "id", "type": "type" if rule.type else "type_expr"}
        raise InvalidInput(
            [
                FieldError(
                    f"{rule.label}.{fields.get(error.field, error.field)}",
                    f"on {where}: {error.message}",
                )
                for error in exc.errors
            ]
        ) from None


def _fill(
    template: dict[str, Any], scope: dict[str, Any], field: str, where: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in template.items():
        if isinstance(value, CompiledExpression):
            out[name] = _evaluate(value, scope, f"{field}.{name}", where)
        elif isinstance(value, dict):
            out[name] = _fill(value, scope, f"{field}.{name}", where)
        else:
            out[name] = value
    return out


def _drop_nulls(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _drop_nulls(value) if isinstance(value, dict) else value
        for name, value in values.items()
        if value is not None
    }


def _evaluate(expression: CompiledExpression, scope: dict[str, Any], field: str, where: str) -> Any:
    try:
        return _plain(expression.evaluate(scope))
    except ExpressionError as exc:
        raise InvalidInput.single(
            field, f"`{expression.text}` failed on {where}: {_friendly(str(exc))}"
        ) from None


_FUNCTION_FAILED = re.compile(r"^Opcode \w+: Function `(\w+)` failed: (.*)$")
_ARGUMENT = re.compile(r"^Argument on (\d+) is not an? (\w+)$")


def _friendly(message: str) -> str:
    """zen's `Opcode CallFunction: Function `lower` failed: Argument on 0 is not a string`
    as `lower() failed: argument 1 is not a string (a missing field is null)`."""
    function = _FUNCTION_FAILED.match(message)
    if function is None:
        return message
    name, detail = function.groups()
    argument = _ARGUMENT.match(detail)
    if argument:
        position, kind = argument.groups()
        detail = f"argument {int(position) + 1} is not a {kind} (a missing field is null)"
    return f"{name}() failed: {detail}"


def _plain(value: Any) -> Any:
    """zen gives every number as a float, nested ones too; whole numbers go back to ints."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return normalize(value)


def instant(value: Any, zone: ZoneInfo) -> datetime:
    """A time from a mapping: unix seconds (number or digits) or ISO 8601 text; a time
    written without a zone is in `zone`, the source's. Raise ValueError saying why not."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    "not a time: write ISO 8601 (2026-03-02T09:00:00Z) or unix seconds"
                ) from None
            return event_time(parsed, zone=zone)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("not a time: write ISO 8601 text or unix seconds")
    if abs(value) > MILLISECONDS:
        raise ValueError("looks like milliseconds; divide by 1000 to give unix seconds")
    return unix_time(value)


def _describe(item: Any, headers: MappingABC[str, str]) -> str | None:
    """What the record says it is, for `no rule matches type customer.updated`."""
    if isinstance(item, dict):
        for key in TYPE_KEYS:
            if isinstance(item.get(key), str):
                return f"{key} {item[key]}"
    for name, value in headers.items():
        if name.endswith(("-topic", "-event")):
            return f"{name} {value}"
    return None


def _item_key(key: str | None, index: int) -> str | None:
    return f"{key}[{index}]" if key is not None else None


def _kind(source: str) -> str:
    """The source's name as a subject kind and event type prefix (`my-shop` -> `my_shop`)."""
    kind = re.sub(r"[^a-z0-9_]", "_", source.lower())
    return kind if kind[:1].isalpha() else f"source_{kind}"
