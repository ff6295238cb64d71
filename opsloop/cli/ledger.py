"""`opsloop audit verify` and `opsloop db ...`: check the ledger, see its size, let go of what
the retention settings allow, rebuild the database file.

The service side is opsloop/service/ledger.py and opsloop/service/retention.py; docs/ledger.md
explains both.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.markup import escape

from opsloop.cli import rendering
from opsloop.cli.common import AsJsonTables, JustJson, actor, console, err, service

audit_app = typer.Typer(
    help="The audit trail: check that no row of the ledger was altered or removed.",
    no_args_is_help=True,
)
db_app = typer.Typer(
    help="The database: sizes per table, retention (purge) and vacuum.", no_args_is_help=True
)


@audit_app.command("verify")
def audit_verify(
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect",
            metavar="ROW:HASH",
            help="An audit row id and hash noted from an earlier run (`412305:3f1c…`): the "
            "chain must still hold that row with that hash.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Walk the audit hash chain, recompute every row's hash, and check each decision and
    action against the digest on its latest audit row. Names the first problem and exits
    with 1; exits with 0 when the ledger is intact. Prints the head hash: keep it somewhere
    else to catch a rewrite of the whole chain later."""
    noted = _noted(expect) if expect is not None else None
    with service() as ops, rendering.ledger_progress() as update:
        result = ops.verify_ledger(expect=noted, progress=update)
    if as_json:
        rendering.print_json(dataclasses.asdict(result))
    elif result.intact:
        console.print(
            f"[green]The ledger is intact[/green]: {result.audit_rows:,} audit rows, "
            f"{result.decisions:,} decisions and {result.actions:,} actions checked."
        )
    else:
        err.print(f"[red]The ledger is not intact:[/red] {escape(result.problem or '')}.")
    if not as_json:
        console.print(f"Head: audit row {result.head_id}, hash {result.head_hash}")
    raise typer.Exit(0 if result.intact else 1)


def _noted(text: str) -> tuple[int, str]:
    row, _, digest = text.partition(":")
    if not row.strip().isdigit() or len(digest.strip()) != 64:
        err.print("[red]--expect takes ROW:HASH, e.g. 412305: and the 64 hex digits printed[/red]")
        raise typer.Exit(2)
    return int(row), digest.strip()


@db_app.command("stats")
def db_stats(as_json: AsJsonTables = False) -> None:
    """Rows and bytes of every table with its indexes, the file and WAL sizes (SQLite) or the
    database size (PostgreSQL), and the retention settings in force."""
    with service() as ops:
        stats = ops.db_stats()
    if as_json:
        rendering.print_json(dataclasses.asdict(stats))
        return
    rendering.show_db_stats(stats)


@db_app.command("purge")
def db_purge(as_json: JustJson = False) -> None:
    """Run retention now, as the periodic job does: delete what the retention settings let go
    (each batch audited with its count), give SQLite's free pages back, empty the WAL."""
    with service() as ops:
        purged = ops.purge(actor=actor())
    if as_json:
        rendering.print_json({**dataclasses.asdict(purged), "deleted": purged.deleted})
        return
    rendering.show_purged(purged)


@db_app.command("vacuum")
def db_vacuum() -> None:
    """Rebuild the database file. On SQLite this also switches a database made before
    retention existed to incremental vacuum, which lets the retention job shrink the file;
    it rewrites the whole file, so run it while OpsLoop is quiet. On PostgreSQL: VACUUM
    (ANALYZE)."""
    with service() as ops:
        before = ops.db_stats()
        with console.status("Rebuilding the database…"):
            after = ops.vacuum_db()
    if after.file_bytes is not None and before.file_bytes is not None:
        console.print(
            f"Done: {rendering.mb(before.file_bytes)} → {rendering.mb(after.file_bytes)}"
            + (f", auto_vacuum {after.auto_vacuum}" if after.auto_vacuum else "")
            + "."
        )
    else:
        console.print("Done.")
