"""The user documentation stays true: these tests fail when a setting, CLI command or option,
action or feature kind, API route or error code is missing from docs/, when a playbook shown
in the docs no longer validates, or when the README's first commands stop existing."""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import typer
import yaml

import opsloop.cli
from opsloop.core.decisions import ACTION_STATUSES, DECISION_STATUSES, VERDICTS
from opsloop.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    OpsLoopError,
    PlaybookInvalid,
    PlaybookProblem,
    RateLimited,
    TooLarge,
    Unauthorized,
)
from opsloop.core.playbooks import ACTION_KINDS, FEATURE_KINDS, GUARDED_KINDS, MODES
from opsloop.core.sources import SourceKind, parse_source
from opsloop.perception.mapping import Mapping
from opsloop.service.decide.playbooks import load_playbook
from opsloop.settings import ENV_PREFIX, Settings, SourceSettings, WebhookEndpoint
from opsloop.web.app import create_app
from opsloop.web.errors import error_body

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Options every Typer app has; they document themselves.
BUILTIN_OPTIONS = {"--help", "--install-completion", "--show-completion"}
SHELL_BUILTINS = {"cd", "export", "source", ".", "set", "echo", "true"}


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def fenced_blocks(text: str, languages: tuple[str, ...]) -> list[str]:
    pattern = r"^```(?:" + "|".join(map(re.escape, languages)) + r")[ \t]*\n(.*?)^```"
    return re.findall(pattern, text, re.S | re.M)


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_documented_with_its_environment_variable(name: str) -> None:
    text = doc("configuration.md")
    variable = f"{ENV_PREFIX}{name.upper()}"
    assert f"`{variable}`" in text, f"{variable} is missing from docs/configuration.md"
    assert f"| `{name}` |" in text, f"the setting `{name}` has no row in the settings table"


@pytest.mark.parametrize(
    "key", sorted({*SourceSettings.model_fields, *WebhookEndpoint.model_fields})
)
def test_every_key_of_a_nested_setting_is_documented(key: str) -> None:
    assert f"`{key}`" in doc("configuration.md")


def test_configuration_explains_secret_files_the_config_path_and_postgresql() -> None:
    text = doc("configuration.md")
    for needle in ("_FILE", "OPSLOOP_CONFIG", "opsloop.toml", "postgresql+psycopg://"):
        assert needle in text


# --- command line ----------------------------------------------------------------------------


def cli_commands() -> Iterator[tuple[str, Any]]:
    """("opsloop playbook apply", command) for the app and every command and group in it."""

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
        yield " ".join(path), command
        for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
            if not getattr(sub, "hidden", False):
                yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(opsloop.cli.app), ("opsloop",))


def cli_section(text: str, path: str) -> str:
    """The part of docs/cli.md about `path`: from its heading to the next heading, or for the
    app itself everything before the first section."""
    if path == "opsloop":
        return text.split("\n## ", 1)[0]
    heading = re.search(r"^#{2,4} `" + re.escape(path) + r"[` ]", text, re.M)
    assert heading, f"docs/cli.md has no heading for `{path}`"
    rest = text[heading.end() :]
    following = re.search(r"^#{2,4} ", rest, re.M)
    return rest[: following.start()] if following else rest


def test_the_cli_walk_finds_the_commands() -> None:
    paths = [path for path, _ in cli_commands()]
    assert {"opsloop serve", "opsloop playbook", "opsloop playbook apply"} <= set(paths)


@pytest.mark.parametrize("path", [path for path, _ in cli_commands()][1:])
def test_every_cli_command_is_documented(path: str) -> None:
    text = doc("cli.md")
    assert f"`{path}" in text, f"`{path}` is missing from docs/cli.md"


