"""`opsloop ask "…"`: the operations chat in the terminal — the answer and the records it cites,
with the pages where they live (docs/ask.md). Read-only; the question is logged."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from opsloop.cli import rendering
from opsloop.cli.common import AsJson, console, service, who
from opsloop.core.access import ROLE_PERMISSION, Principal
from opsloop.core.errors import NotFound

commands = typer.Typer()


@commands.command()
def ask(
    question: Annotated[str, typer.Argument(help='A question, e.g. "What is waiting for me?"')],
    as_person: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Ask as this person (an account's email): what waits for them, what their "
            "role may read. Default: you, as an owner.",
            envvar="OPSLOOP_ASK_AS",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Answer a question about the business from the ledger, citing the records used. It only
    reads: to act, open the page it links."""
    with service() as ops:
        if as_person is None:
            # Whoever runs the CLI holds the database: they read what an owner reads.
            principal = Principal(kind="user", id=0, name=who(), permission="admin", role="owner")
        else:
            principal = _person(ops.accounts.list_users(), as_person)
        answer = ops.ask.ask(question, principal=principal)
    if as_json:
        rendering.print_json(answer)
        return
    console.print(escape(answer["text"]), highlight=False)
    if answer["citations"]:
        console.print("\n[bold]Records used[/bold]")
        for record in answer["citations"]:
            line = f"  [{record['ref']}] {record['title']} — {record['link']}"
            console.print(escape(line), highlight=False)
    by = "the language model" if answer["route"] == "llm" else "the built-in router"
    cost = f", cost {answer['cost']:.4f}" if answer["cost"] is not None else ""
    console.print(f"\n[dim]Answered by {by}{cost}; logged as question {answer['id']}.[/dim]")


def _person(users: list[dict[str, object]], email: str) -> Principal:
    wanted = email.strip().lower()
    for user in users:
        if str(user["email"]).lower() == wanted and user["status"] == "active":
            role = user["role"]
            assert role in ROLE_PERMISSION
            return Principal(
                kind="user",
                id=int(str(user["id"])),
                name=str(user["email"]),
                permission=ROLE_PERMISSION[role],
                role=role,
            )
    raise NotFound(f"no active account {email!r}: see `opsloop user list`")
