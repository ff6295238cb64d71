"""The guardrail property at scale: many more generated scenarios than the test suite plays
(tests/service/test_guardrail_properties.py), on a fresh database, from a random seed unless
one is given.

    .venv/bin/python bench/guardrail_properties.py                      # SQLite, 150 scenarios
    .venv/bin/python bench/guardrail_properties.py --scenarios 400 --seed 7
    .venv/bin/python bench/guardrail_properties.py --postgres           # a scratch PostgreSQL database
    .venv/bin/python bench/guardrail_properties.py --json out.json

Each scenario generates playbooks (every action kind, `sensitive` marks, guardrail
expressions, modes, autonomy sampling) and interleaves ingests, job runs, single and bulk
reviews, overrides, retries, cancels, failing deliveries, mode changes, re-applied options and
time passing on the real service, with a real SMTP and HTTP sink; after every step no sensitive
action may have been delivered without a person's approval given before it
(tests/guardrail_world.py). Prints the seed, the counts (action cases checked, sensitive ones
held back and run after approval, deliveries seen by the sinks and in the ledger) and the
violations: 0, or the shrunk counterexample Hypothesis found, with exit status 1. Prints the
elapsed time; asserts nothing about it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get(
    "OPSLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url`, dropped afterwards."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"opsloop_guardrails_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(args: argparse.Namespace, data_dir: Path, url: str) -> tuple[Counter[str], str | None]:
    from hypothesis import HealthCheck, Phase, settings
    from pydantic import SecretStr

    from opsloop.service import OpsLoop
    from opsloop.settings import Settings
    from tests.conftest import WEBHOOK_SECRET, Clock
    from tests.guardrail_world import World, explore
    from tests.sinks import HttpSink, SmtpSink

    http, smtp, clock = HttpSink(), SmtpSink(), Clock()
    http.start()
    smtp.start()
    ops = OpsLoop(
        Settings(
            data_dir=data_dir,
            database_url=url,
            webhook_secret=SecretStr(WEBHOOK_SECRET),
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            outbox_backoff_base_seconds=0.05,
            outbox_backoff_max_seconds=0.2,
            outbox_max_attempts=3,
        ),
        clock=clock,
    )
    ops.prepare()
    world = World(ops, http, smtp, clock)
    profile = settings(
        deadline=None,
        database=None,
        print_blob=True,
        max_examples=args.scenarios,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )
    failure = None
    try:
        explore(world, profile, seed=args.seed)
    except Exception:
        failure = traceback.format_exc()
    finally:
        ops.close()
        http.stop()
        smtp.stop()
    return world.counts, failure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=int, default=150)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument(
        "--postgres", action="store_true", help="run on a scratch PostgreSQL database"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    logging.disable(logging.ERROR)  # failing and dead-lettered deliveries are on purpose
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            with scratch_postgres(PG_ADMIN) as url:
                counts, failure = run(args, Path(tmp), url)
            backend = "postgresql"
        else:
            counts, failure = run(args, Path(tmp), f"sqlite:///{Path(tmp) / 'opsloop.db'}")
            backend = "sqlite"
    elapsed = time.perf_counter() - started
    figures = {
        "backend": backend,
        "seed": args.seed,
        "scenarios": counts["scenarios"],
        "action_cases": counts["action cases"],
        "sensitive_cases": counts["sensitive cases"],
        "sensitive_cases_held": counts["sensitive cases held"],
        "sensitive_cases_run_after_approval": counts["sensitive cases run after approval"],
        "plain_cases_run": counts["plain cases run"],
        "decisions": counts["decisions"],
        "deliveries_seen_outside": counts["deliveries seen outside"],
        "deliveries_in_the_ledger": counts["deliveries in the ledger"],
        "violations": 0 if failure is None else 1,
        "seconds": round(elapsed, 1),
        "cases_per_second": round(counts["action cases"] / elapsed, 1),
    }
    print(f"guardrail property, {backend}, seed {args.seed}")
    for name, value in figures.items():
        print(f"  {name:<36} {value}")
    print("  all counts:", json.dumps(dict(sorted(counts.items()))))
    if args.json:
        args.json.write_text(json.dumps({**figures, "counts": dict(counts)}, indent=2) + "\n")
    if failure is not None:
        print("\nCOUNTEREXAMPLE (after Hypothesis shrank it):\n" + failure)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
