"""How long the dashboard's numbers take to work out once a business has a year of decisions.

    .venv/bin/python bench/dashboard_scale.py                           # SQLite in a temp dir
    .venv/bin/python bench/dashboard_scale.py --database-url postgresql+psycopg://...
    .venv/bin/python bench/dashboard_scale.py --decisions 200000 --days 365

Stores `--decisions` lead.created events (each decided by the shadow lead-qualification
playbook) whose times spread evenly over the last `--days` days, in 1,000-event batches, then
times `learn.dashboard()` (what the web dashboard shows: every number by ISO week and against
the baseline period) and `learn.metrics()` (the all-time numbers of `GET /api/metrics`).
Prints the median of `--repeats` calls of each. A PostgreSQL database given here should be
empty: the script fills it and leaves it (drop it afterwards).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from harness import shadow_service
from load_client import lead_created


def fill(ops: Any, decisions: int, days: int) -> float:
    """Store and decide `decisions` leads spread over `days`; return the seconds it took."""
    now = datetime.now(UTC)
    step = timedelta(days=days) / max(decisions, 1)
    started = time.perf_counter()
    for start in range(0, decisions, 1000):
        events = []
        for i in range(start, min(start + 1000, decisions)):
            event = lead_created(i, f"lead:y-{i}")
            event["occurred_at"] = (now - step * (decisions - i)).isoformat()
            events.append(event)
        ops.ingest.body(json.dumps({"events": events}).encode())
    return time.perf_counter() - started


def timed(call: Any, repeats: int) -> float:
    """The median wall time of `repeats` calls, in milliseconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: SQLite in a temp dir")
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with shadow_service(args.database_url, "opsloop-dashboard-") as ops:
        seconds = fill(ops, args.decisions, args.days)
        dashboard = ops.learn.dashboard()
        weeks = len(dashboard["playbooks"][0]["weeks"] or [])
        print(
            f"backend: {'PostgreSQL' if args.database_url else 'SQLite'}; "
            f"{dashboard['decisions']:,} decisions over {weeks} ISO weeks "
            f"(stored in {seconds:.1f} s)"
        )
        print(f"  learn.dashboard()  {timed(ops.learn.dashboard, args.repeats):8.0f} ms (median)")
        print(f"  learn.metrics()    {timed(ops.learn.metrics, args.repeats):8.0f} ms (median)")


if __name__ == "__main__":
    main()
