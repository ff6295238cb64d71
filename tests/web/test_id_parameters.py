"""Ids beyond what the ledger holds, over real HTTP and the command line, on SQLite and
PostgreSQL: every route taking a whole number in its path or query answers 404 or 422 naming
the parameter (pages: their 404 page), never a 500 from the database driver; the OpenAPI
schema shows the bounds; every CLI argument taking an id refuses such a number by name.

The routes and commands are found in the app's route table and the CLI's command tree, so a
new one cannot be forgotten."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from fastapi import FastAPI
from fastapi.routing import APIRoute
from typer.testing import CliRunner

from opsloop.cli import app as cli_app
from opsloop.settings import Settings
from opsloop.web import auth
from opsloop.web.app import create_app
from tests.conftest import LiveServer, OpsFactory, Serve, lead_playbook
from tests.people import OWNER, SignIn, add_people

LAST_ID = 2**63 - 1
BEYOND = (2**63, 2**64 + 1, -(2**63) - 1)
"""Just past a signed 64-bit id, past an unsigned one, and below the most negative."""
MEANINGLESS = (0, -1)
"""Numbers that look fine to the driver but can name nothing stored."""

PLAYBOOK = "lead-qualification"
SAMPLES = {"name": PLAYBOOK, "source": "shop", "email": OWNER.email, "call": "track"}
"""Values for the path parameters that are not numbers."""


@dataclass(frozen=True)
class Number:
    """A whole-number parameter of a route."""

    method: str
    path: str
    name: str
    """As the request spells it (the alias, e.g. `from`)."""
    where: str
    """`path` or `query`."""
    page: bool

    def url(self, value: int) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(value) if name == self.name else SAMPLES[name]

        path = re.sub(r"\{(\w+)\}", fill, self.path)
        return path if self.where == "path" else f"{path}?{self.name}={value}"

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.where} {self.name}"


def numbers(app: FastAPI) -> list[Number]:
    found = []
    for route in auth.walk_routes(app):
        if not isinstance(route, APIRoute):
            continue
        [access] = auth.route_access(route)
        params = [("path", p) for p in route.dependant.path_params]
        params += [("query", p) for p in route.dependant.query_params]
        for where, param in params:
            if param.field_info.annotation not in (int, int | None):
                continue
            for method in sorted(route.methods - {"HEAD"}):
                found.append(Number(method, route.path, param.alias, where, access.page))
    return found


# Building the app only declares its routes: nothing is opened or written before start-up.
ROUTES = numbers(create_app(Settings(data_dir=Path("/nonexistent"))))


def test_the_route_table_lists_every_id_route() -> None:
    names = {str(number) for number in ROUTES}
    for expected in (
        "GET /api/events/{event_id} path event_id",
        "GET /api/events query before_id",
        "POST /api/decisions/{decision_id}/review path decision_id",
        "DELETE /api/tokens/{token_id} path token_id",
        "GET /api/backtests/{backtest_id} path backtest_id",
        "POST /api/tasks/{task_id}/complete path task_id",
        "POST /sources/quarantine/{item_id}/replay path item_id",
        "GET /actions query before_id",
    ):
        assert expected in names
    assert len([n for n in ROUTES if n.name.endswith("_id")]) >= 20


@pytest.fixture
def site(make_ops: OpsFactory, database_url: str, serve: Serve) -> LiveServer:
    ops = make_ops(database_url, playbooks=[lead_playbook()], use_clock=False)
    # A second version, so that comparing versions reaches the store.
    ops.decide.apply_playbook(lead_playbook("shadow"), "lead.yaml", actor="test")
    add_people(ops)
    return serve(ops)


def ask(client: httpx.Client, number: Number, value: int, csrf: str) -> httpx.Response:
    headers = {"X-CSRF-Token": csrf} if number.page else {}
    # A page's fragment without htmx redirects to the whole page: where the answer is.
    follow = number.page and number.method == "GET"
    return client.request(
        number.method, number.url(value), headers=headers, follow_redirects=follow
    )


def wrong(number: Number, value: int, answer: httpx.Response) -> str | None:
    """What is wrong with the answer, or None."""
    said = f"{number} = {value}: {answer.status_code} {answer.text[:150]!r}"
    if number.page:
        if not answer.headers.get("content-type", "").startswith("text/html"):
            return said + " (a page must answer a page)"
        allowed = {404} if number.where == "path" else {200, 404}
        return None if answer.status_code in allowed else said
    if answer.status_code == 404:
        return None
    if answer.status_code != 422:
        return said
    fields = [error["field"] for error in answer.json()["errors"]]
    return None if number.name in fields else said + " (the 422 must name the parameter)"


def test_ids_beyond_64_bits_are_answered_404_or_422_never_500(
    site: LiveServer, signed: SignIn
) -> None:
    owner, csrf = signed(site.url, OWNER)
    problems = []
    with site.client() as api:
        for number in ROUTES:
            client = owner if number.page else api
            values = BEYOND + (MEANINGLESS if number.where == "path" else ())
            for value in values:
                try:
                    problem = wrong(number, value, ask(client, number, value, csrf))
                except httpx.TransportError as exc:  # the server dropped the connection
                    problem = f"{number} = {value}: {exc!r}"
                if problem:
                    problems.append(problem)
    assert not problems, "\n".join(problems)


def test_an_id_out_of_range_names_the_parameter_and_the_bound(site: LiveServer) -> None:
    with site.client() as api:
        answer = api.get(f"/api/events/{2**63}")
        listing = api.get("/api/decisions", params={"before_id": -1})
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "event_id", "message": f"Input should be less than or equal to {LAST_ID}"}
    ]
    assert listing.status_code == 422
    assert listing.json()["errors"][0]["field"] == "before_id"


def test_a_page_answers_its_404_page_for_an_id_out_of_range(
    site: LiveServer, signed: SignIn
) -> None:
    owner, csrf = signed(site.url, OWNER)
    answer = owner.post(f"/actions/{2**63}/retry", data={"csrf_token": csrf})
    decision = owner.get(f"/decisions/{2**63}")
    digits = owner.get("/decisions/²")  # a digit to str.isdigit, not to int()
    backtest = owner.post(
        "/playbooks/backtest", data={"csrf_token": csrf, "playbook": PLAYBOOK, "version": "²"}
    )
    assert answer.status_code == 404
    assert f"No action {2**63}." in answer.text
    assert (decision.status_code, digits.status_code) == (404, 404)
    assert backtest.status_code == 200, "an unreadable version is no version: the active one"


def test_the_openapi_schema_shows_the_bounds_of_every_id(tmp_path: Path) -> None:
    schema = create_app(Settings(data_dir=tmp_path)).openapi()
    ids = [
        (path, parameter)
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["name"].endswith("_id")
    ]
    assert len(ids) >= 15
    for path, parameter in ids:
        bounds = parameter["schema"]
        if "anyOf" in bounds:  # an optional query id
            bounds = next(s for s in bounds["anyOf"] if s.get("type") == "integer")
        assert (bounds.get("minimum"), bounds.get("maximum")) == (1, LAST_ID), (path, parameter)


# --- the command line ------------------------------------------------------------------------


def id_arguments() -> list[tuple[list[str], str]]:
    """(command path, parameter name) of every whole-number CLI parameter named `*_id`."""
    found = []

    def walk(command: Any, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is not None:  # a group
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
            return
        for param in command.params:
            annotation = param.type_descriptor.annotation
            if param.name.endswith("_id") and annotation in (int, int | None):
                found.append((path, param.name))

    walk(typer.main.get_command(cli_app), [])
    return found


CLI_IDS = id_arguments()


def test_the_cli_lists_its_id_arguments() -> None:
    commands = {" ".join(path) for path, _ in CLI_IDS}
    assert {"replay", "cancel", "retry", "review", "token revoke"} <= commands


@pytest.mark.parametrize(("command", "name"), CLI_IDS, ids=[" ".join(p) for p, _ in CLI_IDS])
def test_a_cli_id_beyond_64_bits_is_refused_naming_the_argument(
    command: list[str],
    name: str,
    make_ops: OpsFactory,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_ops(database_url)
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("OPSLOOP_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(cli_app, [*command, str(2**63)])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{name}'" in result.output
    assert f"less than or equal to {LAST_ID}" in result.output
