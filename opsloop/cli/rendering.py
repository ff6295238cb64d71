"""How the command line shows things: every Rich table, report and progress bar the commands
print, and the small formatters they share. Commands fetch through the service and hand the
result here; nothing in this module talks to the service.

Rich's progress bars and syntax highlighting are imported by the functions that draw them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from opsloop.cli.common import console, err

if TYPE_CHECKING:
    from rich.progress import Progress

    from opsloop.service import DbStats, Purged, Quality, Run, StoredSource


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


def show_playbooks(rows: list[dict[str, Any]]) -> None:
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


def show_readiness(name: str, ready: dict[str, Any]) -> None:
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


def show_decisions(rows: list[dict[str, Any]]) -> None:
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


def show_decision(d: dict[str, Any]) -> None:
    """One decision with its full explanation: features, scorecard, rules, tables, guardrails,
    reviews, actions and outcome."""
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
        console.print(f"Rule {rule['index']}: {escape(rule['when'])} → {rule['choose']}: {state}")
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
    if d.get("outcome"):
        o = d["outcome"]
        console.print(f"Outcome: {o['kind']} after {o['after_seconds'] / 86400:.1f} days")


def _show_decision_table(entry: dict[str, Any]) -> None:
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


def show_actions(rows: list[dict[str, Any]]) -> None:
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


def show_quarantine(rows: list[dict[str, Any]]) -> None:
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


# --- metrics ---------------------------------------------------------------------------------

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


def show_metrics(report: dict[str, Any]) -> None:
    """`opsloop metrics`: one table per playbook, against the baseline, by week; then CSAT."""
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
            rate(row["success_rate"], successes, successes + failures) + still_open,
        )
        changed = row["overridden"] + row["rejected"]
        table.add_row("human override rate", rate(row["override_rate"], changed, row["reviewed"]))
        table.add_row("median time to action", seconds(row["median_time_to_action_seconds"]))
        table.add_row("p90 time to action", seconds(row["p90_time_to_action_seconds"]))
        table.add_row(
            "task completion",
            f"median {seconds(row['median_task_completion_seconds'])}, "
            f"p90 {seconds(row['p90_task_completion_seconds'])}  "
            f"({row['tasks_done']} done, {row['tasks_open']} open)",
        )
        console.print(table)
        _show_versus(row["vs_baseline"], "decisions", "total")
        _show_weeks(row["weeks"], _DECISION_COLUMNS)
    _show_csat(report["csat"])


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
        f"{rate(csat['satisfied_share'], csat['satisfied'], csat['responses'])} satisfied (4-5)"
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
        return seconds(value)
    return f"{value:.2f}"


def _change(entry: dict[str, Any]) -> str:
    return "—" if entry["change"] is None else f"{entry['change']:+.0%}"


# --- models ----------------------------------------------------------------------------------


def show_training(result: dict[str, Any]) -> None:
    """A trained model's evaluation on held-out rows, and the champion/challenger verdict."""
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
            f"{day(split['start'])} .. {day(split['end'])}",
        )
    left_out = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in training["left_out"].items())
    if left_out:
        summary.add_row("left out", left_out)
    summary.add_row("ROC AUC", fixed(report["roc_auc"], 3))
    summary.add_row("PR AUC", f"{fixed(report['pr_auc'], 3)} (base rate {report['base_rate']:.3f})")
    summary.add_row("Brier score", fixed(report["brier"], 4))
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
                fixed(verdict["champion"][key], digits),
                fixed(verdict["challenger"][key], digits),
            )
        console.print(compared)
    for note in report.get("notes", []):
        console.print(f"note: {escape(note)}")


def show_text_training(result: dict[str, Any]) -> None:
    """A text classifier's evaluation on the latest messages it never saw."""
    from opsloop.core.text_reports import ClassReport, TextReport

    colour = "green" if result["status"] == "promoted" else "yellow"
    console.print(f"[{colour}]{escape(result['message'])}[/{colour}]")
    data = dict(result["report"])
    data["per_class"] = [ClassReport(**row) for row in data["per_class"]]
    training = result["training"]
    console.print(
        f"trained on {training['train']} messages, tested on the latest {training['test']}"
    )
    console.print(escape(TextReport(**data).to_text()))


def show_models(playbook: str, listing: dict[str, Any]) -> None:
    """A playbook's model versions: its text classifier's, then its tabular model's."""
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
            fixed(v["roc_auc"], 3),
            fixed(v["pr_auc"], 3),
            fixed(v["brier"], 4),
            str(v["training"].get("rows", "")),
            f"{day(window.get('from'))} .. {day(window.get('to'))}",
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
            fixed(v["accuracy"], 3),
            fixed(v["macro_f1"], 3),
            str(v["training"].get("rows", "")),
            f"{v['created_at']:%Y-%m-%d %H:%M} by {escape(v['created_by'])}",
        )
    console.print(table)


def _status_markup(status: str) -> str:
    colour = {"champion": "green", "challenger": "yellow"}.get(status)
    return f"[{colour}]{status}[/{colour}]" if colour else status


# --- language model --------------------------------------------------------------------------


def show_classification(result: Any) -> None:
    """`opsloop llm classify`: the label, the model's confidence and reason, and the call."""
    call = result.call
    table = Table(show_header=False, title=f"{call.model}{' (cached)' if call.cached else ''}")
    table.add_row("label", f"[bold]{escape(result.label)}[/bold]")
    table.add_row("confidence", f"{result.confidence:.2f}")
    table.add_row("reason", escape(result.reason))
    table.add_row("tokens", f"{num(call.prompt_tokens)} in, {num(call.completion_tokens)} out")
    table.add_row("cost", "—" if call.cost is None else f"{call.cost:.6f}")
    table.add_row("latency", f"{call.latency_ms:.0f} ms")
    console.print(table)


# --- backtests -------------------------------------------------------------------------------


def show_backtest(r: dict[str, Any]) -> None:
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
        cells = [escape(row["label"]), f"{row['decisions']:,}", share(row["share"])]
        if outcomes:
            o = outcomes[row["choice"]]
            cells += [
                f"{o['success']:,}",
                f"{o['failure']:,}",
                f"{o['open']:,}",
                share(o["success_rate"]),
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
                share(a["rate"]),
                share(a["lower_bound"]),
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
                    f"{num(e['old_score'])} → {num(e['new_score'])}",
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


def show_contracts(rows: list[dict[str, Any]]) -> None:
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


def show_contract(event_type: str, found: dict[str, Any]) -> None:
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
