"""The times OpsLoop accepts for what it stores: from 1900-01-01 to 2999-12-31, UTC.

Every time read from outside goes through `event_time` or `unix_time`: an event's
`occurred_at`, a tracking call's `timestamp` (and what `sentAt` corrects), a mapped record's
time, a contract's `timestamp` field, an imported row's time. One range everywhere: old enough
for imported history, four-digit years for SQLite's fixed-width text, and far from the ends of
Python's datetime, where converting to UTC overflows (`9999-12-31T23:59:59-23:59` is in the
year 10000 in UTC, `0001-01-01T00:00:00+23:59` in the year 0).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
RANGE = "from 1900-01-01 to 2999-12-31 UTC"
"""The accepted range in words, as refusals say it."""

_EARLIEST_UNIX = EARLIEST.timestamp()
_END_UNIX = datetime(3000, 1, 1, tzinfo=UTC).timestamp()
"""The first second after the range: LATEST itself has more digits than a float keeps."""


class TimeOutOfRange(ValueError):
    """A time outside `RANGE`; the message is the whole sentence."""


def event_time(moment: datetime, *, zone: tzinfo = UTC) -> datetime:
    """`moment` in UTC, a time written without a zone being in `zone`; TimeOutOfRange when it
    falls outside the accepted range."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
    # Compared before converting: comparing aware times never overflows, astimezone can.
    if not EARLIEST <= aware <= LATEST:
        raise TimeOutOfRange(f"{moment.isoformat()} is outside the times OpsLoop accepts, {RANGE}")
    return aware.astimezone(UTC)


def unix_time(seconds: float) -> datetime:
    """Unix seconds as a UTC time; TimeOutOfRange when outside the accepted range (a number
    too large for a date at all included)."""
    try:
        value = float(seconds)
    except OverflowError:  # an int with hundreds of digits
        value = math.inf if seconds > 0 else -math.inf
    if not (math.isfinite(value) and _EARLIEST_UNIX <= value < _END_UNIX):
        raise TimeOutOfRange(
            f"unix time {value:.15g} is outside the times OpsLoop accepts, {RANGE}"
        )
    # Checked again as a time: rounding to microseconds may carry the last instant over.
    return event_time(datetime.fromtimestamp(value, UTC))
