"""Integers too big to keep exactly: found in JSON text and refused by name, never stored as
rounded floats.

orjson, which reads every JSON body OpsLoop ingests, keeps integers from -2**63 to 2**64-1
exact and silently reads longer ones as floats (`12345678901234567890123` becomes
`1.2345678901234568e+22`). Storing that float would change an order number without a word, and
PostgreSQL's JSONB, the expression language and JavaScript clients could not keep the integer
either; so OpsLoop refuses it, naming the field, and asks for it as a string.

Ingest is hot, so each step runs only when the one before found a reason to:

1. one C-speed pass over the bytes looks for a run of 19 digits: a shorter integer always fits
   (bench/big_integers.py: a few µs for an event, against about 1 ms for the whole request;
   a quarter of orjson's own reading time for a 250 KB batch);
2. when the caller has orjson's reading of the text, a walk over it looks for a float large
   enough to be such an integer (19-digit ids sent as strings stop here);
3. only then is the text read again, exactly, by Python's json, to find and name each one.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from opsloop.core.errors import FieldError, InvalidInput

SMALLEST = -(2**63)
LARGEST = 2**64 - 1
"""The integers a JSON body may hold: what orjson (and so the ledger) keeps exact."""

_DIGITS_AS_NINES = bytes.maketrans(b"012345678", b"999999999")
_LONG_RUN = b"9" * 19
_FLOAT_SMALLEST = float(SMALLEST)
_FLOAT_LARGEST = float(LARGEST)
_SHOWN_DIGITS = 40
_NOT_GIVEN: Any = object()


class _Big:
    """An integer literal beyond the range, kept as its text: a 5,000-digit one would be
    refused by `int()` itself, and only its text is needed."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def shown(self) -> str:
        if len(self.text) <= _SHOWN_DIGITS:
            return self.text
        return f"{self.text[:_SHOWN_DIGITS]}… ({len(self.text.lstrip('-'))} digits)"


def whole_number(text: str) -> int | None:
    """The integer `text` writes (digits after an optional minus), or None when it is beyond
    64 bits: a CSV cell that is then kept as text."""
    # 21 characters hold every integer in range (`-9223372036854775808`, `18446744073709551615`);
    # a longer text is not converted at all (int() refuses 4,300 digits and more).
    if len(text) > 21:
        return None
    value = int(text)
    return value if SMALLEST <= value <= LARGEST else None


def beyond_range(raw: bytes | str, prefix: str = "", *, data: Any = _NOT_GIVEN) -> list[FieldError]:
    """Each integer in the JSON text `raw` that does not fit in 64 bits, named by its path in
    the text (`events[2].payload.order_id`, after `prefix`); empty for nearly every text.
    `raw` must be valid JSON; `data`, orjson's reading of it when the caller has that, spares
    reading the text again when no number in it is large enough to be one."""
    if not _long_digit_run(raw) or (data is not _NOT_GIVEN and not _large_number_in(data)):
        return []
    try:
        return _named(_exact(raw), prefix)
    except RecursionError:  # orjson reads 1,024 levels deep, Python's json a little less
        return [FieldError(prefix or "body", "is nested too deeply to be read")]


def refuse_beyond_range(raw: bytes | str, prefix: str = "", *, data: Any = _NOT_GIVEN) -> None:
    """InvalidInput naming every integer in `raw` beyond 64 bits, if there is any."""
    errors = beyond_range(raw, prefix, data=data)
    if errors:
        raise InvalidInput(errors)


def keep_beyond_range(raw: bytes | str, data: Any) -> Any:
    """`data`, orjson's reading of `raw`, with each integer beyond 64 bits as an
    `orjson.Fragment` of its digits instead of a rounded float: `orjson.dumps` writes it back
    exactly as it came, so a refused item can be kept in quarantine unchanged."""
    if not _long_digit_run(raw) or not _large_number_in(data):
        return data
    try:
        exact = _exact(raw)
        return _fragments(exact) if _named(exact, "") else data
    except RecursionError:
        return data  # `beyond_range` refuses such a text anyway


def _long_digit_run(raw: bytes | str) -> bool:
    text = raw.encode() if isinstance(raw, str) else raw
    return _LONG_RUN in text.translate(_DIGITS_AS_NINES)


def _large_number_in(data: Any) -> bool:
    """Does `data` hold a float as large as an integer beyond 64 bits reads as (or a
    Fragment `keep_beyond_range` made)? A loop, not recursion: it is as quick as orjson's own
    reading of a body, and a deep one cannot exhaust the stack."""
    stack = [data]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif kind is float:
            if not _FLOAT_SMALLEST < value < _FLOAT_LARGEST:
                return True
        elif kind is orjson.Fragment:
            return True
    return False


def _exact(raw: bytes | str) -> Any:
    """`raw` read with every integer exact, those beyond 64 bits as `_Big`."""
    return json.loads(raw, parse_int=_integer)


def _integer(text: str) -> int | _Big:
    value = whole_number(text)
    return _Big(text) if value is None else value


def _named(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, _Big):
        message = f"{value.shown()} is beyond the 64-bit integer range; send it as a string"
        return [FieldError(path or "body", message)]
    found: list[FieldError] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _named(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _named(item, f"{path}[{index}]")
    return found


def _fragments(value: Any) -> Any:
    if isinstance(value, _Big):
        return orjson.Fragment(value.text.encode())
    if isinstance(value, dict):
        return {key: _fragments(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_fragments(item) for item in value]
    return value
