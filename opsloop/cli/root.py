"""The `opsloop` command: its global options, and the command modules assembled in the order
`opsloop --help` lists them. Each module holds one group of commands; they import
opsloop/cli/common.py and opsloop/cli/rendering.py, never this module or each other."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from opsloop import gc_tuning
from opsloop.cli import (
    accounts,
    ask,
    backtest,
    contracts,
    decisions,
    demo,
    docs,
    events,
    experiments,
    forecasts,
    ledger,
    llm,
    models,
    playbooks,
    quarantine,
    sequences,
    serve,
    sources,
    tasks,
    weekly_report,
)
from opsloop.cli.common import err, override_settings
from opsloop.core.errors import OpsLoopError

app = typer.Typer(
    help="OpsLoop: watch your business's signals, decide what needs attention, act, and learn.\n\n"
    "Start with `opsloop demo` to see it run on a sample business.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

# Commands of their own: `opsloop serve`, `opsloop decisions` …
app.add_typer(serve.commands)  # serve, worker, migrate
app.add_typer(demo.commands)  # demo, flywheel
app.add_typer(events.commands)  # ingest, import
app.add_typer(decisions.commands)  # decisions, review, metrics, actions, retry, cancel
app.add_typer(quarantine.commands)  # quarantine, replay
app.add_typer(models.commands)  # train, models
app.add_typer(backtest.commands)  # backtest
app.add_typer(experiments.commands)  # experiments
app.add_typer(forecasts.commands)  # forecasts
app.add_typer(weekly_report.commands)  # report
app.add_typer(ask.commands)  # ask
# Groups: `opsloop playbook apply` …
app.add_typer(playbooks.playbook_app, name="playbook")
app.add_typer(accounts.user_app, name="user")
app.add_typer(accounts.token_app, name="token")
app.add_typer(sources.source_app, name="source")
app.add_typer(contracts.contract_app, name="contract")
app.add_typer(ledger.audit_app, name="audit")
app.add_typer(ledger.db_app, name="db")
app.add_typer(llm.llm_app, name="llm")
app.add_typer(sequences.sequences_app, name="sequences")
app.add_typer(tasks.tasks_app, name="tasks")
app.add_typer(docs.docs_app, name="docs")


@app.callback()
def _main(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where OpsLoop keeps its database and playbooks.",
            envvar="OPSLOOP_DATA_DIR",
            show_default="./opsloop-data",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Default: SQLite in the data dir.",
            envvar="OPSLOOP_DATABASE_URL",
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            help="DEBUG, INFO, WARNING or ERROR.",
            envvar="OPSLOOP_LOG_LEVEL",
            show_default="WARNING",
        ),
    ] = None,
) -> None:
    override_settings(data_dir=data_dir, database_url=database_url, log_level=log_level)


def main() -> None:
    """The `opsloop` script (pyproject.toml) and `python -m opsloop`."""
    gc_tuning.tune_for_command()
    try:
        app()
    except OpsLoopError as exc:  # errors raised outside a `service()` block
        err.print(f"[red]Error:[/red] {escape(str(exc))}")
        sys.exit(1)
    finally:
        gc_tuning.skip_collections_at_exit()
