"""`opsloop sequences`: who is at which step of which sequence; stopping one or all."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from opsloop.cli.common import Limit, console, err, service, who
from opsloop.core.ids import FIRST_ID, LAST_ID

sequences_app = typer.Typer(
    help="Sequences: an option's steps sent over time (docs/playbooks.md#sequences-steps).",
    invoke_without_command=True,
)

STATUSES = ("open", "active", "waiting", "completed", "stopped", "skipped")


@sequences_app.callback()
def sequences(
    context: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="open (active or waiting), completed, stopped, skipped")
    ] = "open",
    playbook: Annotated[str | None, typer.Option(help="Only this playbook's sequences.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject's.")] = None,
    limit: Limit = 50,
) -> None:
    """List sequences (open ones by default): the next step and when it is due."""
    if context.invoked_subcommand is not None:
        return
    if status is not None and status not in STATUSES:
        err.print(f"[red]--status must be one of {', '.join(STATUSES)}[/red]")
        raise typer.Exit(2)
    with service() as ops:
        rows = ops.deliver.list_sequences(
            status=status, playbook=playbook, subject=subject, limit=limit
        )
    if not rows:
        console.print(f"No {status or ''} sequences.".replace("  ", " "))
        return
    table = Table("id", "subject", "playbook", "status", "done", "next step", "due / ended")
    for row in rows:
        moment = row["next_at"] if row["status"] in ("active", "waiting") else row["ended_at"]
        table.add_row(
            str(row["id"]),
            escape(row["subject"]),
            escape(f"{row['playbook']} · {row['option']}"),
            row["status"],
            str(row["steps_done"]),
            escape(row["next_step"] or row["stop_reason"] or ""),
            f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "",
        )
    console.print(table)


@sequences_app.command()
def stop(
    sequence_id: Annotated[
        int | None, typer.Argument(help="One sequence, by its id.", min=FIRST_ID, max=LAST_ID)
    ] = None,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit trail.")] = "",
    all_open: Annotated[
        bool, typer.Option("--all", help="Every open sequence (or --playbook's).")
    ] = False,
    playbook: Annotated[str | None, typer.Option(help="With --all: this playbook's.")] = None,
    subject: Annotated[str | None, typer.Option(help="With --all: this subject's.")] = None,
) -> None:
    """Stop one open sequence, or every open one: no further step runs."""
    if (sequence_id is None) == (not all_open):
        err.print(
            "[red]Give a sequence id, or --all (optionally with --playbook or --subject).[/red]"
        )
        raise typer.Exit(2)
    if not reason.strip():
        err.print("[red]Say why with --reason: it is kept in the audit trail.[/red]")
        raise typer.Exit(2)
    with service() as ops:
        if sequence_id is not None:
            done = int(ops.deliver.stop_sequence(sequence_id, who=who(), reason=reason))
        else:
            done = ops.deliver.stop_sequences(
                who=who(), reason=reason, playbook=playbook, subject=subject
            )
    if sequence_id is not None and not done:
        err.print(f"Sequence {sequence_id} is not open (it ended, or there is no such sequence).")
        raise typer.Exit(1)
    console.print(f"Stopped {done} sequence{'' if done == 1 else 's'}.")
