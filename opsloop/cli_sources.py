"""`opsloop source ...`: declare where signals come from, and see how clean they are.

Registered in opsloop/cli.py. The definitions are YAML files (docs/sources.md); secrets are
given with `--secret-file` (or `secret_env:` in the file) and never printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from opsloop.core.durations import format_duration
from opsloop.core.yaml_source import read_text

if TYPE_CHECKING:
    from opsloop.service import OpsLoop

source_app = typer.Typer(
    help="Sources of signals: add from YAML, list, sync, backfill, check their data quality.",
    no_args_is_help=True,
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


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


@source_app.command("add")
def source_add(
    file: Annotated[
        Path, typer.Argument(help="The source's YAML definition.", exists=True, dir_okay=False)
    ],
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file",
            help="Read the secret (signing secret, write key, token, password) from this file.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Change a source that exists (keeps its checkpoint).")
    ] = False,
) -> None:
    """Add a source from its YAML file; pulled sources start syncing on their interval."""
    with _service() as ops:
        secret = read_text(secret_file).strip() if secret_file else None
        added = ops.add_source(
            read_text(file),
            str(file),
            secret=secret,
            actor=_actor(),
            replace=replace,
        )
        source = ops.get_source(added.name)
    verb = "Added" if added.created else "Replaced"
    console.print(f"{verb} source {escape(added.name)} ({source.spec.kind}).")
    if source.spec.kind == "webhook":
        console.print(f"Deliveries go to POST /hooks/{escape(added.name)}.")
    elif source.spec.kind == "segment":
        console.print("Tracking calls go to POST /v1/... with the write key as basic-auth user.")
    else:
        console.print(
            f"It syncs every {format_duration(source.spec.interval)}; "
            f"`opsloop source sync {escape(added.name)}`"
            " runs it now."
        )


@source_app.command("list")
def source_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every declared source: kind, state, secret present, last checkpoint, next sync."""
    with _service() as ops:
        found = ops.list_sources()
    if as_json:
        rows = [source.public() for source in found]
        console.print_json(json.dumps(rows, default=str))
        return
    if not found:
        console.print("No sources yet: `opsloop source add FILE.yaml` (docs/sources.md).")
        return
    table = Table("name", "kind", "state", "secret", "checkpoint at", "next sync")
    for source in found:
        table.add_row(
            escape(source.name),
            source.spec.kind,
            "enabled" if source.enabled else "disabled",
            "set" if source.has_secret else ("missing" if source.spec.needs_secret else "—"),
            _when(source.checkpoint_at),
            _when(source.next_sync_at),
        )
    console.print(table)


@source_app.command("remove")
def source_remove(name: Annotated[str, typer.Argument(help="The source.")]) -> None:
    """Forget a source's definition and secret; the events it sent stay."""
    with _service() as ops:
        ops.remove_source(name, actor=_actor())
    console.print(f"Removed source {escape(name)}; its events stay in the ledger.")


@source_app.command("enable")
def source_enable(name: Annotated[str, typer.Argument(help="The source.")]) -> None:
    """Accept its signals again (and sync it, when it is pulled)."""
    with _service() as ops:
        ops.set_source_enabled(name, True, actor=_actor())
    console.print(f"Enabled source {escape(name)}.")


@source_app.command("disable")
def source_disable(name: Annotated[str, typer.Argument(help="The source.")]) -> None:
    """Refuse its deliveries and stop syncing it, keeping its definition and checkpoint."""
    with _service() as ops:
        ops.set_source_enabled(name, False, actor=_actor())
    console.print(f"Disabled source {escape(name)}.")


