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
