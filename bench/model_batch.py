"""Batches decided by a playbook with a trained model: decisions/s, in one process.

    .venv/bin/python bench/model_batch.py                      # the work tree
    .venv/bin/python bench/model_batch.py --src /tmp/before    # a `git archive` of another commit

The playbook is `SCORING` of tests/learning/synthetic.py (a `model:` block reading visits and
budget); 300 leads of history train its champion, then three bodies of 400 leads (1,000 events
with their page views) are ingested and decided on SQLite in a temp dir.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT, help="the source tree to run")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--leads", type=int, default=400)
    args = parser.parse_args()
    sys.path.insert(0, str(args.src))

    from opsloop.service import OpsLoop
    from opsloop.settings import Settings
    from tests.learning.synthetic import SCORING, plan, store_history

    work = Path(tempfile.mkdtemp(prefix="opsloop-model-batch-"))
    playbooks = work / "playbooks"
    playbooks.mkdir()
    (playbooks / "scoring.yaml").write_text(SCORING)
    ops = OpsLoop(Settings(data_dir=work / "data", playbooks_dir=playbooks))
    try:
        ops.prepare()
        store_history(
            ops, plan(datetime.now(UTC) - timedelta(days=40), 300, "informative", seed=11)
        )
        print("champion:", ops.learn.train("scoring", actor="bench")["status"])
        for batch in range(args.batches):
            events: list[dict[str, object]] = []
            for i in range(args.leads):
                subject = f"lead:b{batch}-{i}"
                events += [{"type": "page.viewed", "subject": subject}] * (i % 4)
                traits = {"budget": (i * 37) % 20000}
                events.append({"type": "lead.created", "subject": subject, "traits": traits})
            started = time.perf_counter()
            ops.ingest.body(json.dumps({"events": events}).encode())
            took = time.perf_counter() - started
            print(
                f"batch {batch}: {len(events)} events, {args.leads} decisions with a model "
                f"in {took:.2f} s ({args.leads / took:,.0f} decisions/s)"
            )
    finally:
        ops.close()


if __name__ == "__main__":
    main()
