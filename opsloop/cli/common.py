"""What every command module shares: the two consoles, the settings of this run (the global
options over OPSLOOP_* variables and opsloop.toml), one `service()` block per command, who runs
it, how an error is printed, and the option types several commands take.

Importing this module loads no settings, service or database code: `opsloop --help` pays only
for Typer and Rich. Those are imported by the functions that need them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from opsloop.core.errors import OpsLoopError, PlaybookInvalid
from opsloop.core.ids import FIRST_ID, LAST_ID

if TYPE_CHECKING:
    from opsloop.service import OpsLoop
    from opsloop.settings import Settings

PIPED_WIDTH = 160
"""Rich lays out for 80 columns when the output is not a terminal (a pipe, a file, a CI log):
tables were cut and messages wrapped mid-word there. Piped output gets this width instead, and
error messages are never wrapped by us (the reader's terminal wraps them). `COLUMNS` wins."""


def _console(*, stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal or os.environ.get("COLUMNS") else PIPED_WIDTH
    return Console(stderr=stderr, width=width, soft_wrap=stderr)


console = _console()
err = _console(stderr=True)

_overrides: dict[str, Any] = {}
"""The global options given on this command line (`--data-dir` …), by setting name."""


def override_settings(**given: Any) -> None:
    """Keep the global options of this run; those not given (None) are left to the settings."""
    _overrides.clear()
    _overrides.update({name: value for name, value in given.items() if value is not None})


def settings(**extra: Any) -> Settings:
    """The settings of this run, `extra` over the global options; exit 2 when they are wrong."""
    from pydantic import ValidationError

    from opsloop.settings import Settings

    try:
        config = Settings(**{**_overrides, **extra})
    except (ValidationError, ValueError) as exc:
        err.print(f"[red]Configuration error:[/red]\n{escape(str(exc))}")
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return config


@contextmanager
def service(**extra: Any) -> Iterator[OpsLoop]:
    """The service for one command, on a database brought to the newest schema (unless
    `auto_migrate` is off), closed afterwards. An OpsLoopError raised in the block is printed
    and exits with 1."""
    from opsloop.service import OpsLoop

    ops = OpsLoop(settings(**extra))
    try:
        if ops.settings.auto_migrate:
            ops.migrate()
        yield ops
    except OpsLoopError as exc:
        fail(exc)
    finally:
        ops.close()


def fail(exc: OpsLoopError) -> NoReturn:
    """Print the error and exit with 1."""
    err.print(f"[red]Error:[/red] {escape(str(exc))}")
    raise typer.Exit(1)


def fail_problems(exc: PlaybookInvalid) -> NoReturn:
    """Print each problem of a playbook or contracts file, with its line, and exit with 1."""
    for problem in exc.problems:
        err.print(f"[red]{escape(str(problem))}[/red]")
    raise typer.Exit(1)


def who() -> str:
    """The login of whoever runs the command ("cli" when it cannot be told): the reviewer of a
    review, the author of playbook changes, retries, backtests and trainings."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "cli"


def actor() -> str:
    """`cli:<login>`: how the audit trail names a person at the command line for accounts,
    tokens, sources, contracts and retention."""
    return f"cli:{who()}"


# --- option types several commands take ------------------------------------------------------

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
JustJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
AsJsonTables = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Limit = Annotated[int, typer.Option(help="How many to list.")]


def id_argument(help: str) -> Any:
    """An argument naming a stored row by its id: a number outside what an id can be is
    refused by name, before any query."""
    return typer.Argument(help=help, min=FIRST_ID, max=LAST_ID)
