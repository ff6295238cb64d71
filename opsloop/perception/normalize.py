"""Clean data first: check an event against its type's contract and normalize its fields.

`conform` returns the event with every declared field normalized (emails lowercased, phone
numbers in E.164, amounts as numbers, timestamps in UTC, names trimmed) or raises InvalidInput
listing every violation, each naming its field (`payload.email`) in words a shop owner can act
on. The caller sends a refused event to quarantine with that reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from opsloop.core.contracts import CURRENCIES, NUMERIC_TYPES, Contract, FieldRule
from opsloop.core.errors import FieldError, InvalidInput
from opsloop.core.events import NewEvent, did_you_mean
from opsloop.core.times import TimeOutOfRange, event_time, unix_time
from opsloop.perception.big_integers import LARGEST, SMALLEST

MILLISECONDS_FROM = 100_000_000_000
"""Unix times above this are milliseconds: as seconds they would be after the year 5000."""

_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


class Refused(ValueError):
    """One value does not fit its type; the message is the whole sentence."""


@dataclass(frozen=True, slots=True)
class Where:
    """What a value is read against: the source's time zone and phone region."""

    zone: ZoneInfo
    region: str | None


def conform(
    event: NewEvent, contract: Contract | None, *, zone: ZoneInfo, region: str | None
) -> NewEvent:
    """The event with its payload and traits normalized by `contract`, or InvalidInput listing
    every violation. Without a contract the event is returned unchanged."""
    if contract is None:
        return event
    where = Where(zone, region)
    errors: list[FieldError] = []
    payload = _block(event.payload, contract.fields, "payload", contract, where, errors)
    traits = _block(event.traits, contract.traits, "traits", contract, where, errors)
    if errors:
        raise InvalidInput(errors)
    return replace(event, payload=payload, traits=traits)


def _block(
    values: Mapping[str, Any],
    rules: Mapping[str, FieldRule],
    prefix: str,
    contract: Contract,
    where: Where,
    errors: list[FieldError],
) -> dict[str, Any]:
    out = dict(values)
    failed: set[str] = set()
    for name, rule in rules.items():
        field = f"{prefix}.{name}"
        try:
            present, value = _field(name in values, values.get(name), rule, where)
        except Refused as exc:
            errors.append(FieldError(field, str(exc)))
            failed.add(name)
            continue
        if present:
            out[name] = value
    for name, rule in rules.items():
        # An amount means nothing without its currency; a bad currency is reported on its own.
        currency = rule.currency
        if rule.type != "money" or currency is None or out.get(name) is None:
            continue
        if currency not in failed and out.get(currency) is None:
            errors.append(
                FieldError(
                    f"{prefix}.{name}",
                    f"the amount {_shown(out[name])} has no currency: "
                    f"{prefix}.{currency} must hold a code such as EUR",
                )
            )
    if contract.additional == "forbid":
        listed = list(rules)
        for name in values:
            if name not in rules:
                known = ", ".join(listed) if listed else "none"
                errors.append(
                    FieldError(
                        f"{prefix}.{name}",
                        f"is not in the {contract.event_type} contract{did_you_mean(name, listed)}"
                        f" (it lists: {known})",
                    )
                )
    return out


def _field(present: bool, value: Any, rule: FieldRule, where: Where) -> tuple[bool, Any]:
    """(present, normalized value); raise Refused when the value breaks the rule."""
    if isinstance(value, str) and not value.strip() and rule.type != "string":
        value = None  # a blank form field means "not given", not a malformed value
    if not present or value is None:
        if rule.required and not (present and rule.nullable):
            raise Refused("is required" if not present else "is required but is empty")
        return present, value
    normalized = NORMALIZERS[rule.type](value, where)
    _check_options(normalized, rule)
    return True, normalized


def _check_options(value: Any, rule: FieldRule) -> None:
    if rule.allowed is not None and value not in rule.allowed:
        choices = ", ".join(str(choice) for choice in rule.allowed)
        raise Refused(f"{_shown(value)} is not one of the allowed values: {choices}")
    if rule.type in NUMERIC_TYPES:
        size, what = value, ""
    elif isinstance(value, str | list):
        size = len(value)
        what = " items" if isinstance(value, list) else " characters"
    else:
        size, what = None, ""
    if size is not None:
        if rule.min is not None and size < rule.min:
            raise Refused(f"{_shown(value)} is less than the minimum {rule.min:g}{what}")
        if rule.max is not None and size > rule.max:
            raise Refused(f"{_shown(value)} is more than the maximum {rule.max:g}{what}")
    if rule.pattern is not None and not re.fullmatch(rule.pattern, str(value)):
        raise Refused(f"{_shown(value)} does not match the pattern {rule.pattern}")


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "…"


# --- one function per type ---------------------------------------------------------------------


