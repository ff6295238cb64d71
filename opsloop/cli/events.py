"""`opsloop ingest` and `opsloop import`: events and history from files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape

from opsloop.cli import rendering
from opsloop.cli.common import console, service, who
from opsloop.core.errors import FieldError, InvalidInput

commands = typer.Typer()


@commands.command()
def ingest(
    file: Annotated[
        Path,
        typer.Argument(
            help="Events as JSONL (one per line) or CSV (see docs/cli.md).",
            exists=True,
            dir_okay=False,
        ),
    ],
    source: Annotated[str, typer.Option(help="Source name recorded on each event.")] = "import",
    batch_size: Annotated[int, typer.Option(help="Events per transaction.", min=1, max=5000)] = 500,
) -> None:
    """Load events from a file. Bad rows are reported by line and kept in quarantine; the rest
    are stored. Decisions they trigger are made by a running server or worker."""
    with service() as ops, rendering.file_progress() as progress:
        task = progress.add_task(f"Importing {file.name}", total=ops.ingest.rows_in_file(file))

        def row_done(line: int, problem: str | None) -> None:
            if problem is not None:
                progress.console.print(
                    f"[yellow]{escape(str(file))}:{line}: {escape(problem)}[/yellow]"
                )
            progress.advance(task)

        done = ops.ingest.ingest_file(file, source=source, batch_size=batch_size, row_done=row_done)
    console.print(
        f"Stored {done.stored} events, {done.duplicates} already stored, "
        f"{done.refused} refused (in quarantine)."
    )
    if done.refused:
        raise typer.Exit(1)


@commands.command("import")
def import_history(
    file: Annotated[
        Path,
        typer.Argument(help="A CSV export with a header row (UTF-8).", exists=True, dir_okay=False),
    ],
    subject_kind: Annotated[
        str,
        typer.Option(help="What each row is about (lead, session, ticket …): rows become KIND:ID."),
    ],
    time_column: Annotated[
        str | None,
        typer.Option(
            help="The column saying when the row happened (or --file-order for a file without one)."
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            help="The column holding each row's id. Without it the id is the file name and "
            "line number (leads-2 for line 2 of leads.csv)."
        ),
    ] = None,
    time_format: Annotated[
        str | None,
        typer.Option(
            help="strptime format of the time column, e.g. %d/%m/%Y, or %b for month names "
            "only (day 1 of the month in --year, rows 1 s apart). Default: ISO 8601 and "
            "common formats, recognized."
        ),
    ] = None,
    year: Annotated[
        int | None,
        typer.Option(
            help="The year of times that have none (--time-format %b): the first row's, when "
            "the months roll over. Default: this year. With --file-order, the year the "
            "order-only times start in (default 2000).",
            min=1,
            max=9999,
        ),
    ] = None,
    year_rollover: Annotated[
        Literal["auto", "never", "always"],
        typer.Option(
            help="Times without a year (%b): auto rolls the year forward where the months go "
            "back in file order (Dec, then Jan) and refuses a file whose months go back too "
            "often to be in time order; always rolls at every step back; never keeps every "
            "row in --year."
        ),
    ] = "auto",
    file_order: Annotated[
        bool,
        typer.Option(
            "--file-order",
            help="The file has no time column and its rows are in time order, oldest first: "
            "each row gets an order-only time, one minute after the one before from 1 January "
            "2000 (or --year), marked as such.",
        ),
    ] = False,
    delimiter: Annotated[
        str | None,
        typer.Option(
            help="The separator between cells: , ; | or tab. Default: found from the "
            "file's first lines."
        ),
    ] = None,
    event_type: Annotated[
        str | None, typer.Option(help="Type of each row's event. Default: KIND.imported.")
    ] = None,
    outcome_column: Annotated[
        str | None,
        typer.Option(
            help="The column saying how it ended: true/yes/1/won records --success-event, "
            "false/no/0/lost --failure-event, an empty cell nothing (not known yet)."
        ),
    ] = None,
    success_event: Annotated[
        str | None, typer.Option(help="Default: KIND.converted.", metavar="TYPE")
    ] = None,
    failure_event: Annotated[
        str | None, typer.Option(help="Default: KIND.lost.", metavar="TYPE")
    ] = None,
    no_failure_event: Annotated[
        bool, typer.Option("--no-failure-event", help="Record successes only.")
    ] = False,
    label_column: Annotated[
        str | None,
        typer.Option(
            help="The column holding the category a person gave the row (a support message's "
            "topic): recorded as a --label-event, for training text classifiers."
        ),
    ] = None,
    label_event: Annotated[
        str | None, typer.Option(help="Default: KIND.labelled.", metavar="TYPE")
    ] = None,
    source: Annotated[str, typer.Option(help="Source name recorded on each event.")] = "import",
    batch_size: Annotated[int, typer.Option(help="Rows per transaction.", min=1, max=5000)] = 500,
) -> None:
    """Import history: a CSV export of past leads, sessions or labelled messages, stored as
    events (with their outcomes) for features, training and backtests. No playbook runs on
    them, so nothing is decided or sent. Bad rows are kept in quarantine; importing the same
    file again stores nothing new."""
    from opsloop.service import HistorySpec

    spec = HistorySpec(
        kind=subject_kind,
        time_column=time_column,
        id_column=id_column,
        time_format=time_format,
        year=year,
        event_type=event_type,
        outcome_column=outcome_column,
        success_event=success_event,
        failure_event=failure_event,
        record_failures=not no_failure_event,
        label_column=label_column,
        label_event=label_event,
        delimiter=_separator(delimiter),
        year_rollover=year_rollover,
        file_order=file_order,
    )
    with service() as ops, rendering.file_progress() as progress:
        task = progress.add_task(f"Importing {file.name}", total=None)
        try:
            report = ops.ingest.import_history(
                file,
                spec,
                source=source,
                batch_size=batch_size,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                actor=who(),
            )
        except InvalidInput as exc:
            # Name the option the person typed, not the setting behind it.
            named = [FieldError(_option(e.field, file), e.message) for e in exc.errors]
            raise InvalidInput(named) from None
    kinds = ", ".join(f"{n:,} {t}" for t, n in sorted(report.stored_by_type.items()))
    console.print(
        f"Imported {report.rows - report.refused:,} of {report.rows:,} rows: "
        f"{report.stored:,} events stored{f' ({kinds})' if kinds else ''}, "
        f"{report.duplicates:,} already stored, {report.refused:,} rows refused."
    )
    if report.delimiter != ",":
        shown = "tab" if report.delimiter == "\t" else report.delimiter
        how = "given" if not report.sniffed else "found from the first lines"
        console.print(f"Cells separated by {shown!r} ({how}).")
    if report.first_at and report.last_at:
        console.print(
            f"The events stored run from {report.first_at:%Y-%m-%d %H:%M} "
            f"to {report.last_at:%Y-%m-%d %H:%M} UTC."
        )
    if report.order_only and report.order_start is not None:
        console.print(
            "[yellow]Times are the file's order, not real dates: row 1 at "
            f"{report.order_start:%Y-%m-%d %H:%M}, each next row one minute later. Training "
            "and backtests keep the order; windows such as `within: 7d` and days-since "
            "features mean nothing on these rows.[/yellow]"
        )
    if report.rollovers:
        console.print(_rollovers(report.rollovers, report.rows_by_year))
    if report.label_order:
        console.print(f"[yellow]Note: {escape(report.label_order)}.[/yellow]")
    if report.in_future:
        console.print(
            f"[yellow]{report.in_future:,} events are dated after now; if the times have no "
            "year, give it with --year.[/yellow]"
        )
    if report.gave_up:
        console.print(
            f"[red]Stopped: the first {report.rows} rows were all refused, so an option most "
            "likely does not fit the file (--time-column, --time-format, --id-column, "
            "--outcome-column; --file-order when the file has no time column and its rows "
            "are in time order).[/red]"
        )
    if report.refused:
        console.print(
            f"[yellow]{report.refused:,} rows refused, kept in quarantine (`opsloop quarantine`); "
            f"the first {len(report.problems)}:[/yellow]"
        )
        for problem in report.problems:
            console.print(f"  {escape(str(problem))}")
        raise typer.Exit(1)


def _option(field: str, file: Path) -> str:
    """`--id-column` for the field `id_column`; the file's name for `file`."""
    if field == "file":
        return str(file)
    return f"--{field.replace('_', '-')}" if field else field


def _separator(text: str | None) -> str | None:
    """`--delimiter tab` (or `\\t`, as a shell passes it) for a tab; else the text as given."""
    if text is None:
        return None
    return "\t" if text.lower() in ("tab", "\\t") else text


def _rollovers(rollovers: Sequence[Any], rows_by_year: Mapping[int, int]) -> str:
    """Where the months went back and the year rolled forward, and the rows in each year."""
    shown = ", ".join(
        f"line {r.line} ({escape(r.after)} after {escape(r.before)}) starts {r.year}"
        for r in rollovers[:10]
    )
    more = f" and {len(rollovers) - 10} more" if len(rollovers) > 10 else ""
    years = ", ".join(f"{year}: {rows:,}" for year, rows in rows_by_year.items())
    times = "time" if len(rollovers) == 1 else "times"
    return (
        f"[yellow]The months went back {len(rollovers)} {times} in file order, so the year "
        f"was rolled forward: {shown}{more}. Rows per year: {years}. If every row is in one "
        "year, import it with --year-rollover never under another --source (rows already "
        "stored are not stored again).[/yellow]"
    )
