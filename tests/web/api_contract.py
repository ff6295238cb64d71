"""The API fuzzed by schemathesis: a live server with a signed-in owner's API token, a ledger
with something in it, and every operation of the OpenAPI schema called with generated input.

Shared by the suite (tests/web/test_api_contract.py, a few thousand cases) and the benchmark
(bench/api_fuzz.py, tens of thousands).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi import checks as openapi_checks

from opsloop.core.errors import InvalidInput
from opsloop.service import OpsLoop
from opsloop.settings import Settings
from opsloop.web.app import create_app
from tests.conftest import LEAD_PLAYBOOK, WEBHOOK_SECRET, LiveServer

CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
"""No 5xx, and every answer is one the schema documents, in the shape it documents."""


@dataclass
class Fuzzed:
    """A live app to fuzz and what the run saw."""

    server: LiveServer
    token: str
    token_id: int
    calls: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, case: Any) -> Any:
        own = case.path_parameters and case.path_parameters.get("token_id") == self.token_id
        if case.method == "DELETE" and own:
            # Revoking the token the fuzzer signs in with would leave the rest of the run
            # testing the 401 answer; other tokens are fair game.
            case.path_parameters["token_id"] = self.token_id + 10_000
        response = case.call(base_url=self.server.url, headers=self.headers, timeout=30)
        self.calls += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=self.headers)
        return response


@dataclass(frozen=True)
class AppSchema:
    document: dict[str, Any]
    operations: dict[str, APIOperation]
    """`GET /api/events` → the operation."""


def schema_of_the_app() -> AppSchema:
    """The app's OpenAPI schema for schemathesis, built from the routes as the server builds
    it (a test checks the live server serves the same)."""
    with tempfile.TemporaryDirectory() as folder:
        document = create_app(Settings(data_dir=Path(folder)), start_workers=False).openapi()
    loaded = schemathesis.openapi.from_dict(document)
    operations = {}
    for result in loaded.get_all_operations():
        operation = result.ok()
        operations[f"{operation.method.upper()} {operation.path}"] = operation
    return AppSchema(document, operations)


def fuzz_operation(fuzzed: Fuzzed, operation: APIOperation, *, examples: int) -> int:
    """Call one operation with `examples` generated valid inputs and as many invalid ones;
    fail on the first answer the checks refuse. Returns the number of calls made."""
    before = fuzzed.calls
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            fuzzed.call(case)

        try:
            run()
        except Unsatisfiable:
            # Nothing invalid can be sent to an operation that takes no input, or only text
            # in its path.
            if mode is GenerationMode.POSITIVE:
                raise
    return fuzzed.calls - before


@contextmanager
def fuzzed_app(data_dir: Path, database_url: str | None = None) -> Iterator[Fuzzed]:
    """Serve a fresh OpsLoop with the lead playbook, a few events, decisions and a quarantined
    body, so generated ids sometimes exist and reads return rows."""
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        webhook_secret=WEBHOOK_SECRET,
        worker_poll_seconds=0.05,
    )
    ops = OpsLoop(settings)
    ops.prepare()
    ops.decide.apply_playbook(LEAD_PLAYBOOK.read_text(), "lead-qualification.yaml", actor="fuzz")
    _seed(ops)
    server = LiveServer(ops)
    server.start()
    try:
        made = ops.accounts.create_token("fuzz", "admin", actor="fuzz")
        yield Fuzzed(server, made.token, int(made.row["id"]))
    finally:
        server.stop()
        ops.close()


def _seed(ops: OpsLoop) -> None:
    now = datetime.now(UTC).isoformat()
    for n in range(1, 6):
        event = {
            "type": "lead.created",
            "subject": f"lead:{n}",
            "occurred_at": now,
            "traits": {"email": f"lead{n}@example.com", "company_size": 10 * n, "budget": 900 * n},
        }
        ops.ingest.body(json.dumps(event).encode())
    with contextlib.suppress(InvalidInput):  # refused and kept: a row for the quarantine routes
        ops.ingest.body(b'{"type": "lead.created"}')
    ops.run_jobs()
