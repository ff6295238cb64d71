"""The tabular library on real data: UCI Online Shoppers Purchasing Intention (12,330 sessions).

    .venv/bin/python bench/eval_shoppers.py [--data PATH] [--json OUT]

Target: `Revenue` (did the session end in a purchase). The file has no timestamp, only `Month`
(ten month names, "June" spelt out, no January or April), so the clock is the month number
(Feb=2 .. Dec=12) with the file's row order breaking ties. Two time-ordered protocols:

* A: train on Feb-Oct (7,605 sessions), test on Nov-Dec (4,725 sessions).
* B: train on Feb-Nov (10,603 sessions), test on Dec (1,727 sessions).

`Month` is the clock, so it is not a feature: the test months never occur in training, and a
one-hot month would say nothing about them. The four integer codes (operating system,
browser, region, traffic type) and the visitor type are categories.

For comparison, the reference protocol of the papers (5-fold stratified cross-validation on
shuffled rows, `Month` included as a feature) is run on the same pipelines. It is printed as a
reference only: shuffling lets every fold train on sessions from the months it is tested on,
so it answers "how well does this model fit this year" rather than "how well will it predict
next month", which is what a business gets.

Prints figures; asserts nothing about time. Exit code 2 when the data folder is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT = ROOT.parent / "shared" / "data" / "uci_online_shoppers" / "online_shoppers_intention.csv"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
CATEGORICAL = ["OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType"]
PROTOCOLS = {"A: train Feb-Oct, test Nov-Dec": 11, "B: train Feb-Nov, test Dec": 12}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    if not args.data.is_file():
        print(
            f"data not found: {args.data}\n"
            "This benchmark reads the UCI Online Shoppers data set from ../shared/data/ beside "
            "the project (see ../shared/data/README.md). Put online_shoppers_intention.csv "
            "there, or pass --data PATH. Never copy it into the repository.",
            file=sys.stderr,
        )
        return 2

    import pandas as pd
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from opsloop.learning.tabular import ALGORITHMS, build_pipeline, model_input, train_tabular

    data = pd.read_csv(args.data)
    unknown = sorted(set(data["Month"]) - set(MONTHS))
    if unknown:
        print(f"unexpected month names: {unknown}", file=sys.stderr)
        return 1
    data["month_number"] = data["Month"].map({name: n for n, name in enumerate(MONTHS, 1)})
    features = [c for c in data.columns if c not in ("Revenue", "Month", "month_number")]
    print(f"{args.data.name}: {len(data)} sessions, {data['Revenue'].mean():.1%} purchased")
    per_month = data.groupby("month_number").size()
    print("sessions per month:", ", ".join(f"{MONTHS[n - 1]} {c}" for n, c in per_month.items()))
    figures: dict[str, Any] = {"rows": len(data), "time_ordered": {}, "reference_cv": {}}

    for protocol, test_since in PROTOCOLS.items():
        print(f"\n=== time-ordered, protocol {protocol} ===")
        for algorithm in ("logistic_regression", "gradient_boosting", "auto"):
            started = time.perf_counter()
            result = train_tabular(
                data,
                target="Revenue",
                time_key="month_number",
                features=features,
                categorical=CATEGORICAL,
                algorithm=algorithm,
                test_since=test_since,
            )
            seconds = time.perf_counter() - started
            report = result.report
            print(
                f"{algorithm:<20} ROC AUC {report.roc_auc:.3f}  PR AUC {report.pr_auc:.3f}  "
                f"Brier {report.brier:.4f}  lift@10% {report.lift_top_10:.2f}  "
                f"lift@20% {report.lift_top_20:.2f}  ({seconds:.0f} s)"
            )
            figures["time_ordered"].setdefault(protocol, {})[algorithm] = {
                **{k: v for k, v in report.to_dict().items() if k not in ("calibration",)},
                "seconds": round(seconds, 1),
            }
            if algorithm == "auto":
                print("\nfull report of the automatic choice:")
                print(report.to_text())

    print("\n=== reference protocol (NOT ours): 5-fold stratified CV on shuffled rows ===")
    print("Month included as a category; every fold trains on sessions from its test months.")
    categorical = [*CATEGORICAL, "Month"]
    numeric = [c for c in features if c not in categorical]
    x = model_input(data, numeric=numeric, categorical=categorical)
    y = data["Revenue"].astype(int).to_numpy()
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    for algorithm in ALGORITHMS:
        pipeline = build_pipeline(algorithm, numeric=numeric, categorical=categorical, labels=y)
        scores = cross_val_score(pipeline, x, y, cv=folds, scoring="roc_auc")
        print(
            f"{algorithm:<20} ROC AUC {scores.mean():.3f} (folds {scores.min():.3f}-"
            f"{scores.max():.3f})   reference point: "
            f"{'≈0.89' if algorithm == 'logistic_regression' else '≈0.93'}"
        )
        figures["reference_cv"][algorithm] = [round(float(s), 4) for s in scores]

    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
