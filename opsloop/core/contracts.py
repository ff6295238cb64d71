"""Data contracts: per event type, which fields an event carries, of what type, which are
required and which values are allowed. Declared in YAML; docs/sources.md#contracts is the
user guide.

```yaml
contracts:
  order.completed:
    description: A paid order
    fields:                                   # the payload
      order_id: {type: string, required: true}
      amount: {type: money, currency: currency, required: true}
      currency: {type: currency, required: true}
      email: email                            # shorthand for {type: email}
    traits: {...}                             # the same rules, for traits
    additional: allow                         # or forbid: fields not listed are refused
```

This module parses and checks the file and reports every problem with its file, line and
field (as PlaybookInvalid, like every YAML file OpsLoop reads). Applying a contract to an event
is `opsloop.perception.normalize.conform`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from opsloop.core.errors import PlaybookInvalid
from opsloop.core.events import EVENT_TYPE_PATTERN, did_you_mean
from opsloop.core.yaml_source import Path, YamlDocument, parse_yaml

FieldType = Literal[
    "string",
    "name",
    "email",
    "phone",
    "integer",
    "number",
    "boolean",
    "money",
    "currency",
    "timestamp",
    "url",
    "object",
    "list",
]
FIELD_TYPES: tuple[FieldType, ...] = get_args(FieldType)
Additional = Literal["allow", "forbid"]

# Which options make sense for which types; anything else is a mistake worth reporting.
NUMERIC_TYPES = frozenset({"integer", "number", "money"})
SIZED_TYPES = frozenset({"string", "name", "list"})
"""`min`/`max` bound the value of numeric types and the length of these."""
TEXT_TYPES = frozenset({"string", "name", "email", "phone", "url", "currency", "timestamp"})
"""Values are text after normalization: `pattern` applies to them."""

# The ISO 4217 codes in use as of the 2024 list, kept here because no installed library carries
# them; the testing code and the "no currency" code are left out on purpose, as an amount in
# them means nothing. A code ISO adds later is refused until it is added here.
_ISO_4217 = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK
    MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN
    PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG
    XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
"""
CURRENCIES = frozenset(_ISO_4217.split())


class FieldRule(BaseModel):
    """What one field must hold. A bare type name in YAML (`email: email`) means `{type: ...}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: FieldType
    required: bool = False
    """The field must be present with a value (null counts as no value unless `nullable`)."""
    nullable: bool = False
    """null is a value: a required field may be null."""
    allowed: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    """A regular expression the whole (normalized) value must match."""
    currency: str | None = None
    """money: the field, in the same block, that holds the amount's ISO 4217 currency."""
    description: str = ""


RULE_OPTIONS = tuple(FieldRule.model_fields)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    fields: dict[str, FieldRule] = {}
    traits: dict[str, FieldRule] = {}
    additional: Additional = "allow"


CONTRACT_KEYS = tuple(_Body.model_fields)


@dataclass(frozen=True, slots=True)
class Contract:
    event_type: str
    description: str
    fields: Mapping[str, FieldRule]
    """Rules for the payload."""
    traits: Mapping[str, FieldRule]
    additional: Additional
    source: str = ""
    """The YAML this contract was read from, as a file that can be applied again."""

    def spec(self) -> dict[str, Any]:
        """The contract as plain JSON values, without defaults: what is stored and compared."""
        body = _Body(
            description=self.description,
            fields=dict(self.fields),
            traits=dict(self.traits),
            additional=self.additional,
        )
        return body.model_dump(mode="json", exclude_defaults=True)

    def same_as(self, other: Contract) -> bool:
        return self.event_type == other.event_type and _canonical(self.spec()) == _canonical(
            other.spec()
        )

    @classmethod
    def from_spec(cls, event_type: str, spec: Mapping[str, Any], source: str = "") -> Contract:
        """A stored contract (already checked when it was applied)."""
        body = _Body.model_validate(spec)
        return cls(event_type, body.description, body.fields, body.traits, body.additional, source)


