"""`opsloop ...`: the command line. Each command calls the same service method as the matching
HTTP route. Settings come from OPSLOOP_* variables and opsloop.toml; the options below override
them for one run."""

from __future__ import annotations

import getpass
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from opsloop.cli_accounts import token_app, user_app
from opsloop.cli_contracts import contract_app
from opsloop.cli_ledger import audit_app, db_app
from opsloop.cli_sources import source_app
from opsloop.core.decisions import ReviewRequest, Verdict
from opsloop.core.durations import parse_duration
from opsloop.core.errors import FieldError, InvalidInput, OpsLoopError, PlaybookInvalid
from opsloop.core.ids import FIRST_ID, LAST_ID
from opsloop.core.yaml_source import read_text
from opsloop.gc_tuning import tune_for_serving
from opsloop.settings import Settings

app = typer.Typer(
    help="OpsLoop: watch your business's signals, decide what needs attention, act, and learn.\n\n"
    "Start with `opsloop demo` to see it run on a sample business.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
playbook_app = typer.Typer(
    help="Check, apply and list playbooks (YAML decision workflows).", no_args_is_help=True
)
app.add_typer(playbook_app, name="playbook")
app.add_typer(user_app, name="user")  # opsloop/cli_accounts.py
app.add_typer(token_app, name="token")
app.add_typer(source_app, name="source")  # opsloop/cli_sources.py
app.add_typer(contract_app, name="contract")  # opsloop/cli_contracts.py
app.add_typer(audit_app, name="audit")  # opsloop/cli_ledger.py
app.add_typer(db_app, name="db")

console = Console()
err = Console(stderr=True)

_overrides: dict[str, Any] = {}


@app.callback()
def _main(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where OpsLoop keeps its database and playbooks.",
            envvar="OPSLOOP_DATA_DIR",
            show_default="./opsloop-data",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. Default: SQLite in the data dir.",
            envvar="OPSLOOP_DATABASE_URL",
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            help="DEBUG, INFO, WARNING or ERROR.",
            envvar="OPSLOOP_LOG_LEVEL",
            show_default="WARNING",
        ),
    ] = None,
) -> None:
    _overrides.clear()
    if data_dir is not None:
        _overrides["data_dir"] = data_dir
    if database_url is not None:
        _overrides["database_url"] = database_url
    if log_level is not None:
        _overrides["log_level"] = log_level


def settings(**extra: Any) -> Settings:
    try:
        config = Settings(**{**_overrides, **extra})
    except (ValidationError, ValueError) as exc:
        err.print(f"[red]Configuration error:[/red]\n{escape(str(exc))}")
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return config


@contextmanager
def service(**extra: Any) -> Iterator[Any]:
    from opsloop.service import OpsLoop

    ops = OpsLoop(settings(**extra))
    try:
        if ops.settings.auto_migrate:
            ops.db.migrate()
        yield ops
    except OpsLoopError as exc:
        _fail(exc)
    finally:
        ops.close()


def _fail(exc: OpsLoopError) -> None:
    err.print(f"[red]Error:[/red] {escape(str(exc))}")
    raise typer.Exit(1)