@pytest.mark.parametrize(
    ("path", "option"),
    [
        (path, max(param.opts, key=len))
        for path, command in cli_commands()
        for param in command.params
        if param.param_type_name == "option" and not set(param.opts) & BUILTIN_OPTIONS
    ],
)
def test_every_cli_option_is_documented_with_its_command(path: str, option: str) -> None:
    section = cli_section(doc("cli.md"), path)
    assert f"`{option}" in section, f"{option} of `{path}` is missing from its docs/cli.md section"


def test_the_ingest_file_formats_are_documented() -> None:
    from opsloop.perception.files import EVENT_COLUMNS

    section = cli_section(doc("cli.md"), "opsloop ingest")
    for needle in ("JSONL", "CSV", "traits.", "payload."):
        assert needle in section
    for column in EVENT_COLUMNS:
        assert f"`{column}`" in section


# --- playbooks -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ACTION_KINDS)
def test_every_action_kind_is_documented(kind: str) -> None:
    assert f"`{kind}`" in doc("playbooks.md")


@pytest.mark.parametrize("kind", FEATURE_KINDS)
def test_every_feature_kind_is_documented(kind: str) -> None:
    assert f"| `{kind}` |" in doc("playbooks.md"), f"feature kind {kind} has no row"


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_is_documented(mode: str) -> None:
    assert f"| `{mode}` |" in doc("playbooks.md")


def documented_yaml(*, sources: bool) -> list[tuple[str, str]]:
    """(where, YAML text) of every ```yaml block in docs/ that is a playbook (has `name:`), or
    with `sources`, a source definition (has `name:` and a source `kind:`)."""
    found = []
    for path in sorted(DOCS.glob("*.md")):
        for index, block in enumerate(fenced_blocks(path.read_text(encoding="utf-8"), ("yaml",))):
            data = yaml.safe_load(block)
            if not (isinstance(data, dict) and "name" in data):
                continue
            if (data.get("kind") in get_args(SourceKind)) == sources:
                found.append((f"docs/{path.name}#yaml{index + 1}", block))
    return found


def documented_playbooks() -> list[tuple[str, str]]:
    return documented_yaml(sources=False)


@pytest.mark.parametrize(
    ("where", "text"),
    [pytest.param(where, text, id=where) for where, text in documented_yaml(sources=True)],
)
def test_every_source_in_the_docs_validates(where: str, text: str) -> None:
    try:
        spec, _ = parse_source(text, where)
    except PlaybookInvalid as exc:
        pytest.fail(f"{where} is not a valid source:\n{exc}")
    if spec.mapping is not None:
        Mapping.load(spec.mapping, origin=where)


def test_the_sources_docs_show_every_kind_of_source() -> None:
    kinds = {yaml.safe_load(text)["kind"] for _, text in documented_yaml(sources=True)}
    assert kinds == set(get_args(SourceKind)), (
        f"docs/ show no {set(get_args(SourceKind)) - kinds} source"
    )


def test_playbooks_md_holds_a_complete_example() -> None:
    examples = [text for where, text in documented_playbooks() if "playbooks.md" in where]
    assert examples, "docs/playbooks.md needs a complete example playbook in a ```yaml block"
    playbook, _ = load_playbook(examples[0], "docs/playbooks.md")
    kinds = {feature.kind for feature in playbook.features.values()}
    # A ticket has no demand to forecast: `forecast` is shown in its own section (and
    # playbooks/restock.yaml).
    assert kinds == set(FEATURE_KINDS) - {"forecast"}, (
        f"the example misses feature kinds {set(FEATURE_KINDS) - {'forecast'} - kinds}"
    )
    actions = {action.kind for option in playbook.options.values() for action in option.actions}
    assert actions & GUARDED_KINDS, "the example shows a guarded action"
    assert len(actions) >= 5, "the example shows several action kinds"
    assert playbook.scorecard
    assert playbook.rules
    assert playbook.guardrails
    assert playbook.outcome is not None
    assert playbook.trigger.cooldown is not None


