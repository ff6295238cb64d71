"""`opsloop flywheel`: run the simulation in a new database and print it week by week."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from opsloop.demo.flywheel import PLAYBOOK, WeekReport, open_flywheel, simulate
from opsloop.settings import Settings

COMPARED_WEEKS = 4
"""The summary compares the first and the last this many weeks."""


def run_flywheel(
    settings: Settings,
    *,
    weeks: int,
    seed: int,
    reviewer_minutes: int,
    keep: Path | None,
    as_json: bool,
    console: Console,
) -> list[WeekReport]:
    """Simulate in `keep` (a new folder) or a temporary one, then print the weeks."""
    data_dir = keep or Path(tempfile.mkdtemp(prefix="opsloop-flywheel-")) / "data"
    business, clock = open_flywheel(settings, data_dir, seed=seed)
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("day {task.completed:.0f} of {task.total:.0f}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json,
        ) as progress:
            task = progress.add_task(f"Simulating {weeks} weeks", total=1)

            def show(doing: str, day: int, days: int) -> None:
                progress.update(task, description=doing, completed=day, total=days)

            reports = simulate(
                business.ops,
                clock,
                weeks=weeks,
                seed=seed,
                reviewer_minutes=reviewer_minutes,
                progress=show,
            )
    finally:
        business.close()
        if keep is None:
            shutil.rmtree(data_dir.parent, ignore_errors=True)
    if as_json:
        console.print_json(json.dumps([r.to_dict() for r in reports], default=str))
        return reports
    console.print(week_table(reports, seed=seed))
    for line in summary(reports):
        console.print(line)
    if keep is not None:
        console.print(
            f"\nThe simulated business stays in {escape(str(keep))}: try "
            f"[cyan]opsloop --data-dir {escape(str(keep))} metrics --by week[/cyan] or "
            f"[cyan]opsloop --data-dir {escape(str(keep))} models {PLAYBOOK}[/cyan]."
        )
    return reports


def week_table(reports: Sequence[WeekReport], *, seed: int) -> Table:
    table = Table(
        title=f"The flywheel: {PLAYBOOK}, seed {seed}, {len(reports)} weeks",
        title_justify="left",
    )
    for header in ("week", "leads", "decisions"):
        table.add_column(header, justify="right")
    table.add_column("override rate", justify="right")
    table.add_column("success rate", justify="right")
    table.add_column("time to action", justify="right")
    table.add_column("mode")
    table.add_column("agreement (lower bound)", justify="right")
    table.add_column("model (ROC AUC)")
    for r in reports:
        table.add_row(
            str(r.week),
            str(r.leads),
            str(r.decisions),
            _share(r.override_rate, r.overridden, r.reviewed),
            _share(r.success_rate, r.successes, r.settled),
            "—" if r.median_time_to_action_hours is None else f"{r.median_time_to_action_hours} h",
            r.mode + (" (dropped back)" if r.demoted else "") + (" → auto" if r.promoted else ""),
            f"{r.readiness_lower_bound:.1%}",
            "—" if r.model_version is None else f"v{r.model_version} ({r.model_auc:.3f})",
        )
    table.caption = (
        "Weeks by when the lead's form or demo request arrived. Override rate: of reviewed "
        "decisions (in auto, the sampled ones). Time to action: median, trigger to first "
        "action. Agreement and model: at the week's end."
    )
    return table


def summary(reports: Sequence[WeekReport]) -> list[str]:
    n = min(COMPARED_WEEKS, len(reports) // 2)
    first, last = reports[:n], reports[-n:]
    lines = [
        f"\nFirst {n} weeks against the last {n}: override rate "
        f"{_pooled(first, 'override')} → {_pooled(last, 'override')}, success rate "
        f"{_pooled(first, 'success')} → {_pooled(last, 'success')}."
    ]
    promoted = [r.week for r in reports if r.promoted]
    dropped = [r.week for r in reports if r.demoted]
    if promoted:
        lines.append(
            f"Promoted to auto by the owner at the end of week {_weeks(promoted)}"
            + (f"; dropped back by itself in week {_weeks(dropped)}." if dropped else ".")
        )
    else:
        lines.append("The playbook has not earned auto yet: try more weeks.")
    lines.append(
        "The simulation runs the built-in lead playbook plus a model that learns from reviews, "
        "with an autonomy target of 80% instead of the usual 95%: its simulated reviewer "
        "judges leads by a propensity no event carries, so no playbook can agree with them "
        "95% of the time (opsloop/demo/lead-qualification-learning.yaml)."
    )
    return lines


def _pooled(reports: Sequence[WeekReport], what: str) -> str:
    if what == "override":
        part, whole = sum(r.overridden for r in reports), sum(r.reviewed for r in reports)
    else:
        part, whole = sum(r.successes for r in reports), sum(r.settled for r in reports)
    return f"{part / whole:.1%}" if whole else "—"


def _share(rate: float | None, part: int, whole: int) -> str:
    return "—" if rate is None else f"{rate:.1%} ({part}/{whole})"


def _weeks(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)
