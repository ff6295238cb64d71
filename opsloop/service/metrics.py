"""The numbers that say whether OpsLoop is helping, per playbook.

* decision success rate: of decisions that were acted on and whose outcome is known, the share
  followed by the playbook's success event within its window;
* human override rate: of reviewed decisions, the share a person overrode or rejected;
* time to action: median seconds from receiving the triggering event to the first delivered
  action (so review waiting time counts, which is what `auto` saves);
* pending reviews.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

from opsloop.core.decisions import DECISION_STATUSES
from opsloop.service.context import Context
from opsloop.store import metrics as metric_store
from opsloop.store import outcomes as outcome_store


def metrics(
    ctx: Context, *, since: timedelta | None = None, playbook: str | None = None
) -> list[dict[str, Any]]:
    start: datetime | None = ctx.clock() - since if since else None
    with ctx.db.read() as conn:
        names = metric_store.playbook_names(conn)
        by_status = metric_store.decisions_by_status(conn, start)
        outcomes = metric_store.outcomes_of_acted(conn, start)
        delays = metric_store.action_delays(conn, start)
    report = []
    for row in names:
        name = row["name"]
        if playbook and name != playbook:
            continue
        counts = {status: by_status.get(name, {}).get(status, 0) for status in DECISION_STATUSES}
        successes = outcomes.get(name, {}).get("success", 0)
        failures = outcomes.get(name, {}).get("failure", 0)
        reviewed = counts["approved"] + counts["overridden"] + counts["rejected"]
        changed = counts["overridden"] + counts["rejected"]
        waits = delays.get(name, [])
        report.append(
            {
                "playbook": name,
                "mode": row["mode"],
                "decisions": counts,
                "total": sum(counts.values()),
                "pending_reviews": counts["pending"],
                "success_rate": _rate(successes, successes + failures),
                "successes": successes,
                "failures": failures,
                "override_rate": _rate(changed, reviewed),
                "overridden": counts["overridden"],
                "rejected": counts["rejected"],
                "reviewed": reviewed,
                "median_time_to_action_seconds": round(statistics.median(waits), 3)
                if waits
                else None,
                "actions_timed": len(waits),
            }
        )
    return report


def close_outcome_windows(ctx: Context) -> int:
    """Record failures for decisions whose success window closed without a success event."""
    now = ctx.clock()
    closed = 0
    active = ctx.catalog.active()
    with ctx.db.transaction() as tx:
        for playbook in active.values():
            outcome = playbook.compiled.playbook.outcome
            if outcome is not None:
                closed += outcome_store.close_expired(tx.conn, playbook.id, outcome.within, now)
    return closed


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
