"""The long reports the command line prints: metrics against a baseline, training results and
model versions, a language model's answer, and backtests. The tables, progress bars and small
formatters they share are in opsloop/cli/rendering.py; nothing here talks to the service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from opsloop.cli.common import console
from opsloop.cli.rendering import day, fixed, num, rate, seconds, share

if TYPE_CHECKING:  # types only: `opsloop --help` loads none of the models behind them
    from opsloop.core.backtest_reports import Agreeing, BacktestRun
    from opsloop.service import (
        Change,
        CsatReport,
        MetricsReport,
        TrainResult,
    )

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


def show_metrics(report: MetricsReport) -> None:
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


def _show_versus(versus: Mapping[str, Any] | None, things: str, count: str) -> None:
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


def _show_weeks(
    weeks: Sequence[Mapping[str, Any]] | None, columns: list[tuple[str, str, str]]
) -> None:
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


def _show_csat(csat: CsatReport) -> None:
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


def _span(period: Mapping[str, Any] | None) -> str:
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


def _change(entry: Change) -> str:
    return "—" if entry["change"] is None else f"{entry['change']:+.0%}"


# --- models ----------------------------------------------------------------------------------


def show_training(result: TrainResult) -> None:
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
        positives = split["positives"] / split["rows"] if split["rows"] else 0.0
        summary.add_row(
            f"{part} rows",
            f"{split['rows']} ({split['positives']} positive, {positives:.1%}), "
            f"{day(split['start'])} .. {day(split['end'])}",
        )
    left_out = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in training["left_out"].items())
    if left_out:
        summary.add_row("left out", left_out)
    if report.get("candidates"):
        summary.add_row(
            "validation ROC AUC",
            ", ".join(
                f"{name.replace('_', ' ')} {scores['roc_auc']:.3f}"
                for name, scores in report["candidates"].items()
            )
            + " (end of the training period; the better one was kept)",
        )
    summary.add_row("ROC AUC", fixed(report["roc_auc"], 3) + _interval(report))
    summary.add_row("PR AUC", f"{fixed(report['pr_auc'], 3)} (base rate {report['base_rate']:.3f})")
    summary.add_row("Brier score", fixed(report["brier"], 4))
    summary.add_row(
        "lift", f"top 10% {report['lift_top_10']:.2f}x, top 20% {report['lift_top_20']:.2f}x"
    )
    if report.get("walk_forward"):
        summary.add_row("walk-forward", escape(report["walk_forward"]["summary"]))
    console.print(summary)
    _show_walk_forward(report.get("walk_forward"))
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
    _show_verdict(verdict, result["message"])
    _show_warnings(report)
    for note in report.get("notes", []):
        console.print(f"note: {escape(note)}")
    _show_label_order(training)


def _interval(report: Mapping[str, Any], key: str = "roc_auc_interval") -> str:
    interval = report.get(key)
    return f" (95% interval {interval[0]:.3f}-{interval[1]:.3f})" if interval else ""


def _show_walk_forward(result: Mapping[str, Any] | None) -> None:
    """Each period's score beside the single hold-out's."""
    if not result or not result.get("periods"):
        return
    tabular = result["metric"] == "roc_auc"
    table = Table(
        result["period"],
        "trained on",
        "rows",
        *(["positive", "ROC AUC", "Brier"] if tabular else ["accuracy"]),
        title=f"Walk-forward by {result['period']}: trained on everything before each, "
        "scored on it",
        title_justify="left",
    )
    for period in result["periods"]:
        cells = [day(period["start"]), f"{period['train_rows']:,}", f"{period['rows']:,}"]
        if tabular:
            cells += [
                rate(period["positives"] / period["rows"], period["positives"], period["rows"]),
                fixed(period["score"], 3),
                fixed(period["brier"], 4),
            ]
        else:
            cells.append(fixed(period["score"], 3))
        table.add_row(*cells)
    console.print(table)


def _show_verdict(verdict: Mapping[str, Any], message: str) -> None:
    """Whether the new version shows skill, unless the message said it already."""
    skill = verdict.get("skill")
    if skill and skill["why"] not in message:
        colour = "green" if skill["shown"] else "yellow"
        word = "skill shown" if skill["shown"] else "no skill shown"
        console.print(f"[{colour}]{word}:[/{colour}] {escape(skill['why'])}")


def _show_warnings(report: Mapping[str, Any]) -> None:
    for warning in report.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")


def _show_label_order(training: Mapping[str, Any]) -> None:
    """The warning that the labels come grouped in time order (a file sorted by label)."""
    if training.get("label_order"):
        console.print(f"[yellow]warning: {escape(training['label_order'])}.[/yellow]")


def show_text_training(result: TrainResult) -> None:
    """A text classifier's evaluation on the latest messages it never saw."""
    from opsloop.core.text_reports import ClassReport, TextReport

    colour = "green" if result["status"] == "promoted" else "yellow"
    console.print(f"[{colour}]{escape(result['message'])}[/{colour}]")
    data = dict(result["report"])
    data["per_class"] = [ClassReport(**row) for row in data["per_class"]]
    training = result["training"]
    which = "a stratified random" if training.get("split") == "stratified" else "the latest"
    console.print(f"trained on {training['train']} messages, tested on {which} {training['test']}")
    data["warnings"] = []  # shown below, in colour
    known = {field.name for field in fields(TextReport)}
    console.print(escape(TextReport(**{k: v for k, v in data.items() if k in known}).to_text()))
    verdict: Mapping[str, Any] = result.get("verdict") or {}
    if verdict.get("champion_version") is not None and "champion_accuracy" in verdict:
        console.print(
            f"champion v{verdict['champion_version']} on the same {verdict['compared_on']} "
            f"messages: accuracy {verdict['champion_accuracy']:.3f} against "
            f"{verdict['challenger_accuracy']:.3f}"
        )
    walk = result["report"].get("walk_forward")
    if walk:
        console.print(f"walk-forward: {escape(walk['summary'])}")
        _show_walk_forward(walk)
    _show_verdict(verdict, result["message"])
    _show_warnings(result["report"])
    _show_label_order(training)


