"""How the command line shows things: the Rich tables and progress bars the commands print, and
the small formatters they share (the long reports are in opsloop/cli/reports.py). Commands fetch through the service and hand the
result here; nothing in this module talks to the service.

Rich's progress bars and syntax highlighting are imported by the functions that draw them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from opsloop.cli.common import console, err

if TYPE_CHECKING:  # types only: `opsloop --help` loads none of the models behind them
    from rich.progress import Progress

    from opsloop.core.action_views import ActionRow
    from opsloop.core.decision_views import DecisionDetail, DecisionSummary
    from opsloop.core.explanations import TableEntry
    from opsloop.core.quarantine import QuarantinedItem
    from opsloop.service import (
        ContractDetail,
        ContractSummary,
        DbStats,
        PlaybookSummary,
        Purged,
        Quality,
        ReadinessReport,
        Run,
        StoredSource,
        TemplateSummary,
    )


# --- formatters ------------------------------------------------------------------------------


def num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def rate(value: float | None, part: int, whole: int) -> str:
    return "—" if value is None else f"{value:.0%} ({part}/{whole})"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def fixed(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def day(value: Any) -> str:
    return "—" if not value else str(value)[:10]


def when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if isinstance(value, datetime) else "—"


def mb(value: int | None, *, unit: bool = True) -> str:
    if value is None:
        return "?"
    return f"{value / 1e6:,.2f}" + (" MB" if unit else "")


def print_json(value: Any) -> None:
    """`value` as indented, highlighted JSON; dates and other objects as their text."""
    console.print_json(json.dumps(value, default=str))


# --- progress --------------------------------------------------------------------------------


def file_progress() -> Progress:
    """A bar for reading a file row by row, on standard error: `opsloop ingest` and `import`."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=err, transient=False)


@contextmanager
def backtest_progress() -> Iterator[Any]:
    from rich.progress import BarColumn, Progress, TextColumn

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


@contextmanager
def ledger_progress() -> Iterator[Any]:
    """`update(what, done, total)` for each part of the ledger `opsloop audit verify` checks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("Checking {task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total or None)
            bar.update(tasks[what], completed=done)

        yield update


# --- playbooks -------------------------------------------------------------------------------


def show_playbooks(rows: list[PlaybookSummary]) -> None:
    table = Table("name", "mode", "version", "subject", "trigger", "next run", "options")
    for row in rows:
        table.add_row(
            row["name"],
            row["mode"],
            str(row["version"]),
            row["subject"],
            escape(row["trigger_words"]),
            f"{row['next_run'][:16].replace('T', ' ')} UTC" if row["next_run"] else "",
            ", ".join(row["options"]),
        )
    console.print(table if rows else "No playbooks yet: `opsloop playbook apply FILE`.")


def show_templates(rows: list[TemplateSummary]) -> None:
    table = Table("name", "what it does", "needs", "installed")
    for row in rows:
        missing = [need["what"] for need in row["needs"] if not need["ready"]]
        installed = row["installed"]
        table.add_row(
            row["name"],
            escape(row["description"]),
            escape("; ".join(missing)) if missing else "[green]ready[/green]",
            f"version {installed['version']}, {installed['mode']}"
            + ("" if installed["as_shipped"] else ", changed")
            if installed
            else "no",
        )
    console.print(table)
    console.print("Install one with `opsloop playbook install-template NAME` (recommend mode).")


def show_readiness(name: str, ready: ReadinessReport) -> None:
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


# --- decisions, actions, quarantine ----------------------------------------------------------


def show_decisions(rows: list[DecisionSummary]) -> None:
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
            num(row["score"]),
            escape(row["reasons"]),
        ]
        table.add_row(*cells, *([row["playbook"]] if len(playbooks) > 1 else []))
    if len(playbooks) == 1:
        table.title = f"{playbooks.pop()} — `opsloop decisions ID` explains one"
    console.print(table)


def show_decision(d: DecisionDetail) -> None:
    """One decision with its full explanation: features, scorecard, rules, tables, guardrails,
    reviews, actions and outcome."""
    e = d["explanation"]
    console.print(
        f"[bold]Decision {d['id']}[/bold]  {d['playbook']} v{d['playbook_version']}  {d['subject']}  "
        f"[cyan]{d['status']}[/cyan]  mode {d['mode']}"
    )
    console.print(f"Why: {escape(d['why'])}")
    t = d["trigger"]
    if t:
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
            title=f"Scorecard: {num(e.get('points'))} points",
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
                mark, escape(line["label"]), escape(line["when"]), escape(saw), num(line["points"])
            )
        console.print(table)
    if "score" in e:
        console.print(
            f"Score: {num(e['score'].get('value'))} = {escape(str(e['score'].get('formula')))}"
        )
    for rule in e.get("rules", []):
        state = "[green]matched[/green]" if rule["matched"] else "no"
        # Numbered from 1, as the web page and people count them (the index counts from 0).
        label = f" ({escape(rule['label'])})" if rule.get("label") else ""
        console.print(
            f"Rule {rule['index'] + 1}{label}: {escape(rule['when'])} → {rule['choose']}: {state}"
        )
    for entry in e.get("tables", []):
        _show_decision_table(entry)
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
    o = d["outcome"]
    if o:
        console.print(f"Outcome: {o['kind']} after {o['after_seconds'] / 86400:.1f} days")


def _show_decision_table(entry: TableEntry) -> None:
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
        table.add_row(mark, escape(row["label"]), escape(saw), escape(num(output)))
    console.print(table)


def show_actions(rows: list[ActionRow]) -> None:
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


def show_quarantine(rows: list[QuarantinedItem]) -> None:
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


# --- accounts and API tokens -----------------------------------------------------------------


def show_users(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("No accounts yet: `opsloop user create EMAIL --role owner`.")
        return
    table = Table("email", "role", "status", "created", "last sign-in")
    for row in rows:
        table.add_row(
            escape(row["email"]),
            row["role"],
            row["status"],
            when(row["created_at"]),
            when(row["last_login_at"]),
        )
    console.print(table)


def show_tokens(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("No API tokens yet: `opsloop token create NAME --scope read`.")
        return
    table = Table("id", "name", "scope", "starts with", "status", "created", "last used")
    for row in rows:
        table.add_row(
            str(row["id"]),
            escape(row["name"]),
            row["scope"],
            row["prefix"] + "…",
            row["status"],
            f"{when(row['created_at'])} by {escape(row['created_by'])}",
            when(row["last_used_at"]),
        )
    console.print(table)


# --- sources ---------------------------------------------------------------------------------


def show_sources(found: list[StoredSource]) -> None:
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
            when(source.checkpoint_at),
            when(source.next_sync_at),
        )
    console.print(table)


def show_quality(name: str, days: int, quality: Quality) -> None:
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


def run_counts(run: Run) -> str:
    """A sync or backfill run's rows in one line."""
    return (
        f"{run.rows_in:,} rows in, {run.events_stored:,} stored, "
        f"{run.duplicates:,} duplicates, {run.rejected:,} rejected, {run.ignored:,} ignored"
    )


