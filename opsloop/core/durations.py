"""Durations written the way people write them in playbooks: `90s`, `15m`, `12h`, `7d`, `2w`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
LONGEST = timedelta(days=36525)
"""100 years: longer is a typo, and `now - 99999999999w` would overflow the calendar."""


def parse_duration(text: str) -> timedelta:
    """Parse `7d` into a timedelta; raise ValueError naming the accepted forms otherwise."""
    match = _PATTERN.match(str(text))
    if not match:
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit: 90s, 15m, 12h, 7d or 2w"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > LONGEST.total_seconds():
        raise ValueError(f"{text!r} is longer than 100 years, the longest duration OpsLoop takes")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def in_words(delta: timedelta) -> str:
    """`1 hour`, `7 days`, `2 weeks`, `90 seconds`."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0 or unit == "second":
            count = seconds // size
            if unit == "day" and count >= 14 and count % 7 == 0:
                unit, count = "week", count // 7  # `2w` reads as 2 weeks, `7d` as 7 days
            return f"{count} {unit}{'' if count == 1 else 's'}"
    raise AssertionError(seconds)  # pragma: no cover - every count of seconds has a unit
