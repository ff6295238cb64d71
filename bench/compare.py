"""Compare the ingest benchmark of the work tree with another commit, runs interleaved.

    .venv/bin/python bench/compare.py ec80de8                       # single-c8 on SQLite, 5 rounds
    .venv/bin/python bench/compare.py main --rounds 7 --only single-c8 batch-x1
    .venv/bin/python bench/compare.py HEAD~3 --against HEAD --backend postgres

Run it before merging anything on the hot path (docs/performance.md#before-merging). A shared
2-core machine drifts by ±20% over minutes, so one run of each side proves nothing: the two
sides take turns (A B B A A B …), each turn a fresh `bench/ingest_decide.py` server, and the
script prints the median of each side and the median of the per-round ratios, which cancels
most of the drift.

`REF` is exported with `git archive` to a temp dir; the other side is the work tree as it is
(uncommitted changes included) unless `--against` names a commit. Both run in this venv, so a
commit whose dependencies differ from the work tree's may not start.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness import BENCH, PYTHON

ROOT = BENCH.parent


def export(ref: str, into: Path) -> Path:
    """`ref`'s tree in `into` (a source tree the benchmark's server runs from)."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def one_run(src: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    command = [
        PYTHON,
        str(BENCH / "ingest_decide.py"),
        "--src",
        str(src),
        "--backend",
        args.backend,
        "--only",
        *args.only,
        "--repeats",
        "1",
        "--duration",
        str(args.duration),
        "--batches",
        str(args.batches),
        "--warmup",
        "2",
        "--json",
        str(out),
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    (backend,) = result["results"]
    return backend["scenarios"]  # type: ignore[no-any-return]


def figure(scenario: dict[str, Any]) -> tuple[float, float | None]:
    """(throughput, p99 ms) of one run: req/s for single events, events/s decided for batches."""
    run = scenario["repeats"][0]
    if scenario["kind"] == "batch":
        return float(run["decided_ev_s"] or 0.0), run["latency_ms"].get("p99")
    return float(run["req_s"]), run["latency_ms"].get("p99")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ref", help="the commit to compare with (e.g. ec80de8, main, HEAD~1)")
    parser.add_argument("--against", help="a commit instead of the work tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--only", nargs="+", default=["single-c8"])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="opsloop-compare-") as tmp:
        work = Path(tmp)
        ref_src = export(args.ref, work / "ref")
        ours_src = export(args.against, work / "ours") if args.against else ROOT
        ours_name = args.against or "work tree"
        sides = {args.ref: ref_src, ours_name: ours_src}
        figures: dict[str, dict[str, list[tuple[float, float | None]]]] = {
            name: {s: [] for s in args.only} for name in sides
        }
        for round_ in range(args.rounds):
            # A B, then B A: each side runs first as often as the other.
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for name in order:
                scenarios = one_run(sides[name], args, work / f"{round_}-{len(name)}.json")
                for scenario in args.only:
                    figures[name][scenario].append(figure(scenarios[scenario]))
                line = ", ".join(
                    f"{s} {figures[name][s][-1][0]:,.0f}/s p99 {figures[name][s][-1][1]} ms"
                    for s in args.only
                )
                print(f"round {round_ + 1} {name:>12}: {line}", flush=True)

    print(f"\n{args.backend}, {args.rounds} rounds interleaved, medians:")
    for scenario in args.only:
        ref_runs, our_runs = figures[args.ref][scenario], figures[ours_name][scenario]
        ratios = [ours[0] / ref[0] for ours, ref in zip(our_runs, ref_runs, strict=True) if ref[0]]
        for name, runs in ((args.ref, ref_runs), (ours_name, our_runs)):
            p99s = [p for _, p in runs if p is not None]
            p99 = f"{statistics.median(p99s):.1f} ms" if p99s else "n/a"
            unit = "events/s decided" if scenario.startswith("batch") else "req/s"
            print(
                f"  {scenario:<10} {name:>12}: {statistics.median(r for r, _ in runs):>9,.0f} "
                f"{unit}, p99 {p99}"
            )
        print(f"  {scenario:<10} ratio {ours_name} / {args.ref}: {statistics.median(ratios):.2f}×")


if __name__ == "__main__":
    main()
