"""The one range of times OpsLoop stores, 1900-01-01 to 2999-12-31 UTC: its ends are kept,
times past them are refused with the range in the message, and the ends of Python's datetime
(where converting to UTC overflows) are refused like any other time outside it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from opsloop.core.periods import parse_baseline
from opsloop.core.times import EARLIEST, LATEST, TimeOutOfRange, event_time, unix_time

RANGE = "outside the times OpsLoop accepts, from 1900-01-01 to 2999-12-31 UTC"


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-23:59",  # the year 10000 in UTC
        "0001-01-01T00:00:00+23:59",  # the year 0 in UTC
        "1899-12-31T23:59:59.999999+00:00",
        "3000-01-01T00:00:00+00:00",
        "1900-01-01T00:30:00+01:00",  # 1899 in UTC
    ],
)
def test_a_time_outside_the_range_is_refused_saying_the_range(text: str) -> None:
    with pytest.raises(TimeOutOfRange) as refused:
        event_time(datetime.fromisoformat(text))
    assert str(refused.value) == f"{text} is {RANGE}"


def test_the_ends_of_the_range_are_kept_in_utc() -> None:
    assert event_time(datetime(1900, 1, 1)) == EARLIEST
    assert event_time(datetime.fromisoformat("3000-01-01T00:59:59.999999+01:00")) == LATEST
    assert event_time(datetime.fromisoformat("2026-03-02T10:00:00+01:00")) == datetime(
        2026, 3, 2, 9, tzinfo=UTC
    )


def test_a_time_without_a_zone_is_read_in_the_zone_given() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    assert event_time(datetime(2026, 3, 2, 18), zone=tokyo) == datetime(2026, 3, 2, 9, tzinfo=UTC)
    with pytest.raises(TimeOutOfRange):
        event_time(datetime(1900, 1, 1, 8), zone=tokyo)  # 1899-12-31 in UTC


@pytest.mark.parametrize(
    "seconds",
    [-2208988801, 32503680000, 1e300, -1e300, 10**400, float("nan"), float("inf")],
    ids=["before-1900", "3000", "1e300", "-1e300", "400-digits", "nan", "inf"],
)
def test_unix_seconds_outside_the_range_are_refused(seconds: float) -> None:
    with pytest.raises(TimeOutOfRange, match=f"^unix time .* is {RANGE}$"):
        unix_time(seconds)


def test_unix_seconds_in_the_range_are_utc_times() -> None:
    assert unix_time(-2208988800) == EARLIEST
    assert unix_time(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert unix_time(32503679999) == datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+23:59..2026-01-01", "2026-01-01..9999-12-31"]
)
def test_a_baseline_past_the_range_is_refused_not_overflowed(text: str) -> None:
    with pytest.raises(ValueError, match=RANGE):
        parse_baseline(text)
