"""The data-quality report of one source: how much of what it sent was usable, on time, new.

Figures come from the daily counters written with the events and the quarantine items
themselves (opsloop/service/ingest/storing.py, signals.py): `received` counts the events stored or
found to be repeats, the records refused and the records ignored; `valid_share` is the share of
them that were not refused, `late` the
events that arrived later than the source's `late_after` after they occurred (live signals
only: a backfill is late by design), `duplicates` repeats stored once, `ignored` records no
mapping rule wanted. `top_violations` groups the refused records' reasons, the record-specific
part (which line, which delivery) left out, by field, so one broken field shows as one line.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opsloop.service.context import Context
from opsloop.service.ingest.sources import get
from opsloop.store import quarantine as quarantine_store
from opsloop.store import source_stats

UNREADABLE = "(unreadable line)"

# Quarantine rows read to rank violations: enough for a week of a small business's mistakes.
VIOLATION_SAMPLE = 2000


@dataclass(frozen=True, slots=True)
class Violation:
    field: str
    message: str
    """The newest such message (they name the bad value, so they differ)."""
    count: int
    example: int
    """A quarantined item showing it."""


@dataclass(frozen=True, slots=True)
class Quality:
    source: str
    since: datetime
    days: int
    received: int
    stored: int
    duplicates: int
    rejected: int
    ignored: int
    late: int
    valid_share: float | None
    """(received − rejected) / received; None when nothing was received."""
    late_share: float | None
    """late / stored."""
    top_violations: list[Violation] = field(default_factory=list)
    by_day: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "since": self.since,
            "days": self.days,
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "ignored": self.ignored,
            "late": self.late,
            "valid_share": self.valid_share,
            "late_share": self.late_share,
            "top_violations": [
                {"field": v.field, "message": v.message, "count": v.count, "example": v.example}
                for v in self.top_violations
            ],
            "by_day": self.by_day,
        }


def report(ctx: Context, name: str, *, days: int = 7, top: int = 5) -> Quality:
    """The report; `top=0` leaves out the violations (a listing that does not show them need
    not read the quarantine)."""
    get(ctx, name)  # NotFound for an unknown source
    now = ctx.clock()
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = since.date().isoformat()
    with ctx.db.read() as conn:
        totals = source_stats.totals(conn, name, first_day)
        daily = source_stats.by_day(conn, name, first_day)
        held = quarantine_store.list_held(conn, source=name, limit=VIOLATION_SAMPLE) if top else []
    # By field: the messages name the bad value, which differs from record to record.
    counts: Counter[str] = Counter()
    examples: dict[str, tuple[str, int]] = {}
    for item in held:
        if item["received_at"] < since:
            continue
        for error in item["errors"] or [{"field": "", "message": item["reason"]}]:
            # A line a connector could not read names its file and line as the field.
            key = UNREADABLE if item["file"] else _general(str(error.get("field", "")))
            counts[key] += 1
            examples.setdefault(key, (str(error.get("message", "")), int(item["id"])))
    received = totals["received"]
    return Quality(
        source=name,
        since=since,
        days=days,
        received=received,
        stored=totals["stored"],
        duplicates=totals["duplicates"],
        rejected=totals["rejected"],
        ignored=totals["ignored"],
        late=totals["late"],
        valid_share=(received - totals["rejected"]) / received if received else None,
        late_share=totals["late"] / totals["stored"] if totals["stored"] else None,
        top_violations=[
            Violation(field_, examples[field_][0], count, examples[field_][1])
            for field_, count in counts.most_common(top)
        ],
        by_day=[{k: row[k] for k in ("day", *source_stats.COUNTERS)} for row in daily],
    )


_INDEX = re.compile(r"\[\d+\]")


def _general(field_: str) -> str:
    """`orders.csv line 12: payload.email` → `payload.email`; `events[3].type` → `events[].type`."""
    return _INDEX.sub("[]", field_.rpartition(": ")[2])
