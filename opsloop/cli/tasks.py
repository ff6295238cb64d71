"""`opsloop tasks`: the follow-up tasks decisions created; marking one done or reassigning it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from opsloop.cli.common import Limit, console, service, who
from opsloop.core.ids import FIRST_ID, LAST_ID

tasks_app = typer.Typer(
    help="Follow-up tasks created by task actions (docs/cli.md#opsloop-tasks).",
    invoke_without_command=True,
)

TaskId = Annotated[
    int, typer.Argument(help="A task of `opsloop tasks`.", min=FIRST_ID, max=LAST_ID)
]


@tasks_app.callback()
def tasks(
    context: typer.Context,
    status: Annotated[str, typer.Option(help="open, done, or all")] = "open",
    assignee: Annotated[str | None, typer.Option(help="Only this person's or team's.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open ones past due.")] = False,
    limit: Limit = 50,
) -> None:
    """List tasks (open ones by default), newest first."""
    if context.invoked_subcommand is not None:
        return
    if status not in ("open", "done", "all"):
        raise typer.BadParameter("open, done or all", param_hint="--status")
    with service() as ops:
        rows = ops.deliver.list_tasks(
            status=None if status == "all" else status,
            assignee=assignee,
            overdue=overdue,
            limit=limit,
        )
    if not rows:
        console.print("No tasks.")
        return
    table = Table("id", "task", "for", "subject", "decision", "due", "status")
    for row in rows:
        due = row["due_at"]
        table.add_row(
            str(row["id"]),
            escape(row["title"]),
            escape(row["assignee"] or ""),
            escape(row["subject"]),
            str(row["decision_id"]),
            f"{due:%Y-%m-%d %H:%M} UTC" if due else "",
            row["status"] if row["status"] == "open" else f"done by {row['completed_by']}",
        )
    console.print(table)


@tasks_app.command()
def done(task_id: TaskId) -> None:
    """Mark a task done (your login is recorded)."""
    with service() as ops:
        task = ops.deliver.complete_task(task_id, by=who())
    console.print(f"Task {task_id} done: {escape(task['title'])}")


@tasks_app.command()
def assign(
    task_id: TaskId,
    assignee: Annotated[str, typer.Argument(help="Who does it now: an email or a team name.")],
) -> None:
    """Give an open task to someone else."""
    with service() as ops:
        task = ops.deliver.reassign_task(task_id, assignee, by=who())
    console.print(f"Task {task_id} is now for {escape(task['assignee'] or 'nobody')}.")
