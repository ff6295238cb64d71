"""The API contract, fuzzed: schemathesis generates input for every operation of the OpenAPI
schema (valid input and invalid input) and calls a live app with an owner's API token. No
answer is a 5xx, and every answer is one the schema documents, in the shape it documents.
`OPSLOOP_FUZZ_EXAMPLES` sets the cases per operation and mode; bench/api_fuzz.py runs many more."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.web.api_contract import Fuzzed, fuzz_operation, fuzzed_app, schema_of_the_app

EXAMPLES = int(os.environ.get("OPSLOOP_FUZZ_EXAMPLES", "25"))

SCHEMA = schema_of_the_app()
OPERATIONS = sorted(SCHEMA.operations)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    with fuzzed_app(tmp_path_factory.mktemp("fuzz")) as app:
        yield app


def test_the_live_app_serves_the_schema_being_fuzzed(fuzzed: Fuzzed) -> None:
    with fuzzed.server.client() as client:
        assert client.get("/openapi.json").json() == SCHEMA.document
    assert len(OPERATIONS) >= 50, "every operation of the API is fuzzed"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_operation_answers_5xx_or_an_undocumented_status(operation: str, fuzzed: Fuzzed) -> None:
    assert fuzz_operation(fuzzed, SCHEMA.operations[operation], examples=EXAMPLES) >= 1


def test_the_run_was_thousands_of_calls(fuzzed: Fuzzed) -> None:
    """Runs after the operations above (same module, same worker): the fuzzing was not empty."""
    assert fuzzed.calls >= len(OPERATIONS) * EXAMPLES, fuzzed.statuses
