"""When a scheduled playbook runs: a cron expression or an interval, in a named time zone.

`0 8 * * MON` in `Europe/Berlin` is 08:00 Berlin time every Monday, whatever the offset that
week: cronsim follows cron's rules across daylight saving (a time skipped in spring runs at the
first minute after the jump; one repeated in autumn runs once). An interval (`6h`, `1d`) counts
from midnight UTC, 1 January 1970, so it ignores the time zone; use cron for wall-clock times.

Each due time is a run's identity: the service claims (playbook, due time) once, so a restart
never runs a period twice, and after downtime only the latest missed period runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from opsloop.core.durations import in_words, parse_duration

SCHEDULED_EVENT = "schedule.run"
"""The type of the event a scheduled run stores for each subject it decides about: the
decision's anchor in the ledger (source `schedule`, occurred at the due time)."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SHORTEST = timedelta(minutes=1)
"""Schedules are checked once a minute; a shorter interval could not be kept."""


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str | None
    every: timedelta | None
    zone: ZoneInfo

    def latest(self, now: datetime) -> datetime:
        """The latest due time at or before `now`, in UTC."""
        if self.every is not None:
            periods = (now - EPOCH) // self.every
            return EPOCH + periods * self.every
        assert self.cron is not None
        start = now.astimezone(self.zone).replace(microsecond=0) + timedelta(seconds=1)
        due: datetime = next(iter(CronSim(self.cron, start, reverse=True)))
        return due.astimezone(UTC)

    def upcoming(self, now: datetime, count: int) -> list[datetime]:
        """The next `count` due times after `now`, in UTC."""
        return [due for due, _ in zip(self._after(now), range(count), strict=False)]

    def between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """The due times in [start, end], in UTC, oldest first (a backtest's runs)."""
        for due in self._after(start - timedelta(seconds=1)):
            if due > end:
                return
            if due >= start:
                yield due

    def _after(self, now: datetime) -> Iterator[datetime]:
        if self.every is not None:
            due = self.latest(now)
            while True:
                due += self.every
                yield due
        assert self.cron is not None
        for due in CronSim(self.cron, now.astimezone(self.zone).replace(microsecond=0)):
            yield due.astimezone(UTC)

    def describe(self) -> str:
        """`At 08:00 on Monday (Europe/Berlin)`, `Every 6 hours`."""
        if self.every is not None:
            return f"Every {in_words(self.every)}"
        assert self.cron is not None
        return f"{CronSim(self.cron, datetime.now(self.zone)).explain()} ({self.zone.key})"


def parse_schedule(text: str, timezone: str | None) -> Schedule:
    """A schedule from a playbook: a cron expression (5 fields) or an interval such as `6h`.
    Raise ValueError with a message for the playbook's author."""
    zone = parse_zone(timezone or "UTC")
    text = str(text).strip()
    if len(text.split()) == 1:
        every = parse_duration(text)
        if every < SHORTEST:
            raise ValueError("schedules are checked once a minute: use 1m or longer")
        return Schedule(None, every, zone)
    if len(text.split()) != 5:
        raise ValueError(
            f"{text!r} is neither a cron expression (five fields: minute hour day month "
            "weekday, e.g. `0 8 * * MON`) nor an interval such as 6h or 1d"
        )
    try:
        CronSim(text, datetime.now(zone))
    except CronSimError as exc:
        raise ValueError(f"{text!r} is not a valid cron expression: {exc}") from None
    return Schedule(text, None, zone)


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone: use a name such as Europe/Berlin, America/New_York "
            "or UTC"
        ) from None
