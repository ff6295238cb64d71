"""Backtest speed: replay the lead playbook over 1,000,000 stored events.

    .venv/bin/python bench/replay.py                       # build once (cached), then time 3 runs
    .venv/bin/python bench/replay.py --events 200000       # a smaller database, built once too
    .venv/bin/python bench/replay.py --json bench/results/replay.json

The database is built once and cached as bench/results/replay-<events>.sqlite (gitignored):
the demo simulator's business, many shards of it side by side (each shard its own seed and
subject prefix) so that a million events span about four months, stored through the real
ingest path with playbooks/lead-qualification.yaml active — so the live loop made and stored
its decisions, and the backtest can be compared with them. Building a million events takes a
few minutes; every later run reuses the file.

Each timed run is `OpsLoop.learn.backtest(...)` over all the stored history, the same call
`opsloop backtest` makes (the report is kept, as the command keeps it), in a fresh service:
cold caches in this process, warm OS page cache. Two scenarios: the playbook file as stored
(one replay: it is the active version) and a draft with a lower threshold (two replays, draft
and active, over the same events). It prints wall time, events scanned and triggers per
second, the time of each stage, and the median of the runs. Nothing here is asserted: bench/
prints figures, tests check behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from opsloop.core.events import validate_events  # noqa: E402
from opsloop.demo.simulator import SOURCE, Simulator  # noqa: E402
from opsloop.service import OpsLoop  # noqa: E402
from opsloop.settings import Settings  # noqa: E402

PLAYBOOK = ROOT / "playbooks" / "lead-qualification.yaml"
RESULTS = BENCH / "results"
END = datetime(2026, 1, 1, tzinfo=UTC)
"""The simulated history ends here, so every build of the same size stores the same events."""
DAYS = 120
BATCH = 5000
LAYOUT = 1
"""Bump when the way the database is built changes, so a stale cached file is not reused."""


def database_path(events: int) -> Path:
    return RESULTS / f"replay-{events}-v{LAYOUT}.sqlite"


def shard_events(seed: int) -> list[dict[str, Any]]:
    """One shard: the demo business for `seed`, its subjects and keys made unique to it."""
    events = Simulator(seed).history(DAYS, END)
    for event in events:
        number = event["subject"].partition(":")[2]
        event["subject"] = f"lead:{seed}-{number}"
        event["idempotency_key"] = f"s{seed}:{event['idempotency_key']}"
    return events


def generate(total: int) -> list[dict[str, Any]]:
    """At least `total` events from as many shards as it takes, oldest first, cut to `total`."""
    events: list[dict[str, Any]] = []
    seed = 1
    while len(events) < total:
        events.extend(shard_events(seed))
        seed += 1
    events.sort(key=lambda e: (e["occurred_at"], e["idempotency_key"]))
    return events[:total]


def build(path: Path, total: int) -> None:
    """Store `total` events through the ingest path (decisions included) into `path`."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    print(f"building {path.name}: generating {total:,} events…", flush=True)
    events = generate(total)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), database_url=f"sqlite:///{partial}")
        ops = OpsLoop(settings)
        try:
            ops.db.migrate()
            ops.decide.apply_playbook(PLAYBOOK.read_text(), str(PLAYBOOK), actor="bench")
            started = time.monotonic()
            received = datetime.now(UTC)
            for start in range(0, len(events), BATCH):
                chunk = validate_events(
                    events[start : start + BATCH], source=SOURCE, received_at=received
                )
                ops.ingest.store_events(chunk)
                done = start + len(chunk)
                if done % 100_000 < BATCH:
                    rate = done / (time.monotonic() - started)
                    print(f"  stored {done:,} events ({rate:,.0f}/s)", flush=True)
        finally:
            ops.close()
    conn = sqlite3.connect(partial)
    try:
        conn.execute("ANALYZE")
        conn.commit()
        conn.execute("PRAGMA journal_mode=DELETE")  # folds the WAL in: one self-contained file
    finally:
        conn.close()
    shutil.move(partial, path)
    print(f"built {path} in {time.monotonic() - started:.0f} s", flush=True)


