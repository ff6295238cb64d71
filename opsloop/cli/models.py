"""`opsloop train` and `opsloop models`: train a playbook's model now, and list its versions."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from opsloop.cli import rendering, reports
from opsloop.cli.common import AsJson, AsJsonTables, console, err, service, who

commands = typer.Typer()


@commands.command()
def train(
    playbook: Annotated[str, typer.Argument(help="The playbook whose `model:` to train.")],
    force: Annotated[
        bool, typer.Option("--force", help="Train even when the labelled rows have not changed.")
    ] = False,
    as_json: AsJsonTables = False,
) -> None:
    """Train a playbook's model from the ledger now and print its evaluation on the latest
    rows it never saw. The new version replaces the champion only if it beats it on the same
    held-out rows; otherwise it runs in shadow as the challenger."""
    with service() as ops, err.status("Training", spinner="dots") as status:
        result = ops.learn.train(
            playbook,
            actor=who(),
            force=force,
            step=lambda text: status.update(escape(text)),
        )
    if as_json:
        rendering.print_json(result)
        return
    for one in [result, *result.get("also", [])]:
        if one["status"] == "unchanged":
            console.print(f"[yellow]{escape(one['message'])}[/yellow]")
        elif one.get("kind") == "text":
            reports.show_text_training(one)
        else:
            reports.show_training(one)


@commands.command()
def models(
    playbook: Annotated[str, typer.Argument(help="The playbook whose model versions to list.")],
    as_json: AsJson = False,
) -> None:
    """A playbook's model versions: champion, challenger and retired, with their metrics."""
    with service() as ops:
        listing = ops.learn.list_models(playbook)
    if as_json:
        rendering.print_json(listing)
        return
    reports.show_models(playbook, listing)
