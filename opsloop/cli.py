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

from opsloop.core.decisions import ReviewRequest, Verdict
from opsloop.core.durations import parse_duration
from opsloop.core.errors import InvalidInput, OpsLoopError, PlaybookInvalid
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
        playbook, _ = load_playbook(file.read_text(), str(file))
    except PlaybookInvalid as exc:
        for problem in exc.problems:
            err.print(f"[red]{escape(str(problem))}[/red]")
        raise typer.Exit(1) from None
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


# --- decisions and review --------------------------------------------------------------------


@app.command()
def decisions(
    decision_id: Annotated[int | None, typer.Argument(help="Show this decision in full.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="pending, approved, overridden, rejected, auto, logged or error."),
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
    decision_id: Annotated[int, typer.Argument(help="The decision to review.")],
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
    request = ReviewRequest(
        verdict=verdict, reviewer=reviewer or _who(), option=override, reason=reason
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
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Per playbook: decisions by status, success rate, override rate, time to action."""
    window: timedelta | None = None
    if since:
        try:
            window = parse_duration(since)
        except ValueError as exc:
            err.print(f"[red]--since: {exc}[/red]")
            raise typer.Exit(2) from None
    with service() as ops:
        rows = ops.metrics(since=window, playbook=playbook)
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
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
        table.add_row(
            "decision success rate", _rate(row["success_rate"], successes, successes + failures)
        )
        changed = row["overridden"] + row["rejected"]
        table.add_row("human override rate", _rate(row["override_rate"], changed, row["reviewed"]))
        table.add_row("median time to action", _seconds(row["median_time_to_action_seconds"]))
        console.print(table)


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
def retry(action_id: Annotated[int, typer.Argument(help="A dead-lettered action.")]) -> None:
    """Give a dead-lettered action one more delivery attempt."""
    with service() as ops:
        ops.retry_action(action_id, actor=_who())
    console.print(f"Action {action_id} queued for one more attempt.")


@app.command()
def quarantine(limit: Annotated[int, typer.Option(help="How many to list.")] = 20) -> None:
    """Input that was refused, with the reason for each."""
    with service() as ops:
        rows = ops.list_quarantine(limit=limit)
    table = Table("id", "received", "source", "where", "reason")
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
    if e.get("chosen_by", {}).get("rule") is None and "choice" in e:
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