def show_runs(name: str, found: list[Run]) -> None:
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
            when(run.started_at),
            when(run.finished_at),
            f"{run.rows_in:,}",
            f"{run.events_stored:,}",
            f"{run.duplicates:,}",
            f"{run.rejected:,}",
            escape(run.error or ""),
        )
    console.print(table)


# --- contracts -------------------------------------------------------------------------------


def show_contracts(rows: list[ContractSummary]) -> None:
    table = Table("event type", "origin", "version", "fields", "traits", "additional", "applied")
    for row in rows:
        applied = (
            f"{when(row['applied_at'])} by {escape(row['applied_by'])}"
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


def show_contract(event_type: str, found: ContractDetail) -> None:
    """One event type's contract: where it comes from, its YAML and its versions."""
    from rich.syntax import Syntax

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
                when(row["applied_at"]),
                escape(row["applied_by"]),
                "yes" if row["active"] else "",
            )
        console.print(table)


# --- the ledger and the database -------------------------------------------------------------


def show_db_stats(stats: DbStats) -> None:
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
            mb(size.table_bytes, unit=False),
            mb(size.index_bytes, unit=False),
            per_row,
        )
    console.print(table)
    if stats.backend == "sqlite":
        console.print(
            f"File {mb(stats.file_bytes)}, WAL {mb(stats.wal_bytes)}, free pages "
            f"{mb(stats.free_bytes)}, auto_vacuum {stats.auto_vacuum}"
            + (
                " (run `opsloop db vacuum` once to let retention shrink the file)"
                if stats.auto_vacuum == "none"
                else ""
            )
        )
    else:
        console.print(f"Database {mb(stats.file_bytes)}")
    retention = Table(title="Retention settings")
    retention.add_column("setting")
    retention.add_column("value", justify="right")
    for name, value in stats.retention.items():
        retention.add_row(name, "forever" if value is None else str(value))
    console.print(retention)


def show_purged(purged: Purged) -> None:
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
