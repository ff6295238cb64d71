"""`opsloop train` and `opsloop models`: train a playbook's model now, and list its versions."""

from __future__ import annotations

from typing import Annotated, Literal

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
    split: Annotated[
        Literal["time", "stratified"] | None,
        typer.Option(
            help="How rows are held out for the evaluation: time (the latest fifth) or "
            "stratified (a random fifth of each label's rows, for rows whose order is not "
            "time, such as a file sorted by label). Default: as the latest version, else time.",
        ),
    ] = None,
    evaluate: Annotated[
        Literal["auto", "holdout", "walk-forward"],
        typer.Option(
            envvar="OPSLOOP_TRAIN_EVALUATE",
            help="walk-forward: also train on everything before each period (week, month or "
            "quarter, from the history's span) and score the period; holdout: the single "
            "held-out fifth only; auto: walk-forward too when the history spans more than "
            "three months.",
        ),
    ] = "auto",
    as_json: AsJsonTables = False,
) -> None:
    """Train a playbook's model from the ledger now and print its evaluation on the latest
    rows it never saw, with notes in words on what the figures mean. The new version becomes
    champion only if its held-out score shows skill and it beats the champion on the same
    held-out rows; otherwise it runs in shadow as the challenger, with the reason."""
    with service() as ops, err.status("Training", spinner="dots") as status:
        result = ops.learn.train(
            playbook,
            actor=who(),
            force=force,
            step=lambda text: status.update(escape(text)),
            split=split,
            evaluate=evaluate,
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