def _canonical(spec: Mapping[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def parse_contracts(text: str, file: str = "<contracts>") -> list[Contract]:
    """Every contract in a file, in file order; raise PlaybookInvalid listing every problem."""
    document = parse_yaml(text, file)
    data = document.data
    if not isinstance(data, dict) or "contracts" not in data:
        raise PlaybookInvalid(
            [document.problem((), "a contracts file starts with `contracts:`, one key per event")]
        )
    problems = [
        document.problem(
            (key,),
            "unknown key"
            + (did_you_mean(str(key), ["contracts"]) or "; the file holds `contracts:`"),
        )
        for key in data
        if key != "contracts"
    ]
    entries = data["contracts"]
    if not isinstance(entries, dict) or not entries:
        problems.append(
            document.problem(("contracts",), "list contracts by event type, e.g. order.completed:")
        )
        raise PlaybookInvalid(problems)
    contracts: list[Contract] = []
    for event_type, body in entries.items():
        path: Path = ("contracts", str(event_type))
        found: list[tuple[Path, str]] = []
        contract = _contract(str(event_type), body, path, found)
        problems.extend(document.problem(where, message) for where, message in found)
        if contract is not None and not found:
            contracts.append(contract)
    if problems:
        raise PlaybookInvalid(sorted(problems, key=lambda p: p.line or 0))
    return [
        Contract(c.event_type, c.description, c.fields, c.traits, c.additional, source)
        for c, source in zip(contracts, _sources(document, text, contracts), strict=True)
    ]


def _contract(
    event_type: str, body: Any, path: Path, problems: list[tuple[Path, str]]
) -> Contract | None:
    """The contract, with every problem found appended; each rule is checked on its own so
    one typo does not hide the problems of the others."""
    if not re.match(EVENT_TYPE_PATTERN, event_type) or len(event_type) > 100:
        problems.append(
            (path, "an event type looks like `order.completed`: letters, digits, _ or -, dotted")
        )
    if not isinstance(body, dict):
        problems.append((path, "a contract is a mapping: description, fields, traits, additional"))
        return None
    blocks: dict[str, dict[str, FieldRule]] = {"fields": {}, "traits": {}}
    for block, rules in blocks.items():
        given = body.get(block)
        if given is None:
            continue
        if not isinstance(given, dict):
            problems.append(
                ((*path, block), "a mapping of field name to its rule, e.g. email: {type: email}")
            )
            continue
        for name, rule in given.items():
            where = (*path, block, str(name))
            if not isinstance(name, str) or not name.strip():
                problems.append((where, "a field name is text"))
                continue
            try:
                # `email: email` is short for `email: {type: email}`.
                rules[name] = FieldRule.model_validate(
                    {"type": rule} if isinstance(rule, str) else rule
                )
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    loc: Path = tuple(error["loc"])
                    problems.append(((*where, *loc), _message(error, (block, name, *loc))))
        problems.extend(_block_problems(rules, given, (*path, block)))
    rest = {key: value for key, value in body.items() if key not in blocks}
    try:
        parsed = _Body.model_validate(rest)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            problems.append(((*path, *loc), _message(error, loc)))
        return None
    return Contract(
        event_type, parsed.description, blocks["fields"], blocks["traits"], parsed.additional
    )


def _message(error: Any, loc: Path) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        inside_rule = len(loc) == 3 and loc[0] in ("fields", "traits")
        options = RULE_OPTIONS if inside_rule else CONTRACT_KEYS
        return f"unknown key {loc[-1]!r}{did_you_mean(str(loc[-1]), options)} (keys: " + (
            ", ".join(options) + ")"
        )
    if kind == "literal_error" and loc[-1] == "type":
        return (
            f"unknown type {given!r}{did_you_mean(str(given), FIELD_TYPES)} "
            f"(types: {', '.join(FIELD_TYPES)})"
        )
    if kind == "literal_error" and loc[-1] == "additional":
        return "must be allow or forbid"
    if kind == "missing":
        return "is required"
    if kind == "model_type":
        return "a rule is a mapping such as {type: string, required: true}, or a type name"
    return str(error["msg"]).removeprefix("Value error, ")


def _block_problems(
    rules: Mapping[str, FieldRule], given: Mapping[str, Any], path: Path
) -> Iterator[tuple[Path, str]]:
    """Checks across options and fields, on the rules that parsed (`given`: every name)."""
    for name, rule in rules.items():
        where = (*path, name)
        if rule.type == "money":
            if rule.currency is None:
                yield where, "a money field names the field holding its currency: currency: NAME"
            elif rule.currency not in given:
                yield (
                    (*where, "currency"),
                    f"no field named {rule.currency!r} here{did_you_mean(rule.currency, given)}",
                )
            elif rule.currency in rules and rules[rule.currency].type != "currency":
                yield (*where, "currency"), f"{rule.currency!r} must have type: currency"
        elif rule.currency is not None:
            yield (*where, "currency"), "`currency` is for money fields"
        yield from _option_problems(rule, where)


def _option_problems(rule: FieldRule, where: Path) -> Iterator[tuple[Path, str]]:
    for option in ("min", "max"):
        if getattr(rule, option) is not None and rule.type not in NUMERIC_TYPES | SIZED_TYPES:
            yield (
                (*where, option),
                f"`{option}` bounds integer, number and money values, and the length of "
                "string, name and list",
            )
    if rule.min is not None and rule.max is not None and rule.min > rule.max:
        yield (*where, "min"), f"min ({rule.min:g}) is above max ({rule.max:g})"
    if rule.pattern is not None:
        if rule.type not in TEXT_TYPES:
            yield (*where, "pattern"), f"`pattern` is for text; {rule.type} values are not text"
        else:
            try:
                re.compile(rule.pattern)
            except re.error as exc:
                yield (*where, "pattern"), f"not a regular expression: {exc}"
    if rule.allowed is not None:
        if rule.type in ("object", "list"):
            yield (*where, "allowed"), f"`allowed` is for single values, not a whole {rule.type}"
        elif not rule.allowed:
            yield (*where, "allowed"), "list at least one value"
        else:
            for index, value in enumerate(rule.allowed):
                problem = _allowed_problem(rule.type, value)
                if problem:
                    yield (*where, "allowed", index), problem


def _allowed_problem(kind: str, value: Any) -> str | None:
    if kind in NUMERIC_TYPES:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "integer":
            ok = ok and float(value).is_integer()
        return (
            None
            if ok
            else f"{value!r} is not a {'whole number' if kind == 'integer' else 'number'}"
        )
    if kind == "boolean":
        return None if isinstance(value, bool) else f"{value!r} is not true or false"
    if not isinstance(value, str):
        return f"{value!r} is not text"
    if kind == "currency" and value not in CURRENCIES:
        return f"{value!r} is not an ISO 4217 currency code in capitals, such as EUR"
    return None


def _sources(document: YamlDocument, text: str, contracts: list[Contract]) -> Iterator[str]:
    """Each contract's own lines of the file, comments included, as a file of its own; when
    the file is not laid out one key per line (flow style), the contract written out anew."""
    import yaml  # loaded by parse_yaml already; not at start-up (opsloop/core/yaml_source.py)

    lines = text.splitlines()
    starts = [document.lines.get(("contracts", c.event_type)) for c in contracts]
    for index, contract in enumerate(contracts):
        start = starts[index]
        later = [line for line in starts[index + 1 :] if line]
        end = later[0] - 1 if later else len(lines)
        fallback = yaml.safe_dump(
            {"contracts": {contract.event_type: contract.spec()}}, sort_keys=False
        )
        if start is None:
            yield fallback
            continue
        own = lines[start - 1 : end]
        # Comments and blank lines just above the next contract belong to that one.
        while own and (not own[-1].strip() or own[-1].lstrip().startswith("#")):
            own.pop()
        snippet = "contracts:\n" + "\n".join(own) + "\n"
        found: list[tuple[Path, str]] = []
        try:
            # Cut from a file parse_yaml accepted, yet read through it again all the same.
            body = parse_yaml(snippet, "snippet").data["contracts"][contract.event_type]
            again = _contract(contract.event_type, body, (), found)
        except (PlaybookInvalid, KeyError, TypeError):
            again = None
        same = again is not None and not found and again.same_as(contract)
        yield snippet if same else fallback
