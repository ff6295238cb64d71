"""Fuzz every operation of the HTTP API with schemathesis, far longer than the suite does.

    .venv/bin/python bench/api_fuzz.py                        # SQLite, 300 cases per operation and mode
    .venv/bin/python bench/api_fuzz.py --examples 400 --backend postgres

The same live app and checks as tests/web/test_api_contract.py (an owner's API token; no 5xx;
every status, content type and body one the OpenAPI schema documents), with valid and invalid
input for each operation. Unlike the test it does not stop at an operation's first failure: it
goes on to the next operation and prints every failure at the end. Exit code 1 if any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import create_pg_database, drop_pg_database  # noqa: E402

from tests.web.api_contract import fuzz_operation, fuzzed_app, schema_of_the_app  # noqa: E402

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="cases per operation and mode")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    args = parser.parse_args()

    schema = schema_of_the_app()
    failures: list[tuple[str, str]] = []
    started = time.perf_counter()
    database = create_pg_database(args.pg_admin_url) if args.backend == "postgres" else None
    try:
        with (
            tempfile.TemporaryDirectory() as folder,
            fuzzed_app(Path(folder), database_url=database and database[1]) as app,
        ):
            for label, operation in sorted(schema.operations.items()):
                before = app.calls
                try:
                    fuzz_operation(app, operation, examples=args.examples)
                except (Exception, BaseExceptionGroup) as exc:
                    failures.append((label, str(exc)))
                    outcome = "FAILED"
                else:
                    outcome = "ok"
                print(f"{label:55} {app.calls - before:6} calls  {outcome}", flush=True)
            calls, statuses = app.calls, app.statuses
    finally:
        if database is not None:
            drop_pg_database(args.pg_admin_url, database[0])
    elapsed = time.perf_counter() - started

    print()
    print(f"backend: {args.backend}; operations: {len(schema.operations)}")
    print(f"calls: {calls} in {elapsed:.0f} s ({calls / elapsed:.0f}/s)")
    print("statuses: " + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())))
    print(f"5xx answers: {sum(n for code, n in statuses.items() if code >= 500)}")
    print(f"operations with a failure: {len(failures)}")
    for label, message in failures:
        print(f"\n--- {label}\n{message[:3000]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