# --- running ---------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on.", envvar="OPSLOOP_HOST", show_default="127.0.0.1"),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on.", envvar="OPSLOOP_PORT", show_default="8000"),
    ] = None,
) -> None:
    """Run the server: JSON API, ingest endpoints and the background workers."""
    import uvicorn

    from opsloop.web.app import create_app

    config = settings(**{k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    console.print(f"OpsLoop on http://{config.host}:{config.port}  (database: {_db_label(config)})")
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
    )


@app.command()
def worker() -> None:
    """Run background work (decisions, deliveries) without the HTTP server."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with service() as ops:
        ops.prepare()
        ops.start()
        tune_for_serving()
        console.print(f"Worker running on {_db_label(ops.settings)}. Ctrl-C to stop.")
        try:
            while not stop.wait(1):
                pass
        except KeyboardInterrupt:
            pass


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (serve and demo do this on start)."""
    config = settings(auto_migrate=False)
    from opsloop.store.database import Database

    db = Database(config.resolved_database_url)
    db.migrate()
    db.dispose()
    console.print(f"Database is up to date ({_db_label(config)}).")


@app.command()
def demo(
    port: Annotated[
        int, typer.Option(help="Port for the demo server.", envvar="OPSLOOP_PORT")
    ] = 8000,
    days: Annotated[
        int, typer.Option(help="Days of history to simulate.", envvar="OPSLOOP_DEMO_DAYS")
    ] = 90,
    seed: Annotated[
        int, typer.Option(help="Random seed of the simulated business.", envvar="OPSLOOP_DEMO_SEED")
    ] = 7,
    events_per_minute: Annotated[
        float, typer.Option(help="Live events streamed per minute.", envvar="OPSLOOP_DEMO_RATE")
    ] = 30.0,
) -> None:
    """Run a sample business: 90 days of leads, visits and deals, then live events."""
    from opsloop.demo.run import run_demo

    run_demo(
        settings(port=port),
        days=days,
        seed=seed,
        events_per_minute=events_per_minute,
        console=console,
    )


@app.command()
def flywheel(
    weeks: Annotated[
        int,
        typer.Option(
            min=2, max=52, help="Simulated weeks of new leads.", envvar="OPSLOOP_FLYWHEEL_WEEKS"
        ),
    ] = 12,
    seed: Annotated[
        int, typer.Option(help="Random seed of the simulated business.", envvar="OPSLOOP_DEMO_SEED")
    ] = 7,
    reviewer_minutes: Annotated[
        int,
        typer.Option(
            min=1,
            help="Minutes the simulated reviewer spends on the inbox each working day.",
            envvar="OPSLOOP_FLYWHEEL_REVIEWER_MINUTES",
        ),
    ] = 40,
    keep: Annotated[
        Path | None,
        typer.Option(
            help="Keep the simulated business's database in this new folder (default: a "
            "temporary one, deleted afterwards).",
            envvar="OPSLOOP_FLYWHEEL_KEEP",
            file_okay=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the weeks as JSON.")] = False,
) -> None:
    """Simulate weeks of the demo business: reviews teach the lead playbook until it earns auto."""
    from opsloop.demo.flywheel_report import run_flywheel

    try:
        run_flywheel(
            settings(),
            weeks=weeks,
            seed=seed,
            reviewer_minutes=reviewer_minutes,
            keep=keep,
            as_json=as_json,
            console=console,
        )
    except OpsLoopError as exc:
        _fail(exc)


# --- playbooks -------------------------------------------------------------------------------


@playbook_app.command("validate")
def playbook_validate(
    file: Annotated[
        Path, typer.Argument(help="A playbook YAML file.", exists=True, dir_okay=False)
    ],
) -> None:
    """Check a playbook; print each problem with its line, or OK."""
    from opsloop.service.playbooks import load_playbook

    try:
        llm = settings().llm
        configured = bool(llm.url and llm.model)
        playbook, _ = load_playbook(read_text(file), str(file), llm_configured=configured)
    except PlaybookInvalid as exc:
        for problem in exc.problems:
            err.print(f"[red]{escape(str(problem))}[/red]")
        raise typer.Exit(1) from None
    except InvalidInput as exc:
        _fail(exc)
    console.print(
        f"[green]OK[/green] {playbook.name}: {len(playbook.features)} features, "
        f"{len(playbook.scorecard)} scorecard lines, {len(playbook.rules)} rules, "
        f"options {', '.join(playbook.options)}; mode {playbook.mode}"
    )


@playbook_app.command("apply")
def playbook_apply(
    file: Annotated[
        Path, typer.Argument(help="A playbook YAML file.", exists=True, dir_okay=False)
    ],
) -> None:
    """Store a playbook; a new version when its content changed. Running servers pick it up."""
    with service() as ops:
        try:
            applied = ops.apply_playbook_file(file, actor=_who())
        except PlaybookInvalid as exc:
            for problem in exc.problems:
                err.print(f"[red]{escape(str(problem))}[/red]")
            raise typer.Exit(1) from None
    state = "now at" if applied.changed else "unchanged at"
    console.print(f"{applied.name}: {state} version {applied.version} (mode {applied.mode})")
    if applied.notice:
        console.print(f"[yellow]{escape(applied.notice)}[/yellow]")


@playbook_app.command("list")
def playbook_list() -> None:
    """Active playbooks with their mode and version."""
    with service() as ops:
        rows = ops.list_playbooks()
    table = Table("name", "mode", "version", "subject", "trigger", "options")
    for row in rows:
        table.add_row(
            row["name"],
            row["mode"],
            str(row["version"]),
            row["subject"],
            ", ".join(row["trigger"]),
            ", ".join(row["options"]),
        )
    console.print(table if rows else "No playbooks yet: `opsloop playbook apply FILE`.")


@playbook_app.command("readiness")
def playbook_readiness(
    name: Annotated[str, typer.Argument(help="The playbook's name.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Has the playbook earned `auto`? Agreement with reviewers over its recent reviewed
    decisions, judged on the Wilson 95% lower bound against its target."""
    with service() as ops:
        ready = ops.readiness(name)
    if json_out:
        console.print_json(data=ready)
        return
    verdict = "[green]ready for auto[/green]" if ready["ready"] else "[yellow]not ready[/yellow]"
    agreement = "-" if ready["agreement"] is None else f"{ready['agreement']:.1%}"
    console.print(f"{name} (mode {ready['mode']}): {verdict}")
    table = Table(
        "reviewed", "agreed", "overridden", "rejected", "agreement", "lower bound", "target"
    )
    table.add_row(
        f"{ready['reviewed']} (min {ready['min_reviews']})",
        str(ready["agreed"]),
        str(ready["overridden"]),
        str(ready["rejected"]),
        agreement,
        f"{ready['lower_bound']:.1%}",
        f"{ready['target']:.0%}",
    )
    console.print(table)
    console.print(escape(ready["why"]))


def _set_mode(name: str, mode: str, reason: str | None) -> None:
    with service() as ops:
        changed = ops.change_mode(name, mode, actor=_who(), reason=reason)
    if changed["changed"]:
        console.print(f"{name} is now in [bold]{mode}[/bold] mode.")
    else:
        console.print(f"{name} was already in {mode} mode.")


@playbook_app.command("promote")
def playbook_promote(
    name: Annotated[str, typer.Argument(help="The playbook's name.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
) -> None:
    """Let the playbook act on its own (`auto`). Refused until `opsloop playbook readiness`
    says it is ready. Guarded actions (refunds, payments, discounts, deletions, anything
    marked sensitive) still wait for a person."""
    _set_mode(name, "auto", reason)


@playbook_app.command("demote")
def playbook_demote(
    name: Annotated[str, typer.Argument(help="The playbook's name.")],
    to: Annotated[
        str, typer.Option(help="recommend (a person approves) or shadow (log only).")
    ] = "recommend",
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
) -> None:
    """Take `auto` away: decisions wait for a person again (or are only logged)."""
    if to not in ("recommend", "shadow"):
        err.print("[red]--to must be recommend or shadow[/red]")
        raise typer.Exit(2)
    _set_mode(name, to, reason)


# --- ingest ----------------------------------------------------------------------------------


@app.command()
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
    from opsloop.core.events import validate_events
    from opsloop.perception.files import count_rows, read_rows

    stored = duplicates = refused = 0
    with service() as ops:
        total = count_rows(file)
        batch: list[Any] = []

        def flush() -> None:
            nonlocal stored, duplicates
            if batch:
                accepted = ops.store_events(batch)
                stored += sum(1 for a in accepted if a.status == "created")
                duplicates += sum(1 for a in accepted if a.status == "duplicate")
                batch.clear()

        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task(f"Importing {file.name}", total=total)
            now = ops.ctx.clock()
            for row in read_rows(file):
                problem: Exception | None = (
                    InvalidInput.single("", row.error) if row.error else None
                )
                if problem is None:
                    try:
                        batch.extend(validate_events([row.item], source=source, received_at=now))
                    except InvalidInput as exc:
                        problem = exc
                if problem is not None:
                    refused += 1
                    ops.quarantine(
                        source=source, body=row.raw, error=problem, file=str(file), line=row.line
                    )
                    progress.console.print(
                        f"[yellow]{escape(str(file))}:{row.line}: {escape(str(problem))}[/yellow]"
                    )
                if len(batch) >= batch_size:
                    flush()
                progress.advance(task)
            flush()
    console.print(
        f"Stored {stored} events, {duplicates} already stored, {refused} refused (in quarantine)."
    )
    if refused:
        raise typer.Exit(1)


@app.command("import")
def import_history(
    file: Annotated[
        Path,
        typer.Argument(help="A CSV export with a header row (UTF-8).", exists=True, dir_okay=False),
    ],
    subject_kind: Annotated[
        str,
        typer.Option(help="What each row is about (lead, session, ticket …): rows become KIND:ID."),
    ],
    time_column: Annotated[str, typer.Option(help="The column saying when the row happened.")],
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
            help="The year of times that have none (--time-format %b). Default: this year.",
            min=1,
            max=9999,
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
    )
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with service() as ops, Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(f"Importing {file.name}", total=None)
        try:
            report = ops.import_history(
                file,
                spec,
                source=source,
                batch_size=batch_size,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
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
    if report.first_at and report.last_at:
        console.print(
            f"The events stored run from {report.first_at:%Y-%m-%d %H:%M} "
            f"to {report.last_at:%Y-%m-%d %H:%M} UTC."
        )
    if report.in_future:
        console.print(
            f"[yellow]{report.in_future:,} events are dated after now; if the times have no "
            "year, give it with --year.[/yellow]"
        )
    if report.gave_up:
        console.print(
            f"[red]Stopped: the first {report.rows} rows were all refused, so an option most "
            "likely does not fit the file (--time-column, --time-format, --id-column, "
            "--outcome-column).[/red]"
        )
    if report.refused:
        console.print(
            f"[yellow]{report.refused:,} rows refused, kept in quarantine (`opsloop quarantine`); "
            f"the first {len(report.problems)}:[/yellow]"
        )
        for problem in report.problems:
            console.print(f"  {escape(str(problem))}")
        raise typer.Exit(1)


# --- decisions and review --------------------------------------------------------------------


@app.command()
def decisions(
    decision_id: Annotated[
        int | None,
        typer.Argument(help="Show this decision in full.", min=FIRST_ID, max=LAST_ID),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            help="pending, approved, overridden, rejected, auto, logged or error; to_review "
            "lists pending decisions and sampled auto ones nobody has reviewed yet."
        ),
    ] = None,
    playbook: Annotated[str | None, typer.Option(help="Only this playbook.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject, e.g. lead:42.")] = None,
    limit: Annotated[int, typer.Option(help="How many to list.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List decisions, or show one with its full explanation."""
    with service() as ops:
        if decision_id is not None:
            detail = ops.decision_detail(decision_id)
            if as_json:
                console.print_json(json.dumps(detail, default=str))
            else:
                _show_decision(detail)
            return
        rows = ops.list_decisions(status=status, playbook=playbook, subject=subject, limit=limit)
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    if not rows:
        console.print("No decisions match.")
        return
    table = Table()
    for name in ("id", "subject", "status", "choice", "score"):
        table.add_column(name, no_wrap=True)
    # The reasons take what width is left and are cut short, not wrapped, on narrow terminals.
    widest = max(
        (len(row["subject"]) + len(row["choice"] or "") + len(row["status"]) for row in rows),
        default=0,
    )
    room = max(console.width - widest - 30, 20)
    table.add_column("because", no_wrap=True, overflow="ellipsis", max_width=room)
    playbooks = {row["playbook"] for row in rows}
    if len(playbooks) > 1:
        table.add_column("playbook")
    for row in rows:
        choice = row["choice"] or ""
        if row["final_choice"] and row["final_choice"] != row["choice"]:
            choice = f"{choice} → {row['final_choice']}"
        cells = [
            str(row["id"]),
            row["subject"],
            row["status"],
            choice,
            _num(row["score"]),
            escape(row["reasons"]),
        ]
        table.add_row(*cells, *([row["playbook"]] if len(playbooks) > 1 else []))
    if len(playbooks) == 1:
        table.title = f"{playbooks.pop()} — `opsloop decisions ID` explains one"
    console.print(table)


@app.command()
def review(
    decision_id: Annotated[
        int, typer.Argument(help="The decision to review.", min=FIRST_ID, max=LAST_ID)
    ],
    approve: Annotated[
        bool, typer.Option("--approve", help="Run what the playbook chose.")
    ] = False,
    override: Annotated[
        str | None, typer.Option("--override", metavar="OPTION", help="Run this option instead.")
    ] = None,
    reject: Annotated[bool, typer.Option("--reject", help="Run nothing.")] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why (required with --override and --reject).")
    ] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Your name. Default: your login.", envvar="OPSLOOP_REVIEWER")
    ] = None,
    draft_file: Annotated[
        Path | None,
        typer.Option(
            "--draft-file",
            help="The reply as you finalized it (for an option that sends an AI-prepared "
            "draft); default: the draft as prepared. `-` reads standard input.",
            allow_dash=True,
        ),
    ] = None,
) -> None:
    """Approve, override or reject a pending decision."""
    chosen = [
        name
        for name, on in (
            ("approve", approve),
            ("override", override is not None),
            ("reject", reject),
        )
        if on
    ]
    if len(chosen) != 1:
        err.print("[red]Give exactly one of --approve, --override OPTION or --reject.[/red]")
        raise typer.Exit(2)
    verdict = cast(Verdict, chosen[0])
    draft = None
    if draft_file is not None:
        draft = sys.stdin.read() if str(draft_file) == "-" else draft_file.read_text()
    request = ReviewRequest(
        verdict=verdict, reviewer=reviewer or _who(), option=override, reason=reason, draft=draft
    )
    with service() as ops:
        decision = ops.review(decision_id, request)
    final = decision.final_choice or "nothing"
    console.print(
        f"Decision {decision.id} {decision.status}: runs {final}. A running server or worker delivers its actions."
    )


@app.command()
def metrics(
    since: Annotated[
        str | None, typer.Option(help="Only decisions from this window, e.g. 7d or 30d.")
    ] = None,
    playbook: Annotated[str | None, typer.Option(help="Only this playbook.")] = None,
    by: Annotated[
        str | None, typer.Option(help="week: also show each ISO week.", metavar="week")
    ] = None,
    baseline: Annotated[
        str,
        typer.Option(
            help="The period the recent one is compared with: the first N days of data (30d) "
            "or dates (2026-01-01..2026-01-31)."
        ),
    ] = "30d",
    csat_event: Annotated[
        str, typer.Option(help="Event type of customer satisfaction answers.", metavar="TYPE")
    ] = "csat.submitted",
    csat_field: Annotated[
        str, typer.Option(help="The payload field holding their 1-5 rating.", metavar="FIELD")
    ] = "rating",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Per playbook: decisions by status, success rate, override rate, time to action, task
    completion, against a baseline period; customer satisfaction before and after."""
    from opsloop.core.periods import parse_baseline

    window: timedelta | None = None
    if since:
        try:
            window = parse_duration(since)
        except ValueError as exc:
            err.print(f"[red]--since: {exc}[/red]")
            raise typer.Exit(2) from None
    if by not in (None, "week"):
        err.print("[red]--by: must be week[/red]")
        raise typer.Exit(2)
    try:
        period = parse_baseline(baseline)
    except ValueError as exc:
        err.print(f"[red]--baseline: {escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    with service() as ops:
        report = ops.metrics_report(
            since=window,
            playbook=playbook,
            by="week" if by else None,
            baseline=period,
            csat_event=csat_event,
            csat_field=csat_field,
        )
    if as_json:
        console.print_json(json.dumps(report, default=str))
        return
    rows = report["playbooks"]
    if not rows:
        console.print("No playbooks yet.")
    for row in rows:
        table = Table(
            title=f"{row['playbook']} ({row['mode']})", show_header=False, title_justify="left"
        )
        counts = ", ".join(f"{v} {k}" for k, v in row["decisions"].items() if v)
        table.add_row("decisions", f"{row['total']}" + (f"  ({counts})" if counts else ""))
        table.add_row("pending reviews", str(row["pending_reviews"]))
        successes, failures = row["successes"], row["failures"]
        still_open = (
            f"  ({row['open_windows']} still in their window)" if row["open_windows"] else ""
        )
        table.add_row(
            "decision success rate",
            _rate(row["success_rate"], successes, successes + failures) + still_open,
        )
        changed = row["overridden"] + row["rejected"]
        table.add_row("human override rate", _rate(row["override_rate"], changed, row["reviewed"]))
        table.add_row("median time to action", _seconds(row["median_time_to_action_seconds"]))
        table.add_row("p90 time to action", _seconds(row["p90_time_to_action_seconds"]))
        table.add_row(
            "task completion",
            f"median {_seconds(row['median_task_completion_seconds'])}, "
            f"p90 {_seconds(row['p90_task_completion_seconds'])}  "
            f"({row['tasks_done']} done, {row['tasks_open']} open)",
        )
        console.print(table)
        _show_versus(row["vs_baseline"], "decisions", "total")
        _show_weeks(row["weeks"], _DECISION_COLUMNS)
    _show_csat(report["csat"])


# (label, key, format) of the numbers compared and shown per week.
_DECISION_COLUMNS: list[tuple[str, str, str]] = [
    ("success rate", "success_rate", "rate"),
    ("override rate", "override_rate", "rate"),
    ("median time to action", "median_time_to_action_seconds", "seconds"),
    ("p90 time to action", "p90_time_to_action_seconds", "seconds"),
    ("median task completion", "median_task_completion_seconds", "seconds"),
    ("p90 task completion", "p90_task_completion_seconds", "seconds"),
]
_CSAT_COLUMNS: list[tuple[str, str, str]] = [
    ("mean rating", "mean_rating", "number"),
    ("satisfied (4-5)", "satisfied_share", "rate"),
]


def _show_versus(versus: dict[str, Any] | None, things: str, count: str) -> None:
    if versus is None:
        return
    before, after = versus["baseline"], versus["recent"]
    table = Table(
        "",
        f"baseline {_span(before)}\n({before[count]} {things})",
        f"recent {_span(after)}\n({after[count]} {things})" if after else "recent\n(not yet)",
        "change",
        title_justify="left",
    )
    columns = _CSAT_COLUMNS if count == "responses" else _DECISION_COLUMNS
    for label, key, kind in columns:
        entry = versus[key]
        table.add_row(
            label, _shown(entry["baseline"], kind), _shown(entry["recent"], kind), _change(entry)
        )
    console.print(table)


def _show_weeks(weeks: list[dict[str, Any]] | None, columns: list[tuple[str, str, str]]) -> None:
    if not weeks:
        return
    count = "responses" if columns is _CSAT_COLUMNS else "total"
    table = Table("week", count.replace("total", "decisions"), *(label for label, _, _ in columns))
    for week in weeks:
        table.add_row(
            f"{week['week']} ({week['starts']:%d %b})",
            str(week[count]),
            *(_shown(week[key], kind) for _, key, kind in columns),
        )
    console.print(table)


def _show_csat(csat: dict[str, Any]) -> None:
    if not csat["responses"]:
        console.print(
            f"Customer satisfaction: no {escape(csat['event'])} events with a 1-5 "
            f"{escape(csat['field'])} yet."
        )
        return
    console.print(
        f"[bold]Customer satisfaction[/bold] ({escape(csat['event'])}): {csat['responses']} "
        f"answers, mean rating {csat['mean_rating']:.2f} of 5, "
        f"{_rate(csat['satisfied_share'], csat['satisfied'], csat['responses'])} satisfied (4-5)"
        + (f"; {csat['ignored']} without a 1-5 rating ignored" if csat["ignored"] else "")
    )
    _show_versus(csat["vs_baseline"], "answers", "responses")
    _show_weeks(csat["weeks"], _CSAT_COLUMNS)


def _span(period: dict[str, Any] | None) -> str:
    if not period:
        return ""
    last = period["until"] - timedelta(seconds=1)
    return f"{period['since']:%Y-%m-%d} to {last:%Y-%m-%d}"


def _shown(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value:.0%}"
    if kind == "seconds":
        return _seconds(value)
    return f"{value:.2f}"


def _change(entry: dict[str, Any]) -> str:
    return "—" if entry["change"] is None else f"{entry['change']:+.0%}"


@app.command()
def actions(
    status: Annotated[
        str | None,
        typer.Option(help="pending, delivering, retrying, delivered, dead or cancelled."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many to list.")] = 20,
) -> None:
    """The outbox: actions and their delivery status."""
    with service() as ops:
        rows = ops.list_actions(status=status, limit=limit)
    table = Table("id", "decision", "kind", "status", "attempts", "last error")
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["decision_id"]),
            row["kind"],
            row["status"],
            str(row["attempts"]),
            escape((row["last_error"] or "")[:80]),
        )
    console.print(table if rows else "No actions.")


@app.command()
def retry(
    action_id: Annotated[
        int, typer.Argument(help="A dead-lettered action.", min=FIRST_ID, max=LAST_ID)
    ],
) -> None:
    """Give a dead-lettered action one more delivery attempt."""
    with service() as ops:
        ops.retry_action(action_id, actor=_who())
    console.print(f"Action {action_id} queued for one more attempt.")


@app.command()
def cancel(
    action_id: Annotated[
        int, typer.Argument(help="A pending or retrying action.", min=FIRST_ID, max=LAST_ID)
    ],
) -> None:
    """Stop an action that has not been delivered yet, for good (pending or retrying only)."""
    with service() as ops:
        action = ops.cancel_action(action_id, actor=_who())
    console.print(f"Action {action_id} ({action['kind']}) cancelled: it will not be delivered.")


@app.command()
def quarantine(limit: Annotated[int, typer.Option(help="How many to list.")] = 20) -> None:
    """Input that was refused, with the reason for each."""
    with service() as ops:
        rows = ops.list_quarantine(limit=limit)
    table = Table("id", "received", "source")
    table.add_column("where", no_wrap=True)  # file:line, to be copied whole
    table.add_column("reason")
    for row in rows:
        where = f"{row['file']}:{row['line']}" if row["file"] else ""
        table.add_row(
            str(row["id"]),
            f"{row['received_at']:%Y-%m-%d %H:%M:%S}",
            row["source"],
            escape(where),
            escape(row["reason"][:100]),
        )
    console.print(table if rows else "Quarantine is empty.")


@app.command()
def replay(
    item_id: Annotated[
        int,
        typer.Argument(help="A held item of `opsloop quarantine`.", min=FIRST_ID, max=LAST_ID),
    ],
) -> None:
    """Run a quarantined item's body through its ingest path again, once its source or
    mapping is fixed. Decisions on the events it becomes are made by a running server or
    worker."""
    with service() as ops:
        done = ops.replay_quarantined(item_id, actor=_who())
    if not done.ok:
        err.print(
            f"[red]Quarantined item {item_id} was refused again:[/red] {escape(done.reason or '')}"
            "\nIt stays held; fix its source or mapping and replay it again."
        )
        raise typer.Exit(1)
    ids = ", ".join(str(event_id) for event_id in done.event_ids)
    repeats = len(done.event_ids) - done.created
    console.print(
        f"Quarantined item {item_id} replayed: stored as event ids {ids} "
        f"({done.created} new, {repeats} already stored)."
    )


# --- models ----------------------------------------------------------------------------------


@app.command()
def train(
    playbook: Annotated[str, typer.Argument(help="The playbook whose `model:` to train.")],
    force: Annotated[
        bool, typer.Option("--force", help="Train even when the labelled rows have not changed.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Train a playbook's model from the ledger now and print its evaluation on the latest
    rows it never saw. The new version replaces the champion only if it beats it on the same
    held-out rows; otherwise it runs in shadow as the challenger."""
    with service() as ops, err.status("Training", spinner="dots") as status:
        result = ops.train(
            playbook,
            actor=_who(),
            force=force,
            step=lambda text: status.update(escape(text)),
        )
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    for one in [result, *result.get("also", [])]:
        if one["status"] == "unchanged":
            console.print(f"[yellow]{escape(one['message'])}[/yellow]")
        elif one.get("kind") == "text":
            _show_text_training(one)
        else:
            _show_training(one)


def _show_text_training(result: dict[str, Any]) -> None:
    """A text classifier's evaluation on the latest messages it never saw."""
    from opsloop.learning.text import ClassReport, TextReport

    colour = "green" if result["status"] == "promoted" else "yellow"
    console.print(f"[{colour}]{escape(result['message'])}[/{colour}]")
    data = dict(result["report"])
    data["per_class"] = [ClassReport(**row) for row in data["per_class"]]
    training = result["training"]
    console.print(
        f"trained on {training['train']} messages, tested on the latest {training['test']}"
    )
    console.print(escape(TextReport(**data).to_text()))


@app.command()
def models(
    playbook: Annotated[str, typer.Argument(help="The playbook whose model versions to list.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """A playbook's model versions: champion, challenger and retired, with their metrics."""
    with service() as ops:
        listing = ops.list_models(playbook)
    if as_json:
        console.print_json(json.dumps(listing, default=str))
        return
    _show_text_versions(listing.get("text") or (listing if listing.get("kind") == "text" else None))
    if listing.get("kind") == "text":
        return
    title = f"{listing['model']} → {listing['as']}"
    if not listing["versions"]:
        console.print(f"{title}: no versions yet; `opsloop train {playbook}` trains one.")
        return
    table = Table(
        "version",
        "status",
        "algorithm",
        "ROC AUC",
        "PR AUC",
        "Brier",
        "rows",
        "data",
        "trained",
        title=title,
        title_justify="left",
    )
    for v in listing["versions"]:
        window = v["training"].get("window") or {}
        table.add_row(
            str(v["version"]),
            _status_markup(v["status"]),
            v["algorithm"],
            _fixed(v["roc_auc"], 3),
            _fixed(v["pr_auc"], 3),
            _fixed(v["brier"], 4),
            str(v["training"].get("rows", "")),
            f"{_day(window.get('from'))} .. {_day(window.get('to'))}",
            f"{v['created_at']:%Y-%m-%d %H:%M} by {escape(v['created_by'])}",
        )
    console.print(table)


def _show_text_versions(listing: dict[str, Any] | None) -> None:
    if listing is None:
        return
    title = f"{listing['model']} → {listing['as']}"
    if not listing["versions"]:
        console.print(f"{title}: no versions yet; `opsloop train` trains one.")
        return
    table = Table(
        "version", "status", "method", "accuracy", "macro-F1", "messages", "trained", title=title
    )
    for v in listing["versions"]:
        table.add_row(
            str(v["version"]),
            _status_markup(v["status"]),
            v["algorithm"],
            _fixed(v["accuracy"], 3),
            _fixed(v["macro_f1"], 3),
            str(v["training"].get("rows", "")),
            f"{v['created_at']:%Y-%m-%d %H:%M} by {escape(v['created_by'])}",
        )
    console.print(table)


def _show_training(result: dict[str, Any]) -> None:
    report, training, verdict = result["report"], result["training"], result["verdict"]
    colour = "green" if result["status"] == "promoted" else "yellow"
    console.print(f"[{colour}]{escape(result['message'])}[/{colour}]")
    summary = Table(
        show_header=False, title=f"{result['model']} v{result['version']}", title_justify="left"
    )
    summary.add_row("algorithm", f"{report['algorithm']} ({report['calibration_method']})")
    for part in ("train", "test"):
        split = report[part]
        summary.add_row(
            f"{part} rows",
            f"{split['rows']} ({split['positives']} positive), "
            f"{_day(split['start'])} .. {_day(split['end'])}",
        )
    left_out = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in training["left_out"].items())
    if left_out:
        summary.add_row("left out", left_out)
    summary.add_row("ROC AUC", _fixed(report["roc_auc"], 3))
    summary.add_row(
        "PR AUC", f"{_fixed(report['pr_auc'], 3)} (base rate {report['base_rate']:.3f})"
    )
    summary.add_row("Brier score", _fixed(report["brier"], 4))
    summary.add_row(
        "lift", f"top 10% {report['lift_top_10']:.2f}x, top 20% {report['lift_top_20']:.2f}x"
    )
    console.print(summary)
    calibration = Table(
        "predicted", "observed", "rows", title="Calibration (held-out rows)", title_justify="left"
    )
    for row in report["calibration"]:
        calibration.add_row(
            f"{row['predicted_mean']:.3f}", f"{row['observed_rate']:.3f}", str(row["count"])
        )
    console.print(calibration)
    strongest = Table(
        "feature",
        "drop in ROC AUC when shuffled",
        title="Strongest features",
        title_justify="left",
    )
    for feature in report["top_features"][:8]:
        strongest.add_row(escape(feature["feature"]), f"{feature['importance']:+.4f}")
    console.print(strongest)
    if verdict.get("champion"):
        compared = Table(
            "",
            f"champion v{verdict['champion_version']}",
            f"new v{result['version']}",
            title=f"Champion/challenger on the same {verdict['compared_on']} held-out rows",
            title_justify="left",
        )
        for key, label, digits in (("roc_auc", "ROC AUC", 3), ("brier", "Brier", 4)):
            compared.add_row(
                label,
                _fixed(verdict["champion"][key], digits),
                _fixed(verdict["challenger"][key], digits),
            )
        console.print(compared)
    for note in report.get("notes", []):
        console.print(f"note: {escape(note)}")


def _status_markup(status: str) -> str:
    colour = {"champion": "green", "challenger": "yellow"}.get(status)
    return f"[{colour}]{status}[/{colour}]" if colour else status


def _fixed(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _day(value: Any) -> str:
    return "—" if not value else str(value)[:10]


# --- language model --------------------------------------------------------------------------

llm_app = typer.Typer(
    help="Check and try the language model (OPSLOOP_LLM__URL, OPSLOOP_LLM__MODEL; see docs/llm.md).",
    no_args_is_help=True,
)
app.add_typer(llm_app, name="llm")


@llm_app.command("test")
def llm_test() -> None:
    """Send one tiny request to the configured model; print its name and latency, or what is wrong."""
    from opsloop.service import llm_setup as llm_service

    with service() as ops:
        check = llm_service.test_connection(ops.ctx)
    if not check.ok:
        err.print(f"[red]Language model check failed:[/red] {escape(check.error or '')}")
        raise typer.Exit(1)
    console.print(
        f"[green]OK[/green] {escape(check.served_model or '')} at {escape(check.url or '')} "
        f"answered in {check.latency_ms or 0:.0f} ms"
    )


@llm_app.command("classify")
def llm_classify(
    text: Annotated[str, typer.Argument(help="The text to classify.")],
    label: Annotated[
        list[str],
        typer.Option(
            "--label", "-l", help="An allowed label; give it once per label (two or more)."
        ),
    ],
    instructions: Annotated[
        str | None,
        typer.Option(help="Extra guidance for the model, e.g. what each label means."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Classify TEXT into one of the --label values, as a playbook would (cached, booked)."""
    from opsloop.service import llm_setup as llm_service

    with (
        service() as ops,
        llm_service.language_model(ops.ctx, needed_by="opsloop llm classify") as llm,
    ):
        result = llm.classify(text, label, instructions=instructions)
    call = result.call
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "label": result.label,
                    "confidence": result.confidence,
                    "reason": result.reason,
                    "model": call.model,
                    "cached": call.cached,
                    "prompt_tokens": call.prompt_tokens,
                    "completion_tokens": call.completion_tokens,
                    "cost": call.cost,
                    "latency_ms": call.latency_ms,
                }
            )
        )
        return
    table = Table(show_header=False, title=f"{call.model}{' (cached)' if call.cached else ''}")
    table.add_row("label", f"[bold]{escape(result.label)}[/bold]")
    table.add_row("confidence", f"{result.confidence:.2f}")
    table.add_row("reason", escape(result.reason))
    table.add_row("tokens", f"{_num(call.prompt_tokens)} in, {_num(call.completion_tokens)} out")
    table.add_row("cost", "—" if call.cost is None else f"{call.cost:.6f}")
    table.add_row("latency", f"{call.latency_ms:.0f} ms")
    console.print(table)


# --- backtests -------------------------------------------------------------------------------


@app.command()
def backtest(
    target: Annotated[
        str,
        typer.Argument(
            metavar="PLAYBOOK_FILE_OR_NAME",
            help="A playbook YAML file (a draft, validated first) or a saved playbook's name.",
        ),
    ],
    since: Annotated[
        str,
        typer.Option(help="Start of the period: a duration back from now (90d) or a date."),
    ] = "90d",
    until: Annotated[
        str | None, typer.Option(help="End of the period, written the same way. Default: now.")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="With a name: replay this saved version, not the active one.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay a playbook over past events: what it would have decided, against the active
    version, reviewers' choices and what happened. Nothing is sent; only the report is kept."""
    path = Path(target)
    is_file = path.suffix in (".yaml", ".yml") or path.exists()
    if is_file and not path.is_file():
        err.print(f"[red]{escape(target)}: no such file[/red]")
        raise typer.Exit(2)
    with service() as ops, _backtest_progress() as progress:
        try:
            report = ops.backtest(
                playbook=None if is_file else target,
                source=read_text(path) if is_file else None,
                file=str(path),
                version=version,
                since=since,
                until=until,
                actor=_who(),
                progress=progress,
            )
        except PlaybookInvalid as exc:
            for problem in exc.problems:
                err.print(f"[red]{escape(str(problem))}[/red]")
            raise typer.Exit(1) from None
    if as_json:
        console.print_json(json.dumps(report, default=str))
    else:
        _show_backtest(report)


@contextmanager
def _backtest_progress() -> Iterator[Any]:
    names = {"reading": "Reading events", "replaying": "Replaying", "comparing": "Comparing"}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[n]}"))
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                for task in bar.tasks:  # the stage before is over
                    bar.update(task.id, total=task.completed or 1, completed=task.completed or 1)
                tasks[stage] = bar.add_task(names.get(stage, stage), total=total, n="")
            n = f"{done:,} events" if stage == "reading" else f"{done}/{total}" if total else ""
            bar.update(tasks[stage], completed=done, total=total, n=n)

        yield update


def _show_backtest(r: dict[str, Any]) -> None:
    period, counts = r["period"], r["counts"]
    against = r["compared_with"]
    versus = (
        ""
        if against is None
        else " (the active version)"
        if against["same_as_version"]
        else f" against {against['label']}"
    )
    console.print(
        f"[bold]Backtest of {escape(r['playbook'])}, {escape(r['version']['label'])}[/bold]{versus}: "
        f"triggers from {period['since'][:16]} to {period['until'][:16]}"
        + (f" (data until {period['data_end'][:16]})" if period["data_end"] else "")
    )
    table = Table(show_header=False, title="Counts", title_justify="left")
    table.add_row("events scanned", f"{counts['events_scanned']:,}")
    table.add_row(
        "triggers",
        f"{counts['triggers']:,} ({counts['skipped_by_cooldown']:,} skipped by the cooldown)",
    )
    table.add_row(
        "decisions",
        f"{counts['decisions']:,} ({counts['failed']:,} failed, {counts['held_for_review']:,} held for a person)",
    )
    console.print(table)

    outcomes = {row["choice"]: row for row in (r["outcomes"] or {}).get("by_choice", [])}
    title = "Choices" + (
        f" and outcomes ({', '.join(r['outcomes']['success'])} within {r['outcomes']['within']})"
        if r["outcomes"]
        else ""
    )
    table = Table("choice", "decisions", "share", title=title, title_justify="left")
    if outcomes:
        for name in ("success", "failure", "open", "success rate"):
            table.add_column(name, justify="right")
    for row in r["choices"]:
        cells = [escape(row["label"]), f"{row['decisions']:,}", _share(row["share"])]
        if outcomes:
            o = outcomes[row["choice"]]
            cells += [
                f"{o['success']:,}",
                f"{o['failure']:,}",
                f"{o['open']:,}",
                _share(o["success_rate"]),
            ]
        table.add_row(*cells)
    console.print(table)

    agreement = r["agreement"]
    if agreement["reviewed"]:
        table = Table(
            "",
            "compared",
            "agreed",
            "rate",
            "lower bound (95%)",
            title=f"Agreement with {agreement['reviewed']:,} reviewed decisions ({agreement['rejected']:,} rejected, not counted)",
            title_justify="left",
        )
        rows = [("this version", agreement)]
        if "active" in agreement and not (against and against["same_as_version"]):
            rows.append(("active version", agreement["active"]))
        for label, a in rows:
            table.add_row(
                label,
                f"{a['compared']:,}",
                f"{a['agreed']:,}",
                _share(a["rate"]),
                _share(a["lower_bound"]),
            )
        console.print(table)
    else:
        console.print("No reviewed decisions in the period to compare with.")

    changes = r["changes"]
    if changes and not against["same_as_version"]:
        console.print(
            f"Changed decisions: [bold]{changes['changed']:,}[/bold] of {changes['compared']:,} "
            f"({changes['score_changed']:,} with another score; {changes['newly_decided']:,} newly "
            f"decided, {changes['no_longer_decided']:,} no longer decided)"
        )
        if changes["examples"]:
            table = Table(
                "subject",
                "event",
                "occurred",
                "was",
                "now",
                "score",
                title="Examples",
                title_justify="left",
            )
            for e in changes["examples"]:
                table.add_row(
                    escape(e["subject"]),
                    str(e["event_id"]),
                    e["occurred_at"][:16],
                    str(e["old_choice"]),
                    str(e["new_choice"]),
                    f"{_num(e['old_score'])} → {_num(e['new_score'])}",
                )
            console.print(table)
    record = r["live_record"]
    if record and record["stored"]:
        console.print(
            f"Live record: the replay of version {record['version']} reproduces "
            f"{record['reproduced']:,} of its {record['stored']:,} stored decisions"
            + (f" ({record['different']:,} differ)" if record["different"] else "")
        )
    errors = r["errors"]
    if errors["decisions"]:
        table = Table(
            "where",
            "error",
            "decisions",
            title=f"Expression errors in {errors['decisions']:,} decisions",
            title_justify="left",
        )
        for row in errors["by_message"]:
            table.add_row(row["where"], escape(row["message"]), f"{row['count']:,}")
        console.print(table)
    if r.get("id") is not None:
        console.print(f"Report {r['id']} kept: GET /api/backtests/{r['id']}")


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


# --- helpers ---------------------------------------------------------------------------------


def _show_decision(d: dict[str, Any]) -> None:
    e = d["explanation"]
    console.print(
        f"[bold]Decision {d['id']}[/bold]  {d['playbook']} v{d['playbook_version']}  {d['subject']}  "
        f"[cyan]{d['status']}[/cyan]  mode {d['mode']}"
    )
    console.print(f"Why: {escape(d['why'])}")
    if d.get("trigger"):
        t = d["trigger"]
        console.print(f"Trigger: event {t['id']} {t['type']} at {t['occurred_at']}")
    if "features" in e:
        table = Table("feature", "value", title="Features")
        for name, value in e["features"].items():
            table.add_row(name, escape(json.dumps(value, default=str)))
        console.print(table)
    if e.get("scorecard"):
        table = Table(
            "",
            "line",
            "condition",
            "saw",
            "points",
            title=f"Scorecard: {_num(e.get('points'))} points",
        )
        for line in e["scorecard"]:
            mark = (
                "[green]✓[/green]"
                if line["matched"]
                else ("[red]![/red]" if "error" in line else "·")
            )
            saw = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in line["saw"].items())
            if "error" in line:
                saw += f"  ({line['error']})"
            table.add_row(
                mark, escape(line["label"]), escape(line["when"]), escape(saw), _num(line["points"])
            )
        console.print(table)
    if "score" in e:
        console.print(
            f"Score: {_num(e['score'].get('value'))} = {escape(str(e['score'].get('formula')))}"
        )
    for rule in e.get("rules", []):
        state = "[green]matched[/green]" if rule["matched"] else "no"
        console.print(f"Rule {rule['index']}: {escape(rule['when'])} → {rule['choose']}: {state}")
    for entry in e.get("tables", []):
        _show_table(entry)
    chosen_by = e.get("chosen_by", {})
    if "table" in chosen_by:
        console.print(
            f"Chosen by table {chosen_by['table']}, row {chosen_by['row']} → {e['choice']}"
        )
    elif chosen_by.get("rule") is None and "choice" in e:
        console.print(f"No rule matched: otherwise → {e['choice']}")
    for hold in e.get("guardrails", []):
        console.print(f"[yellow]Guardrail:[/yellow] {escape(hold['reason'])}")
    for review_row in d.get("reviews", []):
        console.print(
            f"Review: {review_row['verdict']} by {review_row['reviewer']}"
            f"{' → ' + review_row['option'] if review_row['option'] else ''}"
            f"{': ' + escape(review_row['reason']) if review_row['reason'] else ''}"
        )
    for action in d.get("actions", []):
        console.print(
            f"Action {action['id']} {action['kind']}: {action['status']} after {action['attempts']} attempt(s)"
            f"{' — ' + escape(action['last_error']) if action['last_error'] else ''}"
        )
    if d.get("outcome"):
        o = d["outcome"]
        console.print(f"Outcome: {o['kind']} after {o['after_seconds'] / 86400:.1f} days")


def _option(field: str, file: Path) -> str:
    """`--id-column` for the field `id_column`; the file's name for `file`."""
    if field == "file":
        return str(file)
    return f"--{field.replace('_', '-')}" if field else field


def _show_table(entry: dict[str, Any]) -> None:
    """A decision table from an explanation: every row, what it saw, and the rows used."""
    result = entry["result"] if entry["result"] is not None else "no option"
    table = Table(
        "", "row", "saw", entry["gives"], title=f"Table {entry['label']} ({entry['hit']}): {result}"
    )
    for row in entry["rows"]:
        mark = "[green]✓[/green]" if row["matched"] else ("[red]![/red]" if "error" in row else "·")
        if row["index"] in entry["used"]:
            mark += "[bold]←[/bold]"
        saw = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in row["saw"].items())
        if "error" in row:
            saw += f"  ({row['error']})"
        output = row.get("points", row.get("choose"))
        table.add_row(mark, escape(row["label"]), escape(saw), escape(_num(output)))
    console.print(table)


def _db_label(config: Settings) -> str:
    url = config.resolved_database_url
    return url.split("@")[-1] if "@" in url else url


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "cli"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _rate(value: float | None, part: int, whole: int) -> str:
    return "—" if value is None else f"{value:.0%} ({part}/{whole})"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def main() -> None:
    try:
        app()
    except OpsLoopError as exc:  # errors raised outside a `service()` block
        err.print(f"[red]Error:[/red] {escape(str(exc))}")
        sys.exit(1)
