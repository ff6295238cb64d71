"""Per-event cost of ingest and decide inside one process: no HTTP, no worker threads, no lock
contention — the floor under what bench/ingest_decide.py can measure through the server.

    .venv/bin/python bench/ingest_decide_inprocess.py                    # SQLite in a temp dir
    .venv/bin/python bench/ingest_decide_inprocess.py --database-url postgresql+psycopg://...
    .venv/bin/python bench/ingest_decide_inprocess.py --profile          # + where the time goes

Decisions are made inside the ingest transaction, so each ingest step includes its decisions.
Four steps, each timed on its own: single events, each ingested in its own call (one
transaction: validate, store, merge traits, read history, decide, write the decision, its
explanation and an audit row); 1,000-event batches; `batch_decide_free`, the same batches with
the deciding left out (each decision a copy of one made once, then stored, digested and
audited as usual: the floor a faster decide, column-wise or otherwise, could reach); and
`decide_only`, the playbook evaluated on in-memory events with no database at all (features,
scorecard, rules, explanation). With
`--profile` the whole run is sampled by py-spy and the time of each step is split over the
opsloop functions it calls.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import PYTHON, postgres_cpu_seconds, shadow_playbook, shadow_service
from load_client import lead_created
from profiles import _frame_name

STEPS = ("ingest_single", "ingest_batch", "batch_decide_free", "decide_only")
MARKER = "step_"  # each step runs inside a function named step_<name>, so samples can be split


def step_ingest_single(ops: Any, body: bytes) -> None:
    ops.ingest.body(body)


def step_ingest_batch(ops: Any, bodies: list[bytes]) -> None:
    for body in bodies:
        ops.ingest.body(body)


def step_batch_decide_free(ops: Any, bodies: list[bytes]) -> None:
    from opsloop.service.decide import deciding

    made: dict[str, Any] = {}
    real = deciding.decide

    def copied(playbook: Any, *, event: Any, **inputs: Any) -> Any:
        first = made.get(playbook.name)
        if first is None:
            first = made[playbook.name] = real(playbook, event=event, **inputs)
        return dataclasses.replace(first, event_id=event.id, subject=event.subject)

    deciding.decide = copied  # type: ignore[assignment]
    try:
        for body in bodies:
            ops.ingest.body(body)
    finally:
        deciding.decide = real


def step_decide_only(compiled: Any, events: list[Any], traits: dict[str, Any]) -> None:
    from opsloop.reasoning.decide import decide

    for event in events:
        decide(compiled, version=1, mode="shadow", event=event, history=[], traits=traits)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from opsloop.core.events import Event
    from opsloop.core.playbooks import parse_playbook
    from opsloop.gc_tuning import tune_for_serving
    from opsloop.reasoning.compiler import compile_playbook

    with shadow_service(args.database_url, "opsloop-inprocess-") as ops:
        tune_for_serving()  # as `opsloop serve` does, or the profile blames the collector
        singles = [json.dumps(lead_created(i, f"lead:s-{i}")).encode() for i in range(args.singles)]
        batches, free_batches = (
            [
                json.dumps(
                    {
                        "events": [
                            lead_created(i, f"lead:{prefix}{b}-{i}") for i in range(args.batch_size)
                        ]
                    }
                ).encode()
                for b in range(args.batches)
            ]
            for prefix in ("b", "f")
        )
        for i in range(50):  # warm the caches and the statement compiler
            step_ingest_single(ops, json.dumps(lead_created(i, f"lead:w-{i}")).encode())
        timings = dict.fromkeys(STEPS, 0.0)
        cpu = dict.fromkeys(STEPS, 0.0)  # this process's CPU: the rest is waiting (database, disk)
        database_cpu = dict.fromkeys(STEPS, 0.0)  # PostgreSQL's processes (0 on SQLite)

        def timed(step: str, run: Any, *inputs: Any) -> None:
            started, cpu_started = time.perf_counter(), time.process_time()
            pg_started = postgres_cpu_seconds()
            run(*inputs)
            timings[step] = time.perf_counter() - started
            cpu[step] = time.process_time() - cpu_started
            database_cpu[step] = postgres_cpu_seconds() - pg_started

        timed("ingest_single", lambda: [step_ingest_single(ops, body) for body in singles])
        timed("ingest_batch", step_ingest_batch, ops, batches)
        timed("batch_decide_free", step_batch_decide_free, ops, free_batches)
        decided = sum(ops.learn.metrics()[0]["decisions"].values())
        expected = 50 + args.singles + 2 * args.batches * args.batch_size
        assert decided == expected, f"{decided} decisions for {expected} leads"

        compiled = compile_playbook(parse_playbook(shadow_playbook())[0])
        at = datetime.now(UTC)
        events = [
            Event(i, "bench", "lead.created", f"lead:d-{i}", at, at, {}, {})
            for i in range(args.singles)
        ]
        timed(
            "decide_only", step_decide_only, compiled, events, {"company_size": 50, "budget": 9000}
        )
    events_per_step = {
        "ingest_single": args.singles,
        "ingest_batch": args.batches * args.batch_size,
        "batch_decide_free": args.batches * args.batch_size,
        "decide_only": args.singles,
    }
    return {
        step: {
            "events": events_per_step[step],
            "us_per_event": round(timings[step] / events_per_step[step] * 1e6, 1),
            "cpu_us_per_event": round(cpu[step] / events_per_step[step] * 1e6, 1),
            "database_cpu_us_per_event": round(database_cpu[step] / events_per_step[step] * 1e6, 1),
        }
        for step in STEPS
    }


def split_profile(path: Path, top: int) -> dict[str, list[tuple[str, float]]]:
    """For each step, the share of its samples under each opsloop function (inclusive)."""
    per_step: dict[str, Counter[str]] = {step: Counter() for step in STEPS}
    totals: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        names = [_frame_name(f) for f in stack.split(";")]
        step = next((n.rsplit(":", 1)[1][len(MARKER) :] for n in names if f":{MARKER}" in n), None)
        if step not in per_step:
            continue
        count = int(count_text)
        totals[step] += count
        below = names[[n.endswith(f":{MARKER}{step}") for n in names].index(True) + 1 :]
        for name in set(below):
            if name.startswith("opsloop/") or "commit" in name or name.endswith(":execute"):
                per_step[step][name] += count
    return {
        step: [(name, round(100 * n / max(totals[step], 1), 1)) for name, n in c.most_common(top)]
        for step, c in per_step.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: SQLite in a temp dir")
    parser.add_argument("--singles", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="sample with py-spy and split")
    parser.add_argument("--top", type=int, default=14)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.profile and not args.child:
        py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
        raw = Path(tempfile.mkdtemp(prefix="opsloop-prof-")) / "inprocess.txt"
        out = Path(tempfile.mkdtemp(prefix="opsloop-out-")) / "result.json"
        child = [a for a in sys.argv[1:] if a != "--profile"] + ["--child", "--json", str(out)]
        command = [py_spy, "record", "--rate", "250", "--format", "raw", "--output", str(raw)]
        subprocess.run(
            [*command, "--", PYTHON, __file__, *child],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        result = json.loads(out.read_text())
        result["profile"] = split_profile(raw, args.top)
        result["profile_file"] = str(raw)
    else:
        result = {"steps": run(args)}
        if args.child:
            assert args.json is not None
            args.json.write_text(json.dumps(result))
            return

    print(f"backend: {'PostgreSQL' if args.database_url else 'SQLite'}; pid {os.getpid()}")
    for step, figures in result["steps"].items():
        us = figures["us_per_event"]
        cpu = figures["cpu_us_per_event"]
        database = figures["database_cpu_us_per_event"]
        print(
            f"  {step:<17} {us:>8.1f} µs/event  ({1e6 / us:>7.0f}/s on one thread;"
            f" CPU: this process {cpu:.0f} µs, PostgreSQL {database:.0f} µs)"
        )
    for step, shares in result.get("profile", {}).items():
        print(f"\n{step}: share of its time under each function (inclusive)")
        for name, pct in shares:
            print(f"  {pct:>5}%  {name}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
