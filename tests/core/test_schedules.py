"""Due times of schedules across daylight saving: each wall-clock time runs once a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opsloop.core.schedules import parse_schedule


def due_times(cron: str, zone: str, start: datetime, hours: int) -> list[str]:
    """Every distinct latest due time seen minute by minute over `hours` hours."""
    schedule = parse_schedule(cron, zone)
    seen = {schedule.latest(start + timedelta(minutes=m)) for m in range(hours * 60)}
    return [at.isoformat() for at in sorted(seen) if at >= start]


def test_a_time_skipped_in_spring_runs_at_the_first_minute_after_the_jump() -> None:
    # 29 March 2026: Berlin's clocks go from 02:00 to 03:00; 02:30 does not exist that night.
    got = due_times("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 0, 0, tzinfo=UTC), 72)
    assert got == [
        "2026-03-28T01:30:00+00:00",  # 02:30 CET
        "2026-03-29T01:00:00+00:00",  # 03:00 CEST, right after the jump
        "2026-03-30T00:30:00+00:00",  # 02:30 CEST
    ]


def test_a_time_repeated_in_autumn_runs_once() -> None:
    # 25 October 2026: 02:00-03:00 happens twice in Berlin; 02:30 runs at its first occurrence.
    got = due_times("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, 0, tzinfo=UTC), 48)
    assert got == ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]


def test_an_interval_counts_from_midnight_utc_and_upcoming_lists_the_next() -> None:
    schedule = parse_schedule("6h", "Europe/Berlin")
    now = datetime(2026, 5, 1, 13, 15, tzinfo=UTC)
    assert schedule.latest(now) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert [at.hour for at in schedule.upcoming(now, 3)] == [18, 0, 6]
    assert schedule.describe() == "Every 6 hours"


@pytest.mark.parametrize(
    ("text", "zone", "says"),
    [
        ("0 8 * * FUNDAY", "UTC", "not a valid cron expression"),
        ("0 8 * *", "UTC", "neither a cron expression"),
        ("20s", "UTC", "once a minute"),
        ("0 8 * * *", "Mars/Olympus", "not a time zone"),
    ],
)
def test_a_bad_schedule_says_what_is_wrong(text: str, zone: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_schedule(text, zone)
