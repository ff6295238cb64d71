"""`opsloop audit verify` and `opsloop db ...`: check the ledger, see its size, let go of what
the retention settings allow, rebuild the database file.

Registered in opsloop/cli.py; the service side is opsloop/service/ledger.py and
opsloop/service/retention.py, and docs/ledger.md explains both.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

if TYPE_CHECKING:
    from opsloop.service import OpsLoop
    from opsloop.service.retention import DbStats

audit_app = typer.Typer(
    help="The audit trail: check that no row of the ledger was altered or removed.",
    no_args_is_help=True,
)
db_app = typer.Typer(
    help="The database: sizes per table, retention (purge) and vacuum.", no_args_is_help=True
)

console = Console()
err = Console(stderr=True)


@contextmanager
def _service() -> Iterator[OpsLoop]:
    from opsloop.cli import service  # the CLI's settings and error handling

    with service() as ops:
        yield ops


def _actor() -> str:
    from opsloop.cli import _who

    return f"cli:{_who()}"


def _json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


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
    columns = (TextColumn("Checking {task.description}"), BarColumn(), MofNCompleteColumn())
    with _service() as ops, Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total or None)
            bar.update(tasks[what], completed=done)

        result = ops.verify_ledger(expect=noted, progress=update)
    if as_json:
        _json(dataclasses.asdict(result))
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
def db_stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Rows and bytes of every table with its indexes, the file and WAL sizes (SQLite) or the
    database size (PostgreSQL), and the retention settings in force."""
    with _service() as ops:
        stats = ops.db_stats()
    if as_json:
        _json(dataclasses.asdict(stats))
        return
    _show_stats(stats)


@db_app.command("purge")
def db_purge(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run retention now, as the periodic job does: delete what the retention settings let go
    (each batch audited with its count), give SQLite's free pages back, empty the WAL."""
    with _service() as ops:
        purged = ops.purge(actor=_actor())
    if as_json:
        _json({**dataclasses.asdict(purged), "deleted": purged.deleted})
        return
    table = Table(title="Retention")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (
        ("events deleted", purged.events),
        ("empty profiles deleted", purged.profiles),
        ("quarantined bodies emptied", purged.signal_bodies),
        ("failed jobs deleted", purged.failed_jobs),
        ("cached LLM answers deleted", purged.llm_cache),
        ("expired sessions deleted", purged.expired_sessions),
        ("old failed sign-ins deleted", purged.login_failures),
        ("pages given back (SQLite)", purged.vacuumed_pages),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    if purged.events_before is not None:
        console.print(f"Events before {purged.events_before:%Y-%m-%d %H:%M} were candidates.")
    for reason in purged.kept:
        console.print(f"Kept {escape(reason)}.")
    if purged.wal_emptied is False:
        console.print("The WAL could not be emptied (a reader held it); the next run tries again.")


@db_app.command("vacuum")
def db_vacuum() -> None:
    """Rebuild the database file. On SQLite this also switches a database made before
    retention existed to incremental vacuum, which lets the retention job shrink the file;
    it rewrites the whole file, so run it while OpsLoop is quiet. On PostgreSQL: VACUUM
    (ANALYZE)."""
    with _service() as ops:
        before = ops.db_stats()
        with console.status("Rebuilding the database…"):
            after = ops.vacuum_db()
    if after.file_bytes is not None and before.file_bytes is not None:
        console.print(
            f"Done: {_mb(before.file_bytes)} → {_mb(after.file_bytes)}"
            + (f", auto_vacuum {after.auto_vacuum}" if after.auto_vacuum else "")
            + "."
        )
    else:
        console.print("Done.")


def _show_stats(stats: DbStats) -> None:
    table = Table(title=f"Tables ({stats.backend})")
    for name, justify in (
        ("table", "left"),
        ("rows", "right"),
        ("table MB", "right"),
        ("indexes MB", "right"),
        ("bytes/row", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for size in stats.tables:
        total = size.total_bytes
        per_row = f"{total / size.rows:,.0f}" if total is not None and size.rows else ""
        table.add_row(
            size.name,
            f"{size.rows:,}",
            _mb(size.table_bytes, unit=False),
            _mb(size.index_bytes, unit=False),
            per_row,
        )
    console.print(table)
    if stats.backend == "sqlite":
        console.print(
            f"File {_mb(stats.file_bytes)}, WAL {_mb(stats.wal_bytes)}, free pages "
            f"{_mb(stats.free_bytes)}, auto_vacuum {stats.auto_vacuum}"
            + (
                " (run `opsloop db vacuum` once to let retention shrink the file)"
                if stats.auto_vacuum == "none"
                else ""
            )
        )
    else:
        console.print(f"Database {_mb(stats.file_bytes)}")
    retention = Table(title="Retention settings")
    retention.add_column("setting")
    retention.add_column("value", justify="right")
    for name, value in stats.retention.items():
        retention.add_row(name, "forever" if value is None else str(value))
    console.print(retention)


def _mb(value: int | None, *, unit: bool = True) -> str:
    if value is None:
        return "?"
    return f"{value / 1e6:,.2f}" + (" MB" if unit else "")