@pytest.mark.parametrize(
    ("where", "text"),
    [pytest.param(where, text, id=where) for where, text in documented_playbooks()],
)
def test_every_playbook_in_the_docs_validates(where: str, text: str) -> None:
    try:
        load_playbook(text, where)
    except PlaybookInvalid as exc:
        pytest.fail(f"{where} is not a valid playbook:\n{exc}")


# --- HTTP API --------------------------------------------------------------------------------


def app_routes(app: Any) -> Iterator[tuple[str, str]]:
    """(METHOD, path) of every route, also through routers included lazily (newer FastAPI)."""

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            if hasattr(route, "path"):
                for method in sorted(getattr(route, "methods", None) or {"GET"}):
                    yield method, prefix + route.path
            elif hasattr(route, "original_router"):
                context = getattr(route, "include_context", None)
                yield from walk(
                    route.original_router.routes, prefix + getattr(context, "prefix", "")
                )
            elif hasattr(route, "routes"):
                yield from walk(route.routes, prefix)

    yield from walk(list(app.routes), "")


def page_routes(app: Any) -> set[tuple[str, str]]:
    """(METHOD, path) of the browser pages: routes left out of the OpenAPI schema."""
    from fastapi.routing import APIRoute

    from opsloop.web.auth import walk_routes

    return {
        (method, route.path)
        for route in walk_routes(app)
        if isinstance(route, APIRoute)
        and not route.include_in_schema
        and not route.path.startswith("/openapi")
        for method in route.methods - {"HEAD"}
    }


@pytest.fixture
def api_routes(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(Settings(data_dir=tmp_path))
    pages = page_routes(app)
    routes = {
        (method, path)
        for method, path in app_routes(app)
        if method not in ("HEAD", "OPTIONS")
        and not path.startswith(("/openapi", "/docs", "/redoc", "/static"))
        and (method, path) not in pages
    }
    schema_paths = set(app.openapi()["paths"])
    assert schema_paths <= {path for _, path in routes}, "the route walk missed routes"
    return routes


def test_every_api_route_is_documented(api_routes: set[tuple[str, str]]) -> None:
    text = doc("api.md")
    missing = sorted(
        f"{method} {path}" for method, path in api_routes if f"{method} {path}" not in text
    )
    assert not missing, f"docs/api.md does not document: {', '.join(missing)}"


def test_every_page_is_documented(tmp_path: Path) -> None:
    pages = page_routes(create_app(Settings(data_dir=tmp_path)))
    assert ("GET", "/login") in pages
    text = doc("web.md")
    missing = sorted(
        f"{method} {path}" for method, path in pages if f"`{method} {path}`" not in text
    )
    assert not missing, f"docs/web.md does not document the pages {', '.join(missing)}"


@pytest.mark.parametrize(
    "error",
    [
        InvalidInput([FieldError("type", "is required")]),
        TooLarge.single("body", "too big"),
        PlaybookInvalid([PlaybookProblem("p.yaml", 1, "name", "is required")]),
        Unauthorized("bad signature"),
        NotFound("no decision 1"),
        Conflict("already reviewed"),
        Forbidden("needs the reviewer role"),
        RateLimited("too many failed sign-ins", retry_after=60),
    ],
    ids=lambda error: type(error).__name__,
)
def test_every_error_code_is_documented_with_its_status(error: OpsLoopError) -> None:
    status, body = error_body(error)
    row = re.search(r"^\| `" + re.escape(body["error"]) + r"` \| (\d{3}) \|", doc("api.md"), re.M)
    assert row, f"docs/api.md has no row for the error {body['error']!r}"
    assert int(row.group(1)) == status


def test_the_api_docs_show_the_error_body_and_webhook_verification() -> None:
    text = doc("api.md")
    for needle in ('"error"', '"message"', '"errors"', '"quarantine_id"', '"field"'):
        assert needle in text
    for needle in ("openssl dgst -sha256 -hmac", "standardwebhooks", "webhook-signature"):
        assert needle in text


# --- concepts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word", [*DECISION_STATUSES, *ACTION_STATUSES], ids=lambda word: f"status-{word}"
)
def test_every_decision_and_action_status_is_explained(word: str) -> None:
    assert f"| `{word}` |" in doc("concepts.md")