@source_app.command("quality")
def source_quality(
    name: Annotated[str, typer.Argument(help="The source.")],
    days: Annotated[int, typer.Option(help="Days to report on, today included.", min=1)] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Data quality: valid share, late events, duplicates, ignored and top violations."""
    with _service() as ops:
        quality = ops.source_quality(name, days=days)
    if as_json:
        console.print_json(json.dumps(quality.as_dict(), default=str))
        return
    console.print(f"[bold]{escape(name)}[/bold], last {days} days (since {quality.since:%Y-%m-%d})")
    if not quality.received:
        console.print("Nothing received in this period.")
        return
    valid = quality.valid_share or 0.0
    console.print(
        f"received {quality.received:,}; valid {valid:.1%} "
        f"({quality.rejected:,} rejected, kept in quarantine)"
    )
    console.print(
        f"stored {quality.stored:,}; duplicates {quality.duplicates:,}; "
        f"ignored {quality.ignored:,}; late {quality.late:,}"
        + (f" ({quality.late_share:.1%})" if quality.late_share is not None else "")
    )
    if quality.top_violations:
        table = Table("violations", "field", "message", "example item")
        for violation in quality.top_violations:
            table.add_row(
                str(violation.count),
                escape(violation.field or "—"),
                escape(violation.message),
                str(violation.example),
            )
        console.print(table)
        console.print("Fix the mapping or contract, then `opsloop replay ITEM` for each item.")


# --- pulled sources: sync, backfill, runs (opsloop/service/syncing.py) ---------------------------


def _sync(name: str, mode: str, as_json: bool) -> None:
    from opsloop.service.syncing import Run

    def counts(run: Run) -> str:
        return (
            f"{run.rows_in:,} rows in, {run.events_stored:,} stored, "
            f"{run.duplicates:,} duplicates, {run.rejected:,} rejected, {run.ignored:,} ignored"
        )

    verb = "Backfilling" if mode == "backfill" else "Syncing"
    with _service() as ops, err.status(f"{verb} {escape(name)}…") as status:
        run = ops.sync_source(
            name,
            mode="backfill" if mode == "backfill" else "sync",
            actor=_actor(),
            progress=lambda run: status.update(f"{verb} {escape(name)}: {counts(run)}"),
        )
    if as_json:
        console.print_json(json.dumps(run.as_dict(), default=str))
    elif run.status == "ok":
        console.print(f"{escape(name)}: run {run.id} ({run.mode}) ok — {counts(run)}.")
        if run.rejected:
            console.print("Rejected rows are in quarantine: `opsloop quarantine`.")
    else:
        err.print(f"[red]{escape(name)}: run {run.id} ({run.mode}) failed[/red] — {counts(run)}.")
        err.print(f"Error: {escape(run.error or '')}")
        err.print("The next run starts from the last batch that was stored.")
    if run.status != "ok":
        raise typer.Exit(1)


@source_app.command("sync")
def source_sync(
    name: Annotated[str, typer.Argument(help="The pulled source (http, folder, sql, imap).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Sync a pulled source now, from its checkpoint: rows in, stored, duplicates, rejected."""
    _sync(name, "sync", as_json)


@source_app.command("backfill")
def source_backfill(
    name: Annotated[str, typer.Argument(help="The pulled source (http, folder, sql, imap).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Read a pulled source from the beginning and store it as history (no decisions)."""
    _sync(name, "backfill", as_json)


@source_app.command("runs")
def source_runs(
    name: Annotated[str, typer.Argument(help="The pulled source.")],
    limit: Annotated[int, typer.Option(help="How many runs, newest first.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The source's latest sync and backfill runs: when, how many rows, and any error."""
    with _service() as ops:
        found = ops.source_runs(name, limit=limit)
    if as_json:
        console.print_json(json.dumps([run.as_dict() for run in found], default=str))
        return
    if not found:
        console.print(
            f"{escape(name)} has not been synced yet: `opsloop source sync {escape(name)}`."
        )
        return
    table = Table("run", "mode", "status", "started", "finished", "rows in", "stored", "dupl.")
    table.add_column("rejected")
    table.add_column("error")
    for run in found:
        table.add_row(
            str(run.id),
            run.mode,
            run.status,
            _when(run.started_at),
            _when(run.finished_at),
            f"{run.rows_in:,}",
            f"{run.events_stored:,}",
            f"{run.duplicates:,}",
            f"{run.rejected:,}",
            escape(run.error or ""),
        )
    console.print(table)
