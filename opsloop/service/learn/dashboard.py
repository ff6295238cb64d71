"""What the dashboard shows: the seed metrics per playbook, week by week and against the
baseline (`metrics.report`), plus the numbers that ask for someone's attention (reviews
waiting, deliveries that failed for good) and an estimate of the time OpsLoop saved.

Time saved, per playbook: the recent period's timed actions times how much sooner they came
than in the baseline period (the baseline's median time to action minus the recent period's).
It is built from the very numbers the time-to-action comparison shows, so the two cannot
disagree: a recent median slower than the baseline's makes it negative (time lost), a faster one
positive. It is an estimate of waiting time saved for the people the actions were for, not a
measure of staff hours. (Adding up the weeks since the baseline ended instead would measure
another span than the comparison's recent period, and could read "saved" beside a slower time
to action.)
"""

from __future__ import annotations

from opsloop.core.errors import NotFound
from opsloop.service.context import Context
from opsloop.service.learn import metrics
from opsloop.service.learn.views import Dashboard, DashboardPlaybook, PlaybookMetrics
from opsloop.store import actions as action_store
from opsloop.store import metrics as metric_store


def dashboard(ctx: Context, *, playbook: str | None = None) -> Dashboard:
    """The metrics report by week with each playbook's `time_saved_seconds`, and the totals
    the dashboard shows above them. NotFound for a playbook that does not exist."""
    if playbook is not None:
        with ctx.db.read() as conn:
            names = [row["name"] for row in metric_store.playbook_names(conn)]
        if playbook not in names:
            known = ", ".join(names) or "none yet"
            raise NotFound(f"there is no playbook called {playbook!r} (playbooks: {known})")
    report = metrics.report(ctx, playbook=playbook, by="week")
    with ctx.db.read() as conn:
        by_status = action_store.count_by_status(conn)
        dead = by_status.get("dead", 0)
    rows: list[DashboardPlaybook] = [
        {**row, "time_saved_seconds": time_saved(row)} for row in report["playbooks"]
    ]
    saved = [row["time_saved_seconds"] for row in rows if row["time_saved_seconds"] is not None]
    return {
        "playbooks": rows,
        "csat": report["csat"],
        "by": report["by"],
        "baseline": report["baseline"],
        "decisions": sum(row["total"] for row in rows),
        "pending_reviews": sum(row["pending_reviews"] for row in rows),
        "failed_deliveries": int(dead),
        "retrying_deliveries": int(by_status.get("retrying", 0)),
        "time_saved_seconds": sum(saved) if saved else None,
    }


def time_saved(row: PlaybookMetrics) -> float | None:
    """Seconds of waiting saved in the recent period against the baseline (see the module
    docstring), negative when actions came later; None while the baseline period has not ended
    or either period has no time to action."""
    versus = row["vs_baseline"]
    if not versus or versus["recent"] is None:
        return None
    medians = versus["median_time_to_action_seconds"]
    before, after = medians["baseline"], medians["recent"]
    if before is None or after is None:
        return None
    return round((before - after) * versus["recent"]["actions_timed"], 1)
