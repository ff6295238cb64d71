"""The message-testing bandit on real data: the Hillstrom e-mail campaign (64,000 customers
randomized to a men's e-mail, a women's e-mail or no e-mail).

    .venv/bin/python bench/hillstrom_bandit.py [--data PATH] [--outcome conversion|visit]
                                               [--seeds N] [--every N]

Replays the randomized arms in the file's order (the arrival order: the file has no time)
through the same Thompson sampling the product uses (opsloop/learning/experiments.py), by the
replay method (opsloop/learning/experiment_replay.py): a row counts when its randomized arm is
the one the bandit chose. Prints, per seed, when the bandit became sure of the best arm (its
probability of being best stayed at or above 95% from then on), when the report would have
named it the winner, the probability it is best at the end, and the regret (successes short of
always sending the best arm, at the log's rates) of the bandit and of an even split over the
same number of sends. Exit code 2 when the data folder is absent.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opsloop.learning.experiment_replay import ReplayResult, replay  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "hillstrom_email_campaign" / "hillstrom.csv"
ARMS = ("Mens E-Mail", "Womens E-Mail", "No E-Mail")


def read(path: Path, outcome: str) -> list[tuple[str, bool]]:
    with path.open(newline="") as handle:
        return [(row["segment"], row[outcome] == "1") for row in csv.DictReader(handle)]


def when(result: ReplayResult, which: str) -> str:
    checkpoint = result.sure_at if which == "sure" else result.winner_at
    if checkpoint is None:
        return "never"
    return f"after {checkpoint.sends:,} sends ({checkpoint.row:,} rows of the log)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--outcome", choices=("conversion", "visit"), default="conversion")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--every", type=int, default=250, help="sends between standings")
    args = parser.parse_args()
    if not args.data.is_file():
        print(
            f"{args.data} is not here. This benchmark reads the Hillstrom e-mail campaign from "
            "../shared/data/ beside the project (see ../shared/data/README.md); put "
            "hillstrom.csv in hillstrom_email_campaign/ or pass --data.",
            file=sys.stderr,
        )
        return 2
    rows = read(args.data, args.outcome)
    print(f"Hillstrom, outcome {args.outcome}: {len(rows):,} rows, arms in file order")
    results = []
    for seed in range(args.seeds):
        started = time.perf_counter()
        result = replay(rows, ARMS, seed=seed, check_every=args.every)
        seconds = time.perf_counter() - started
        results.append(result)
        best = result.best_arm
        final = {v.name: v for v in result.final.variants}
        if seed == 0:
            rates = ", ".join(f"{arm} {result.log_rates[arm]:.2%}" for arm in ARMS)
            print(f"log rates: {rates}; best: {best}")
        share = ", ".join(f"{arm} {result.sends[arm]:,}" for arm in ARMS)
        print(
            f"seed {seed}: {result.total_sends:,} sends ({share}); sure of {best} "
            f"{when(result, 'sure')}; winner named {when(result, 'winner')}; "
            f"P(best) at the end {final[best].probability_best:.3f}, expected loss "
            f"{result.final.expected_loss:.5f}; regret {result.regret:.1f} vs even split "
            f"{result.even_split_regret:.1f} successes ({seconds:.1f} s)"
        )
    regret = statistics.mean(r.regret for r in results)
    even = statistics.mean(r.even_split_regret for r in results)
    sure = [r.sure_at.sends for r in results if r.sure_at is not None]
    print(
        f"mean over {len(results)} seeds: regret {regret:.1f} vs even split {even:.1f} "
        f"({1 - regret / even:.0%} less); sure in {len(sure)}/{len(results)} seeds"
        + (f", median after {statistics.median(sure):,.0f} sends" if sure else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
