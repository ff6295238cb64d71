"""`opsloop contract ...`: check, apply, remove, list and show data contracts (docs/sources.md#contracts).
Registered in opsloop/cli.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from opsloop.core.errors import InvalidInput, PlaybookInvalid
from opsloop.core.yaml_source import read_text

if TYPE_CHECKING:
    from opsloop.service import OpsLoop

contract_app = typer.Typer(
    help="Data contracts: the fields each event type must carry, checked and normalized on "
    "the way in.",
    no_args_is_help=True,
)

console = Console()
err = Console(stderr=True)

ContractFile = Annotated[
    Path,
    typer.Argument(
        help="A contracts YAML file (one or more event types).", exists=True, dir_okay=False
    ),
]


@contextmanager
def _service() -> Iterator[OpsLoop]:
    from opsloop.cli import service  # the CLI's settings and error handling

    with service() as ops:
        yield ops


def _actor() -> str:
    from opsloop.cli import _who

    return f"cli:{_who()}"


def _problems(exc: PlaybookInvalid) -> NoReturn:
    for problem in exc.problems:
        err.print(f"[red]{escape(str(problem))}[/red]")
    raise typer.Exit(1)


@contract_app.command("validate")
def contract_validate(file: ContractFile) -> None:
    """Check a contracts file without applying it; print each problem with its line, or OK."""
    from opsloop.service.contracts import validate_contracts

    try:
        found = validate_contracts(read_text(file), str(file))
    except PlaybookInvalid as exc:
        _problems(exc)
    except InvalidInput as exc:
        err.print(f"[red]Error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    for contract in found:
        console.print(
            f"[green]OK[/green] {escape(contract.event_type)}: {len(contract.fields)} fields, "
            f"{len(contract.traits)} traits, additional {contract.additional}"
        )


@contract_app.command("apply")
def contract_apply(file: ContractFile) -> None:
    """Store each contract of the file whose rules changed as a new version. Running servers
    check new events against it within a second."""
    from opsloop.service.contracts import apply_contracts

    with _service() as ops:
        try:
            applied = apply_contracts(ops.ctx, read_text(file), str(file), actor=_actor())
        except PlaybookInvalid as exc:
            _problems(exc)
    for item in applied:
        state = {"created": "created,", "updated": "updated to", "unchanged": "unchanged at"}
        console.print(f"{escape(item.event_type)}: {state[item.status]} version {item.version}")


@contract_app.command("remove")
def contract_remove(
    event_type: Annotated[str, typer.Argument(help="The event type, e.g. order.completed.")],
) -> None:
    """Stop checking events against the type's applied contract (its versions stay in the
    history). A built-in contract for the type, if any, applies again."""
    from opsloop.service.contracts import builtin_contracts, remove_contract

    with _service() as ops:
        version = remove_contract(ops.ctx, event_type, actor=_actor())
    console.print(f"{escape(event_type)}: removed version {version}")
    if event_type in builtin_contracts():
        console.print("The built-in contract checks events built-in mappings make again.")


@contract_app.command("list")
def contract_list() -> None:
    """The contracts in force: applied ones with their version, and built-in ones."""
    from opsloop.service.contracts import list_contracts

    with _service() as ops:
        rows = list_contracts(ops.ctx)
    table = Table("event type", "origin", "version", "fields", "traits", "additional", "applied")
    for row in rows:
        applied = (
            f"{_when(row['applied_at'])} by {escape(row['applied_by'])}"
            if row["applied_by"]
            else "—"
        )
        table.add_row(
            escape(row["event_type"]),
            row["origin"],
            str(row["version"] or "—"),
            str(row["fields"]),
            str(row["traits"]),
            row["additional"],
            applied,
        )
    console.print(table if rows else "No contracts yet: `opsloop contract apply FILE`.")


@contract_app.command("show")
def contract_show(
    event_type: Annotated[str, typer.Argument(help="The event type, e.g. order.completed.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One event type's contract: its YAML and its versions."""
    from opsloop.service.contracts import get_contract

    with _service() as ops:
        found = get_contract(ops.ctx, event_type)
    if json_out:
        console.print_json(json.dumps(found, default=str))
        return
    origin = {
        "applied": f"version {found['version']}"
        + (" (replaces the built-in one)" if found["has_builtin"] else ""),
        "built-in": "built-in",
        "removed": "removed, no contract in force; the newest version was",
    }[found["origin"]]
    console.print(f"[bold]{escape(event_type)}[/bold]: {origin}")
    console.print(Syntax(found["yaml"], "yaml", background_color="default"))
    if found["versions"]:
        table = Table("version", "applied", "by", "active")
        for row in found["versions"]:
            table.add_row(
                str(row["version"]),
                _when(row["applied_at"]),
                escape(row["applied_by"]),
                "yes" if row["active"] else "",
            )
        console.print(table)


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if isinstance(value, datetime) else "—"
