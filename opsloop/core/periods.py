"""Periods the metrics compare: a baseline against the recent past, and ISO weeks.

A baseline is written `30d` (the first 30 days of the data being measured) or as dates
`2026-01-01..2026-01-31` (both days included). The recent period has the baseline's length
and ends now, but never starts before the baseline ends, so the two never overlap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from opsloop.core.durations import parse_duration
from opsloop.core.times import event_time

_RANGE = re.compile(r"^\s*(\S+)\s*\.\.\s*(\S+)\s*$")


@dataclass(frozen=True, slots=True)
class Period:
    """[since, until): `since` included, `until` not."""

    since: datetime
    until: datetime

    def __contains__(self, at: datetime) -> bool:
        return self.since <= at < self.until

    @property
    def length(self) -> timedelta:
        return self.until - self.since


@dataclass(frozen=True, slots=True)
class Baseline:
    text: str
    length: timedelta | None = None
    """`30d`: the first `length` of the data."""
    period: Period | None = None
    """`START..END`: these dates, whatever the data."""

    def periods(self, first: datetime | None, now: datetime) -> tuple[Period, Period | None] | None:
        """(baseline, recent) for data that starts at `first`; None without data (and without
        explicit dates); recent is None while the baseline has not ended."""
        if self.period is not None:
            baseline = self.period
        elif first is None or self.length is None:
            return None
        else:
            baseline = Period(first, first + self.length)
        since = max(baseline.until, now - baseline.length)
        return baseline, (Period(since, now) if since < now else None)


DEFAULT_BASELINE = "30d"


def parse_baseline(text: str) -> Baseline:
    """`30d` or `2026-01-01..2026-01-31`; ValueError with the accepted forms otherwise."""
    match = _RANGE.match(text)
    if match is None:
        try:
            length = parse_duration(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a baseline; write a length such as 30d (the first 30 days of "
                "data) or dates such as 2026-01-01..2026-01-31"
            ) from None
        if length <= timedelta(0):
            raise ValueError(f"{text!r}: the baseline needs a length above zero")
        return Baseline(text, length=length)
    since, until = _moment(match[1], end=False), _moment(match[2], end=True)
    if until <= since:
        raise ValueError(f"{text!r}: the baseline ends before it starts")
    return Baseline(text, period=Period(since, until))


def _moment(text: str, *, end: bool) -> datetime:
    """A date (the whole day: an end date counts up to midnight after it) or a time (UTC)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        # In the range events are kept in (a ValueError naming it otherwise): the day after
        # 9999-12-31 would overflow.
        start = event_time(datetime.combine(day, time(), UTC))
        return start + timedelta(days=1) if end else start
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write 2026-01-31 or 2026-01-31T12:00") from None
    return event_time(at)  # a time without a zone is UTC


def iso_week(at: datetime) -> str:
    """`2026-W10`: the ISO 8601 week (Monday to Sunday, UTC) the moment falls in."""
    year, week, _ = at.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def week_start(at: datetime) -> date:
    """The Monday of `at`'s ISO week."""
    day = at.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())