def counts(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        events, first, last = conn.execute(
            "SELECT count(*), min(occurred_at), max(occurred_at) FROM events"
        ).fetchone()
        decisions = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    finally:
        conn.close()
    return {"events": events, "first": first, "last": last, "stored_decisions": decisions}


def time_runs(path: Path, repeats: int, source: str) -> list[dict[str, Any]]:
    runs = []
    for number in range(1, repeats + 1):
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(
                data_dir=Path(data_dir), database_url=f"sqlite:///{path}", auto_migrate=False
            )
            ops = OpsLoop(settings)
            try:
                cpu = _cpu_seconds()
                started = time.perf_counter()
                report = ops.learn.backtest(
                    source=source,
                    file=str(PLAYBOOK),
                    since=END - timedelta(days=DAYS + 30),
                    actor="bench",
                )
                wall = time.perf_counter() - started
                cpu = _cpu_seconds() - cpu
            finally:
                ops.close()
        scanned = report["counts"]["events_scanned"]
        triggers = report["counts"]["triggers"]
        run = {
            "run": number,
            "wall_seconds": round(wall, 3),
            "cpu_seconds": round(cpu, 3),
            "events_scanned": scanned,
            "triggers": triggers,
            "decisions": report["counts"]["decisions"],
            "events_per_second": round(scanned / wall),
            "triggers_per_second": round(triggers / wall),
            "changed_vs_active": report["changes"]["changed"],
            "timings": report.get("timings", {}),
        }
        stages = ", ".join(
            f"{name.removesuffix('_seconds')} {value:.2f}"
            for name, value in run["timings"].items()
            if name != "total_seconds"
        )
        print(
            f"  run {number}: {wall:.2f} s ({cpu:.2f} s CPU), {scanned:,} events scanned ({scanned / wall:,.0f}/s), "
            f"{triggers:,} triggers ({triggers / wall:,.0f}/s), {run['decisions']:,} decisions, "
            f"{run['changed_vs_active']:,} changed ({stages} s)",
            flush=True,
        )
        runs.append(run)
    return runs


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (Polars uses several): steadier than wall time
    on a machine others share."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the database")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the median is shown")
    parser.add_argument("--rebuild", action="store_true", help="build the database again")
    parser.add_argument("--build-only", action="store_true", help="build (if needed) and stop")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    path = database_path(args.events)
    if args.rebuild or not path.exists():
        build(path, args.events)
    if args.build_only:
        return
    facts = counts(path)
    print(
        f"replay of {PLAYBOOK.name} over {facts['events']:,} events "
        f"({facts['first'][:10]} to {facts['last'][:10]}, {facts['stored_decisions']:,} stored "
        f"decisions); {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    active = PLAYBOOK.read_text()
    draft = active.replace("when: score >= 60", "when: score >= 50")
    assert draft != active, "the playbook's threshold line was not found"
    figures: dict[str, Any] = {"database": facts}
    for name, source in (("active", active), ("draft", draft)):
        what = "the playbook as stored" if name == "active" else "a draft (score >= 50)"
        print(f"{what}, against the active version:", flush=True)
        runs = time_runs(path, args.repeats, source)
        wall = statistics.median(r["wall_seconds"] for r in runs)
        median = min(runs, key=lambda r: abs(r["wall_seconds"] - wall))
        cpu = statistics.median(r["cpu_seconds"] for r in runs)
        print(
            f"  median of {len(runs)}: {wall:.2f} s wall ({cpu:.2f} s CPU), "
            f"{median['events_per_second']:,} "
            f"events/s, {median['triggers']:,} triggers ({median['triggers_per_second']:,}/s)",
            flush=True,
        )
        figures[name] = {"median_wall_seconds": wall, "median_cpu_seconds": cpu, "runs": runs}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:,.0f} MiB")
    figures["peak_rss_mib"] = round(peak)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
