"""`opsloop backtest`: replay a playbook, saved or a draft file, over past events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from opsloop.cli import rendering, reports
from opsloop.cli.common import err, fail_problems, service, who
from opsloop.core.errors import PlaybookInvalid

commands = typer.Typer()


@commands.command()
def backtest(
    target: Annotated[
        str,
        typer.Argument(
            metavar="PLAYBOOK_FILE_OR_NAME",
            help="A playbook YAML file (a draft, validated first) or a saved playbook's name.",
        ),
    ],
    since: Annotated[
        str,
        typer.Option(help="Start of the period: a duration back from now (90d) or a date."),
    ] = "90d",
    until: Annotated[
        str | None, typer.Option(help="End of the period, written the same way. Default: now.")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="With a name: replay this saved version, not the active one.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay a playbook over past events: what it would have decided, against the active
    version, reviewers' choices and what happened. Nothing is sent; only the report is kept."""
    from opsloop.core.yaml_source import read_text

    path = Path(target)
    is_file = path.suffix in (".yaml", ".yml") or path.exists()
    if is_file and not path.is_file():
        err.print(f"[red]{escape(target)}: no such file[/red]")
        raise typer.Exit(2)
    with service() as ops, rendering.backtest_progress() as progress:
        try:
            report = ops.learn.backtest(
                playbook=None if is_file else target,
                source=read_text(path) if is_file else None,
                file=str(path),
                version=version,
                since=since,
                until=until,
                actor=who(),
                progress=progress,
            )
        except PlaybookInvalid as exc:
            fail_problems(exc)
    if as_json:
        rendering.print_json(report)
    else:
        reports.show_backtest(report)