def show_models(playbook: str, listing: Mapping[str, Any]) -> None:
    """A playbook's model versions (`ModelListing`, or `TextModelListing` when its only model
    is a text classifier): its text classifier's, then its tabular model's."""
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
    _show_serving(listing["versions"])


def _show_serving(versions: Sequence[Mapping[str, Any]]) -> None:
    """Why the serving versions are champion or challenger, their walk-forward figure and
    warnings."""
    for v in versions:
        if v["status"] == "retired":
            continue
        if v.get("why"):
            console.print(f"v{v['version']} {v['status']}: {escape(v['why'])}")
        if (v.get("walk_forward") or {}).get("summary"):
            console.print(f"  walk-forward: {escape(v['walk_forward']['summary'])}")
        for warning in v.get("warnings") or []:
            console.print(f"  [yellow]warning:[/yellow] {escape(warning)}")


def _show_text_versions(listing: Mapping[str, Any] | None) -> None:
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
    _show_serving(listing["versions"])


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


def show_backtest(r: BacktestRun) -> None:
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

    outcomes = {row["choice"]: row for row in (r["outcomes"]["by_choice"] if r["outcomes"] else [])}
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
        rows: list[tuple[str, Agreeing]] = [("this version", agreement)]
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
    if changes and against and not against["same_as_version"]:
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
    for seq in r.get("sequences", []):
        table = Table(
            "step",
            "would send",
            "median after",
            title=(
                f"Sequence {seq['option']}: {seq['started']:,} started, {seq['completed']:,} "
                f"completed, {seq['stopped']:,} stopped because the customer acted"
                + (
                    f", {seq['running_at_data_end']:,} still running"
                    if seq["running_at_data_end"]
                    else ""
                )
            ),
            title_justify="left",
        )
        for step in seq["sends"]:
            table.add_row(
                escape(step["step"]), f"{step['would_send']:,}", f"{step['median_after_hours']} h"
            )
        console.print(table)
    errors = r["errors"]
    if errors["decisions"]:
        table = Table(
            "where",
            "error",
            "decisions",
            title=f"Expression errors in {errors['decisions']:,} decisions",
            title_justify="left",
        )
        for error in errors["by_message"]:
            table.add_row(error["where"], escape(error["message"]), f"{error['count']:,}")
        console.print(table)
    if r.get("id") is not None:
        console.print(f"Report {r['id']} kept: GET /api/backtests/{r['id']}")
