"""`opsloop quarantine` and `opsloop replay`: input that was refused, and trying it again once
its source or mapping is fixed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from opsloop.cli import rendering
from opsloop.cli.common import Limit, console, err, id_argument, service, who

commands = typer.Typer()


@commands.command()
def quarantine(limit: Limit = 20) -> None:
    """Input that was refused, with the reason for each."""
    with service() as ops:
        rows = ops.ingest.list_quarantine(limit=limit)
    rendering.show_quarantine(rows)


@commands.command()
def replay(item_id: Annotated[int, id_argument("A held item of `opsloop quarantine`.")]) -> None:
    """Run a quarantined item's body through its ingest path again, once its source or
    mapping is fixed. Decisions on the events it becomes are made by a running server or
    worker."""
    with service() as ops:
        done = ops.ingest.replay_quarantined(item_id, actor=who())
    if not done.ok:
        err.print(
            f"[red]Quarantined item {item_id} was refused again:[/red] {escape(done.reason or '')}"
            "\nIt stays held; fix its source or mapping and replay it again."
        )
        raise typer.Exit(1)
    ids = ", ".join(str(event_id) for event_id in done.event_ids)
    repeats = len(done.event_ids) - done.created
    console.print(
        f"Quarantined item {item_id} replayed: stored as event ids {ids} "
        f"({done.created} new, {repeats} already stored)."
    )
