"""`opsloop source ...`: declare where signals come from, sync the pulled ones, and see how
clean their data is.

The definitions are YAML files (docs/sources.md); secrets are given with `--secret-file` (or
`secret_env:` in the file) and never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from opsloop.cli import rendering
from opsloop.cli.common import AsJson, actor, console, err, service
from opsloop.core.durations import format_duration

source_app = typer.Typer(
    help="Sources of signals: add from YAML, list, sync, backfill, check their data quality.",
    no_args_is_help=True,
)

SourceName = Annotated[str, typer.Argument(help="The source.")]
PulledSource = Annotated[str, typer.Argument(help="The pulled source (http, folder, sql, imap).")]
RunAsJson = Annotated[bool, typer.Option("--json", help="Print the run as JSON.")]


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
    from opsloop.core.yaml_source import read_text

    with service() as ops:
        secret = read_text(secret_file).strip() if secret_file else None
        added = ops.ingest.add_source(
            read_text(file),
            str(file),
            secret=secret,
            actor=actor(),
            replace=replace,
        )
        source = ops.ingest.get_source(added.name)
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
def source_list(as_json: AsJson = False) -> None:
    """Every declared source: kind, state, secret present, last checkpoint, next sync."""
    with service() as ops:
        found = ops.ingest.list_sources()
    if as_json:
        rendering.print_json([source.public() for source in found])
        return
    rendering.show_sources(found)


@source_app.command("remove")
def source_remove(name: SourceName) -> None:
    """Forget a source's definition and secret; the events it sent stay."""
    with service() as ops:
        ops.ingest.remove_source(name, actor=actor())
    console.print(f"Removed source {escape(name)}; its events stay in the ledger.")


@source_app.command("enable")
def source_enable(name: SourceName) -> None:
    """Accept its signals again (and sync it, when it is pulled)."""
    with service() as ops:
        ops.ingest.set_source_enabled(name, True, actor=actor())
    console.print(f"Enabled source {escape(name)}.")


@source_app.command("disable")
def source_disable(name: SourceName) -> None:
    """Refuse its deliveries and stop syncing it, keeping its definition and checkpoint."""
    with service() as ops:
        ops.ingest.set_source_enabled(name, False, actor=actor())
    console.print(f"Disabled source {escape(name)}.")


@source_app.command("quality")
def source_quality(
    name: SourceName,
    days: Annotated[int, typer.Option(help="Days to report on, today included.", min=1)] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Data quality: valid share, late events, duplicates, ignored and top violations."""
    with service() as ops:
        quality = ops.ingest.source_quality(name, days=days)
    if as_json:
        rendering.print_json(quality.as_dict())
        return
    rendering.show_quality(name, days, quality)


# --- pulled sources: sync, backfill, runs ----------------------------------------------------


@source_app.command("sync")
def source_sync(name: PulledSource, as_json: RunAsJson = False) -> None:
    """Sync a pulled source now, from its checkpoint: rows in, stored, duplicates, rejected."""
    _sync(name, "sync", as_json)


@source_app.command("backfill")
def source_backfill(name: PulledSource, as_json: RunAsJson = False) -> None:
    """Read a pulled source from the beginning and store it as history (no decisions)."""
    _sync(name, "backfill", as_json)


def _sync(name: str, mode: str, as_json: bool) -> None:
    verb = "Backfilling" if mode == "backfill" else "Syncing"
    with service() as ops, err.status(f"{verb} {escape(name)}…") as status:
        run = ops.ingest.sync_source(
            name,
            mode="backfill" if mode == "backfill" else "sync",
            actor=actor(),
            progress=lambda run: status.update(
                f"{verb} {escape(name)}: {rendering.run_counts(run)}"
            ),
        )
    counts = rendering.run_counts(run)
    if as_json:
        rendering.print_json(run.as_dict())
    elif run.status == "ok":
        console.print(f"{escape(name)}: run {run.id} ({run.mode}) ok — {counts}.")
        if run.rejected:
            console.print("Rejected rows are in quarantine: `opsloop quarantine`.")
    else:
        err.print(f"[red]{escape(name)}: run {run.id} ({run.mode}) failed[/red] — {counts}.")
        err.print(f"Error: {escape(run.error or '')}")
        err.print("The next run starts from the last batch that was stored.")
    if run.status != "ok":
        raise typer.Exit(1)


@source_app.command("runs")
def source_runs(
    name: Annotated[str, typer.Argument(help="The pulled source.")],
    limit: Annotated[int, typer.Option(help="How many runs, newest first.", min=1)] = 20,
    as_json: AsJson = False,
) -> None:
    """The source's latest sync and backfill runs: when, how many rows, and any error."""
    with service() as ops:
        found = ops.ingest.source_runs(name, limit=limit)
    if as_json:
        rendering.print_json([run.as_dict() for run in found])
        return
    rendering.show_runs(name, found)
