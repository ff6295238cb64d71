"""`opsloop contract ...`: check, apply, remove, list and show data contracts
(docs/sources.md#contracts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from opsloop.cli import rendering
from opsloop.cli.common import JustJson, actor, console, fail, fail_problems, service
from opsloop.core.errors import InvalidInput, PlaybookInvalid

contract_app = typer.Typer(
    help="Data contracts: the fields each event type must carry, checked and normalized on "
    "the way in.",
    no_args_is_help=True,
)

ContractFile = Annotated[
    Path,
    typer.Argument(
        help="A contracts YAML file (one or more event types).", exists=True, dir_okay=False
    ),
]
EventType = Annotated[str, typer.Argument(help="The event type, e.g. order.completed.")]


@contract_app.command("validate")
def contract_validate(file: ContractFile) -> None:
    """Check a contracts file without applying it; print each problem with its line, or OK."""
    from opsloop.core.yaml_source import read_text
    from opsloop.service import validate_contracts  # no database: the file alone

    try:
        found = validate_contracts(read_text(file), str(file))
    except PlaybookInvalid as exc:
        fail_problems(exc)
    except InvalidInput as exc:
        fail(exc)
    for contract in found:
        console.print(
            f"[green]OK[/green] {escape(contract.event_type)}: {len(contract.fields)} fields, "
            f"{len(contract.traits)} traits, additional {contract.additional}"
        )


@contract_app.command("apply")
def contract_apply(file: ContractFile) -> None:
    """Store each contract of the file whose rules changed as a new version. Running servers
    check new events against it within a second."""
    from opsloop.core.yaml_source import read_text

    with service() as ops:
        try:
            applied = ops.ingest.apply_contracts(read_text(file), str(file), actor=actor())
        except PlaybookInvalid as exc:
            fail_problems(exc)
    for item in applied:
        state = {"created": "created,", "updated": "updated to", "unchanged": "unchanged at"}
        console.print(f"{escape(item.event_type)}: {state[item.status]} version {item.version}")


@contract_app.command("remove")
def contract_remove(event_type: EventType) -> None:
    """Stop checking events against the type's applied contract (its versions stay in the
    history). A built-in contract for the type, if any, applies again."""
    from opsloop.service import builtin_contracts

    with service() as ops:
        version = ops.ingest.remove_contract(event_type, actor=actor())
    console.print(f"{escape(event_type)}: removed version {version}")
    if event_type in builtin_contracts():
        console.print("The built-in contract checks events built-in mappings make again.")


@contract_app.command("list")
def contract_list() -> None:
    """The contracts in force: applied ones with their version, and built-in ones."""
    with service() as ops:
        rows = ops.ingest.list_contracts()
    rendering.show_contracts(rows)


@contract_app.command("show")
def contract_show(event_type: EventType, json_out: JustJson = False) -> None:
    """One event type's contract: its YAML and its versions."""
    with service() as ops:
        found = ops.ingest.get_contract(event_type)
    if json_out:
        rendering.print_json(found)
        return
    rendering.show_contract(event_type, found)
