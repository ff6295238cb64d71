"""`opsloop report`: preview a week's report in the terminal, as its email's plain text."""

from __future__ import annotations

from typing import Annotated

import typer

from opsloop.cli import rendering
from opsloop.cli.common import AsJson, console, service

commands = typer.Typer()


@commands.command()
def report(
    week: Annotated[
        str | None,
        typer.Option(help="The ISO week, e.g. 2026-W47; the last one that ended by default."),
    ] = None,
    playbook: Annotated[str | None, typer.Option(help="Only this playbook.")] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="Ask the language model for a summary paragraph.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """The weekly report: the four numbers against the week before, what the playbooks
    decided, what waits for people, the deliveries that failed. The email the owners get each
    Monday, without its charts."""
    with service() as ops:
        chosen = week or ops.learn.last_ended_week()
        found = ops.learn.weekly_report(chosen, playbook=playbook, summarize=summary)
        if as_json:
            rendering.print_json({**found, "charts": [c["id"] for c in found["charts"]]})
            return
        console.print(ops.learn.report_text(found), markup=False, highlight=False)