def _text(value: Any, what: str = "text") -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Refused(f"must be {what}, not {_kind(value)}")
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    return "text"


def _string(value: Any, where: Where) -> str:
    return _text(value).strip()


def _name(value: Any, where: Where) -> str:
    return " ".join(_text(value).split())


def _email(value: Any, where: Where) -> str:
    # Imported on the first email (as phonenumbers on the first phone): with phonenumbers,
    # 25 ms of start-up that a process normalizing no contact field never needs.
    from email_validator import EmailNotValidError, validate_email

    text = _text(value, "an email address").strip()
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise Refused(f"{text!r} is not an email address: {exc}") from None
    # Mail systems treat addresses case-insensitively in practice; one spelling per person.
    return checked.normalized.lower()


def _phone(value: Any, where: Where) -> str:
    import phonenumbers  # on the first phone number: see `_email`

    text = _text(value, "a phone number").strip()
    international = text.startswith(("+", "00"))
    dialled = "+" + text[2:] if text.startswith("00") else text  # 00 is the + of most dialplans
    if not international and where.region is None:
        raise Refused(
            f"{text!r} has no country code: write it with + (e.g. +351 912 345 678) or set "
            "the source's `region`"
        )
    try:
        number = phonenumbers.parse(dialled, None if international else where.region)
    except phonenumbers.NumberParseException:
        raise Refused(f"{text!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        country = phonenumbers.region_code_for_number(number) or where.region
        raise Refused(
            f"{text!r} is not a valid phone number" + (f" in {country}" if country else "")
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Refused(f"must be {what}, not {_kind(value)}")
    text = str(value).strip().replace("_", "")
    if isinstance(value, str) and "," in text:
        raise Refused(f"{value!r} is not {what}: write it with a dot for decimals, e.g. 12.50")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise Refused(f"{_shown(value)} is not {what}") from None
    if not number.is_finite():
        raise Refused(f"{_shown(value)} is not {what}")
    return number


def _plain(number: Decimal) -> int | float:
    # A whole number beyond 64 bits is kept as a float: stored JSON cannot hold it as an int.
    if number == number.to_integral_value() and SMALLEST <= number <= LARGEST:
        return int(number)
    value = float(number)
    if not math.isfinite(value):
        raise Refused(f"{_shown(number)} is beyond the range of a number")
    return value


def _integer(value: Any, where: Where) -> int:
    number = _decimal(value, "a whole number")
    if number != number.to_integral_value():
        raise Refused(f"{_shown(value)} is not a whole number")
    if not SMALLEST <= number <= LARGEST:
        raise Refused(f"{_shown(value)} is beyond the 64-bit integer range")
    return int(number)


def _number(value: Any, where: Where) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return _plain(_decimal(value, "a number"))


def _money(value: Any, where: Where) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return _plain(_decimal(value, "an amount"))


def _boolean(value: Any, where: Where) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise Refused(f"{_shown(value)} is not true or false")


def _currency(value: Any, where: Where) -> str:
    code = _text(value, "a currency code").strip().upper()
    if code not in CURRENCIES:
        raise Refused(f"{_shown(value)} is not an ISO 4217 currency code, such as EUR or USD")
    return code


def _timestamp(value: Any, where: Where) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Refused(f"must be a date and time, not {_kind(value)}")
    moment: datetime | None = None
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise Refused(
                    f"{value!r} is not a date and time: write ISO 8601 such as "
                    "2024-05-01T09:30:00 (with or without a zone) or unix seconds"
                ) from None
    try:
        if moment is None:
            try:
                seconds = float(value)
            except OverflowError:  # an int with hundreds of digits
                seconds = math.inf
            if not math.isfinite(seconds):
                raise Refused(f"{_shown(value)} is not a date and time")
            if abs(seconds) >= MILLISECONDS_FROM:
                seconds /= 1000
            return unix_time(seconds).isoformat()
        # Written without a zone: it is the source's local time (its `timezone`).
        return event_time(moment, zone=where.zone).isoformat()
    except TimeOutOfRange as exc:
        raise Refused(str(exc)) from None


def _url(value: Any, where: Where) -> str:
    text = _text(value, "a web address").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in text:
        raise Refused(f"{_shown(value)} is not a web address starting with http:// or https://")
    return text


def _object(value: Any, where: Where) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refused(f"must be an object ({{...}}), not {_kind(value)}")
    return value


def _list(value: Any, where: Where) -> list[Any]:
    if not isinstance(value, list):
        raise Refused(f"must be a list ([...]), not {_kind(value)}")
    return value


NORMALIZERS: dict[str, Callable[[Any, Where], Any]] = {
    "string": _string,
    "name": _name,
    "email": _email,
    "phone": _phone,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "money": _money,
    "currency": _currency,
    "timestamp": _timestamp,
    "url": _url,
    "object": _object,
    "list": _list,
}
