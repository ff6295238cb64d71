"""CLI start-up: wall time of `opsloop --help` and `opsloop decisions`, each in fresh processes.

    .venv/bin/python bench/cli_startup.py               # 10 runs of each command
    .venv/bin/python bench/cli_startup.py --runs 30
    .venv/bin/python bench/cli_startup.py --json bench/results/cli-startup.json
    git archive HEAD | tar -x -C /tmp/before && .venv/bin/python bench/cli_startup.py --src /tmp/before

`opsloop decisions` runs against a fresh SQLite data directory made in a temporary folder
(OPSLOOP_DATA_DIR), which `opsloop migrate` brings to the newest schema once before the timed
runs; the database is empty, so the figure is start-up: imports, settings, the service, the
schema check and one query. Every run is a new process of the installed `opsloop` script (the
one `pip install` makes), started from the temporary folder so no opsloop.toml is read, with
warm OS caches (one untimed run of each command first); with `--src`, `python -m opsloop` on
that source tree instead, to compare with another commit. It prints the median, min and max
wall time of each command and the machine's load average; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMMANDS: dict[str, list[str]] = {
    "opsloop --help": ["--help"],
    "opsloop decisions": ["decisions"],
}


def opsloop_command(src: Path | None) -> list[str]:
    """The installed console script beside this interpreter, else `python -m opsloop`."""
    script = Path(sys.executable).with_name("opsloop")
    return [str(script)] if script.exists() and src is None else [sys.executable, "-m", "opsloop"]


def run(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr!r}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per command")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--src",
        type=Path,
        help="run this source tree (e.g. `git archive HEAD`), not the installed one",
    )
    args = parser.parse_args()

    opsloop = opsloop_command(args.src)
    results: dict[str, Any] = {"runs": args.runs, "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="opsloop-cli-startup-") as tmp:
        folder = Path(tmp)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")},
            "OPSLOOP_DATA_DIR": str(folder / "data"),
            "OPSLOOP_CONFIG": str(folder / "no-opsloop.toml"),
            "COLUMNS": "120",
        }
        if args.src is not None:
            env["PYTHONPATH"] = str(args.src.resolve())
        run([*opsloop, "migrate"], env, folder)
        source = f" on {args.src}" if args.src else ""
        print(f"{' '.join(opsloop)}{source}, data dir {folder / 'data'} (migrated once)")
        print(f"{'command':<20} {'median':>8} {'min':>8} {'max':>8}   ({args.runs} runs each)")
        for label, words in COMMANDS.items():
            run([*opsloop, *words], env, folder)  # warm the OS caches
            times = [run([*opsloop, *words], env, folder) for _ in range(args.runs)]
            figures = {
                "median_s": round(statistics.median(times), 3),
                "min_s": round(min(times), 3),
                "max_s": round(max(times), 3),
            }
            results[label] = figures
            print(
                f"{label:<20} {figures['median_s']:>7.3f}s {figures['min_s']:>7.3f}s "
                f"{figures['max_s']:>7.3f}s"
            )
    results["load_after"] = os.getloadavg()
    load = ", ".join(f"{x:.2f}" for x in results["load_after"])
    print(f"load average (1, 5, 15 min) afterwards: {load} on {os.cpu_count()} cores")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