@pytest.mark.parametrize("verdict", VERDICTS)
def test_every_review_verdict_is_explained(verdict: str) -> None:
    assert f"**{verdict}**" in doc("concepts.md")


# --- README ----------------------------------------------------------------------------------


def readme_first_commands(count: int = 3) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands: list[str] = []
    for block in fenced_blocks(text, ("sh", "bash", "shell", "console")):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line and not line.startswith("#"):
                commands.append(line)
        if len(commands) >= count:
            break
    return commands[:count]


def simple_commands(line: str) -> Iterator[list[str]]:
    """The simple commands of a shell line: `a && b | c; d` gives a, b, c and d."""
    words = shlex.split(line, comments=True)
    current: list[str] = []
    for word in [*words, ";"]:
        if word in ("&&", "||", "|", ";"):
            if current:
                yield current
            current = []
        else:
            current.append(word)


def command_problem(words: list[str]) -> str | None:
    """Why `words` would not run on a checkout after the install command, or None."""
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]  # VAR=value prefixes
    if not words or words[0] in SHELL_BUILTINS:
        return None
    program, args = words[0], words[1:]
    name = Path(program).name
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("scripts", {})
    in_checkout = "/" in program and not program.startswith(".venv/")
    if in_checkout and not (ROOT / program).is_file():
        return f"{program} does not exist"
    venv_program = ROOT / ".venv" / "bin" / name
    if not in_checkout and not (shutil.which(name) or venv_program.exists() or name in scripts):
        return f"{program} is not installed"
    if name in scripts:
        return opsloop_command_problem(args)
    if name.startswith("python") and args[:1] == ["-m"] and len(args) > 1:
        module = args[1]
        if module not in ("venv", "pip") and importlib.util.find_spec(module) is None:
            return f"no module {module}"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get(
        "optional-dependencies", {}
    )
    for arg in args:
        wanted = re.match(r"^\.\[([\w,\-]+)\]$", arg)
        if wanted:
            unknown = set(wanted.group(1).split(",")) - set(extras)
            if unknown:
                return f"pyproject.toml has no extra {', '.join(sorted(unknown))}"
    return None


def opsloop_command_problem(args: list[str]) -> str | None:
    command: Any = typer.main.get_command(opsloop.cli.app)
    for word in args:
        subcommands = getattr(command, "commands", None)
        if word.startswith("-") or not subcommands:
            break
        if word not in subcommands:
            return f"`opsloop {word}` is not a command"
        command = subcommands[word]
    return None


def test_the_readmes_first_three_commands_exist() -> None:
    readme = ROOT / "README.md"
    if not readme.exists() or not readme.read_text(encoding="utf-8").strip():
        reason = "README.md has no content yet; the lead writes it"
        print(reason)
        pytest.skip(reason)
    commands = readme_first_commands()
    assert len(commands) == 3, f"the README should open with install, run and test: {commands}"
    problems = [
        f"{line!r}: {problem}"
        for line in commands
        for words in simple_commands(line)
        if (problem := command_problem(words)) is not None
    ]
    assert not problems, "README commands that would not run:\n" + "\n".join(problems)


def test_the_readme_check_notices_a_command_that_does_not_exist() -> None:
    assert command_problem(["scripts/no-such-script"]) is not None
    assert command_problem([".venv/bin/opsloop", "no-such-command"]) is not None
    assert command_problem(["opsloop", "playbook", "apply", "x.yaml"]) is None
    assert command_problem(["pip", "install", "-e", ".[no-such-extra]"]) is not None
