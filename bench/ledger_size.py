"""How many bytes the ledger takes per event and per decision, and whether retention bounds it.

    .venv/bin/python bench/ledger_size.py                      # 100,000 events, 50,000 decisions
    .venv/bin/python bench/ledger_size.py --events 10000       # a quick run
    .venv/bin/python bench/ledger_size.py --steady 60 --retention-days 14

Build mode (the default) makes a realistic ledger through the real service, on a fresh SQLite
file: the demo business's leads (opsloop/demo/simulator.py) with their traits, form posts, demo
requests and won or lost deals, and enough of their page views to make `--events` events for
half as many decisions (the lead-qualification playbook decides on every form post and demo
request). The events are stored in batches of 1,000 through `OpsLoop.store_events`, which
decides on them as live ingest does; the demo's simulated reviewer then works the inbox each
working day at 16:00 and the actions of its verdicts go out to the demo's mail and chat sinks
(`OpsLoop.run_jobs`), except for the last tenth of the review days, whose actions stay
pending. Nine decisions in ten are reviewed; the rest stay in the inbox. Then the database is
closed (which checkpoints the WAL) and the script prints the file size, bytes per event, bytes
per decision and, from SQLite's `dbstat` table, the bytes and rows of every table with its
indexes.

With `--verify`, the script then runs `opsloop audit verify` on the ledger in a subprocess and
prints how long it took and the subprocess's peak memory; `--audit-rows N` first appends N
more audit rows (through the ledger's own append path, 10,000 a transaction) to show that the
check's memory does not grow with the ledger.

Steady mode (`--steady DAYS`) runs `--scale` copies of the demo business (every event of
their leads' journeys, page views included) from an empty ledger, hour by hour with the clock
moved forward by hand: events stored each simulated hour, the jobs that are due run (the
retention job among them, hourly), the reviewer working the inbox each day at 16:00, and
`retain_events_days` and `retain_signal_bodies_days` at `--retention-days`. It prints, after
each simulated day, the events that came in, the decisions and events kept, and the file, WAL
and free-page sizes, and separately the bytes of the events table and of the decisions with
their trail (kept forever). Traffic builds up over the first weeks as the leads' journeys
overlap. `--visitors N` adds N page views a day of anonymous website visitors, the tracking
traffic no playbook decides on.
It needs the retention settings (opsloop/service/retention.py).

A benchmark, never a test: it prints figures, asserts nothing about them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsloop.builtin import builtin_playbook
from opsloop.core.events import validate_events
from opsloop.demo.reviewer import verdict
from opsloop.demo.run import PLAYBOOK, DemoBusiness, open_business, review_time
from opsloop.demo.simulator import SOURCE, PlannedEvent, Simulator
from opsloop.settings import Settings

TRIGGERS = ("lead.created", "demo.requested")
BATCH = 1000
END = datetime(2034, 1, 1, tzinfo=UTC)
"""Where the built history ends (fixed, so every run builds the same ledger). The simulator
numbers its days from 2024-01-01 and 100,000 events take about eight years of its leads."""


class SimClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


# --- the ledger ----------------------------------------------------------------------------


def plan(simulator: Simulator, events: int, seed: int) -> list[PlannedEvent]:
    """`events` events of the demo business ending before END, with `events // 2` triggers:
    every trigger and deal of the leads taken, and a random share of their page views."""
    wanted_triggers = events // 2
    leads: list[list[PlannedEvent]] = []
    triggers = 0
    day = (END.date() - datetime(2024, 1, 1, tzinfo=UTC).date()).days
    while triggers < wanted_triggers:  # walk back from END until there are enough triggers
        for lead in reversed(simulator.leads_on(day)):
            journey = [e for e in simulator.journey(lead) if e.at < END]
            leads.append(journey)
            triggers += sum(1 for e in journey if e.type in TRIGGERS)
            if triggers >= wanted_triggers:
                break
        day -= 1
    kept = [e for journey in leads for e in journey if e.type != "page.viewed"]
    views = [e for journey in leads for e in journey if e.type == "page.viewed"]
    room = max(events - len(kept), 0)
    kept += random.Random(seed).sample(views, min(room, len(views)))
    return sorted(kept)


def store(business: DemoBusiness, clock: SimClock, planned: list[PlannedEvent]) -> None:
    ops = business.ops
    for start in range(0, len(planned), BATCH):
        chunk = planned[start : start + BATCH]
        clock.at = chunk[-1].at
        batch = [
            dataclasses.replace(e, received_at=e.occurred_at)
            for e in validate_events(
                [e.as_dict() for e in chunk], source=SOURCE, received_at=clock.at
            )
        ]
        ops.ingest.store_events(batch)


def review(
    business: DemoBusiness, clock: SimClock, *, share: float = 0.9, deliver: float = 0.9
) -> tuple[int, int]:
    """The simulated reviewer settles the oldest `share` of the pending decisions, a session
    per working day; the actions of the first `deliver` share of the sessions go out."""
    ops = business.ops
    pending: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        page = ops.decide.list_decisions(
            status="pending", playbook=PLAYBOOK, limit=500, before_id=before
        )
        pending.extend(page)
        if len(page) < 500:
            break
        before = page[-1]["id"]
    pending.sort(key=lambda d: int(d["id"]))
    pending = pending[: int(len(pending) * share)]
    sessions: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for decision in pending:
        sessions[review_time(decision["created_at"])].append(decision)
    days = sorted(sessions)
    delivered_days = int(len(days) * deliver)
    for index, day in enumerate(days):
        clock.at = day
        for decision in sessions[day]:
            request = verdict(
                decision["choice"], business.simulator.ground_truth(decision["subject"])
            )
            clock.at += timedelta(minutes=1 if request.verdict == "approve" else 3)
            ops.review.verdict(decision["id"], request)
        if index < delivered_days:
            ops.run_jobs()
    return len(pending), delivered_days


# --- measuring -----------------------------------------------------------------------------


def sizes(path: Path) -> dict[str, Any]:
    """File size, and per table: rows, bytes of the table and bytes of its indexes."""
    conn = sqlite3.connect(path)
    try:
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema").fetchall())
        tables: dict[str, dict[str, int]] = {}
        try:
            pages = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:  # no dbstat in this build: page counts instead
            pages = []
        for name, size in pages:
            table = owner.get(name, name)
            entry = tables.setdefault(table, {"rows": 0, "table_bytes": 0, "index_bytes": 0})
            entry["table_bytes" if name == table else "index_bytes"] += int(size)
        for table, entry in tables.items():
            if table.startswith("sqlite_"):
                continue
            entry["rows"] = conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        auto_vacuum = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    finally:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    return {
        "file_bytes": path.stat().st_size,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        "free_bytes": free * page_size,
        "auto_vacuum": {0: "none", 1: "full", 2: "incremental"}.get(auto_vacuum, auto_vacuum),
        "tables": tables,
    }


DECISION_TRAIL = (
    "decisions",
    "reviews",
    "actions",
    "action_attempts",
    "tasks",
    "outcomes",
    "audit",
)


def figures(measured: dict[str, Any]) -> dict[str, Any]:
    tables = measured["tables"]

    def total(name: str) -> int:
        entry = tables.get(name, {})
        return int(entry.get("table_bytes", 0) + entry.get("index_bytes", 0))

    events = tables.get("events", {}).get("rows", 0) or 1
    decisions = tables.get("decisions", {}).get("rows", 0) or 1
    return {
        "events": events,
        "decisions": decisions,
        "file_per_event": measured["file_bytes"] / events,
        "event_bytes_per_event": total("events") / events,
        "decision_bytes_per_decision": (total("decisions") + total("decision_templates"))
        / decisions,
        "trail_bytes_per_decision": sum(total(name) for name in DECISION_TRAIL) / decisions,
    }


def report(measured: dict[str, Any], seconds: float | None = None) -> None:
    f = figures(measured)
    mb = measured["file_bytes"] / 1e6
    print(
        f"file              {mb:10.1f} MB  (WAL {measured['wal_bytes'] / 1e6:.1f} MB, "
        f"free pages {measured['free_bytes'] / 1e6:.1f} MB, auto_vacuum {measured['auto_vacuum']})"
    )
    print(f"events            {f['events']:10,d}     decisions {f['decisions']:,d}")
    print(f"file / events     {f['file_per_event']:10,.0f} B per event")
    print(f"events table      {f['event_bytes_per_event']:10,.0f} B per event (rows and indexes)")
    print(
        f"decisions table   {f['decision_bytes_per_decision']:10,.0f} B per decision "
        "(rows with their explanation and indexes)"
    )
    print(
        f"decision + trail  {f['trail_bytes_per_decision']:10,.0f} B per decision "
        "(with its reviews, actions, attempts, tasks, outcome and audit rows)"
    )
    if seconds is not None:
        print(f"built in          {seconds:10.0f} s")
    print()
    print(f"{'table':<22}{'rows':>10}{'table MB':>11}{'index MB':>11}{'B/row':>9}")
    ordered = sorted(
        measured["tables"].items(), key=lambda kv: -(kv[1]["table_bytes"] + kv[1]["index_bytes"])
    )
    for name, entry in ordered:
        both = entry["table_bytes"] + entry["index_bytes"]
        per_row = both / entry["rows"] if entry["rows"] else 0
        print(
            f"{name:<22}{entry['rows']:>10,d}{entry['table_bytes'] / 1e6:>11.2f}"
            f"{entry['index_bytes'] / 1e6:>11.2f}{per_row:>9,.0f}"
        )


# --- modes ---------------------------------------------------------------------------------


def build(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    started = time.monotonic()
    simulator = Simulator(args.seed)
    planned = plan(simulator, args.events, args.seed)
    clock = SimClock(planned[0].at)
    business = open_business(
        Settings(data_dir=data_dir), seed=args.seed, history_start=planned[0].at, clock=clock
    )
    try:
        business.ops.prepare()
        text, file = builtin_playbook(PLAYBOOK)
        business.ops.decide.apply_playbook(text, file, actor="bench")
        print(f"storing {len(planned):,} events …", file=sys.stderr)
        store(business, clock, planned)
        print("reviewing and delivering …", file=sys.stderr)
        reviewed, _ = review(business, clock)
        print(f"reviewed {reviewed:,} decisions", file=sys.stderr)
    finally:
        business.close()
    seconds = time.monotonic() - started
    measured = sizes(data_dir / "opsloop.db")
    report(measured, seconds)
    result = {"mode": "build", "seconds": seconds, **measured, "figures": figures(measured)}
    if args.audit_rows:
        append_audit_rows(data_dir, args.audit_rows)
    if args.verify:
        result["verify"] = verify(data_dir)
    return result


def append_audit_rows(data_dir: Path, count: int) -> None:
    from opsloop.service import OpsLoop
    from opsloop.store import audit

    print(f"appending {count:,} audit rows …", file=sys.stderr)
    ops = OpsLoop(Settings(data_dir=data_dir))
    try:
        at = ops.ctx.clock()
        for start in range(0, count, 10_000):
            rows = [
                {
                    "at": at,
                    "actor": "bench",
                    "verb": "bench.filled",
                    "object_type": "bench",
                    "object_id": str(n),
                    "detail": {"n": n},
                }
                for n in range(start, min(start + 10_000, count))
            ]
            with ops.db.transaction() as tx:
                audit.record_many(tx.conn, rows)
    finally:
        ops.close()


def verify(data_dir: Path) -> dict[str, Any]:
    """`opsloop audit verify` in a subprocess: its result, wall time and peak memory."""
    # The child reports its own peak (VmHWM): a forked child's rusage would count the pages it
    # shared with this big process before it ran the command.
    report_peak = (
        "import atexit, sys\n"
        "def peak():\n"
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "    sys.stderr.write('PEAK ' + hwm.split()[1] + '\\n')\n"
        "atexit.register(peak)\n"
        "from opsloop.cli import main\n"
        "main()\n"
    )
    command = [
        sys.executable,
        "-c",
        report_peak,
        "--data-dir",
        str(data_dir),
        "audit",
        "verify",
        "--json",
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, check=False)
    seconds = time.monotonic() - started
    result = json.loads(done.stdout)
    peaks = [line for line in done.stderr.decode().splitlines() if line.startswith("PEAK ")]
    peak_mb = int(peaks[-1].split()[1]) / 1024 if peaks else float("nan")
    rows = result["audit_rows"]
    print()
    print(
        f"audit verify      {'intact' if result['intact'] else result['problem']}: "
        f"{rows:,} audit rows, {result['decisions']:,} decisions, {result['actions']:,} actions"
    )
    print(
        f"                  {seconds:.1f} s ({rows / seconds:,.0f} audit rows/s), peak RSS {peak_mb:.0f} MB"
    )
    return {**result, "seconds": seconds, "peak_rss_mb": peak_mb}


def steady(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """`--scale` copies of the demo business (each its own seed and subjects), every event of
    their leads' journeys (page views included), from an empty ledger: traffic builds up over
    the first weeks as journeys overlap, then holds steady."""
    from opsloop.demo.simulator import _day_index  # the simulator's own day numbering

    start = END - timedelta(days=args.steady)
    clock = SimClock(start)
    settings = Settings(
        data_dir=data_dir,
        retain_events_days=args.retention_days,
        retain_signal_bodies_days=args.retention_days,
    )
    business = open_business(settings, seed=args.seed, history_start=start, clock=clock)
    simulators = {seed: Simulator(seed) for seed in range(args.seed, args.seed + args.scale)}
    path = data_dir / "opsloop.db"
    series = []
    try:
        ops = business.ops
        ops.prepare()
        text, file = builtin_playbook(PLAYBOOK)
        ops.decide.apply_playbook(text, file, actor="bench")
        journeys: list[PlannedEvent] = []
        first = _day_index(start)
        for seed, simulator in simulators.items():
            for day in range(first, first + args.steady):
                for lead in simulator.leads_on(day):
                    journeys.extend(_copy(e, seed) for e in simulator.journey(lead))
        journeys.sort()
        print(
            f"{'day':>4}{'events in':>10}{'decisions':>11}{'events kept':>12}"
            f"{'events MB':>10}{'trail MB':>9}{'file MB':>9}{'WAL MB':>8}{'free MB':>9}",
            flush=True,
        )
        for n in range(args.steady):
            day_end = start + timedelta(days=n + 1)
            today = [e for e in journeys if day_end - timedelta(days=1) <= e.at < day_end]
            today += _visitors(day_end - timedelta(days=1), args.visitors)
            for hour in range(24):
                slot_end = day_end - timedelta(days=1) + timedelta(hours=hour + 1)
                slot = [e for e in today if slot_end - timedelta(hours=1) <= e.at < slot_end]
                clock.at = slot_end
                if slot:
                    ops.ingest.store_events(_stamped(slot, slot_end))
                ops.run_jobs()  # deliveries and the periodic jobs due (the retention job too)
            _review_day(business, simulators, clock, day_end)
            ops.run_jobs()
            measured = sizes(path)
            tables = measured["tables"]
            row = {
                "day": n + 1,
                "events_in": len(today),
                "decisions": tables.get("decisions", {}).get("rows", 0),
                "events_kept": tables.get("events", {}).get("rows", 0),
                "events_bytes": _bytes(tables, "events"),
                "trail_bytes": sum(_bytes(tables, name) for name in DECISION_TRAIL),
                "file_bytes": measured["file_bytes"],
                "wal_bytes": measured["wal_bytes"],
                "free_bytes": measured["free_bytes"],
            }
            series.append(row)
            print(
                f"{row['day']:>4}{row['events_in']:>10,d}{row['decisions']:>11,d}"
                f"{row['events_kept']:>12,d}{row['events_bytes'] / 1e6:>10.2f}"
                f"{row['trail_bytes'] / 1e6:>9.2f}{row['file_bytes'] / 1e6:>9.2f}"
                f"{row['wal_bytes'] / 1e6:>8.2f}{row['free_bytes'] / 1e6:>9.2f}",
                flush=True,
            )
    finally:
        business.close()
    measured = sizes(path)
    print()
    report(measured)
    return {"mode": "steady", "series": series, **measured, "figures": figures(measured)}


def _bytes(tables: dict[str, dict[str, int]], name: str) -> int:
    entry = tables.get(name, {})
    return int(entry.get("table_bytes", 0) + entry.get("index_bytes", 0))


def _visitors(day: datetime, count: int) -> list[PlannedEvent]:
    """`count` page views of anonymous visitors over one day, three pages each: the tracking
    traffic of a website, which no playbook decides on."""
    rng = random.Random(f"visitors:{day.date()}")
    views = []
    for n in range(count):
        at = day + timedelta(seconds=rng.uniform(0, 86_399))
        visitor = f"visitor:{day:%Y%m%d}-{n // 3}"
        path = rng.choice(("/", "/pricing", "/docs", "/blog/what-is-a-playbook"))
        views.append(PlannedEvent(at, f"{visitor}:{n}", "page.viewed", visitor, {"path": path}))
    return views


def _copy(event: PlannedEvent, seed: int) -> PlannedEvent:
    """The event of one copy of the business: subjects and keys of their own."""
    number = event.subject.partition(":")[2]
    return dataclasses.replace(event, subject=f"lead:{seed}-{number}", key=f"{seed}:{event.key}")


def _stamped(planned: list[PlannedEvent], received: datetime) -> list[Any]:
    return [
        dataclasses.replace(e, received_at=min(e.occurred_at, received))
        for e in validate_events(
            [p.as_dict() for p in planned], source=SOURCE, received_at=received
        )
    ]


def _review_day(
    business: DemoBusiness,
    simulators: dict[int, Simulator],
    clock: SimClock,
    day_end: datetime,
) -> None:
    """The reviewer settles the decisions made before today's 16:00 session."""
    session = day_end - timedelta(hours=8)
    clock.at = session
    ops = business.ops
    pending: list[dict[str, Any]] = []
    before: int | None = None
    while page := ops.decide.list_decisions(
        status="pending", playbook=PLAYBOOK, limit=500, before_id=before
    ):
        pending.extend(page)
        before = page[-1]["id"]
    for decision in sorted(pending, key=lambda d: int(d["id"])):
        if decision["created_at"] >= session:
            continue
        seed, _, number = decision["subject"].partition(":")[2].partition("-")
        truth = simulators[int(seed)].ground_truth(f"lead:{number}")
        ops.review.verdict(decision["id"], verdict(decision["choice"], truth))
    clock.at = day_end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to build (build mode)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--steady", type=int, metavar="DAYS", help="steady mode: simulate DAYS days"
    )
    parser.add_argument("--retention-days", type=int, default=30, help="steady mode: retention")
    parser.add_argument(
        "--scale", type=int, default=10, help="steady mode: copies of the demo business"
    )
    parser.add_argument(
        "--visitors",
        type=int,
        default=0,
        help="steady mode: anonymous page views a day besides the leads' (website tracking)",
    )
    parser.add_argument("--verify", action="store_true", help="then time `opsloop audit verify`")
    parser.add_argument(
        "--audit-rows", type=int, default=0, help="with --verify: append this many audit rows first"
    )
    parser.add_argument("--data-dir", type=Path, help="build here (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="opsloop-ledger-"))
    if args.data_dir and (data_dir / "opsloop.db").exists():
        raise SystemExit(f"{data_dir} already holds a database; give an empty folder")
    try:
        result = steady(args, data_dir) if args.steady else build(args, data_dir)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2, default=str))
    finally:
        if args.data_dir is None and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        elif args.keep:
            print(f"kept {data_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
