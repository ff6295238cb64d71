"""`opsloop experiments`: a playbook's message experiments in words, and ending one."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from opsloop.cli import rendering
from opsloop.cli.common import AsJson, console, service, who

commands = typer.Typer()


@commands.command()
def experiments(
    playbook: Annotated[str, typer.Argument(help="The playbook whose experiments to show.")],
    keep: Annotated[
        str | None,
        typer.Option(
            help="End the experiment keeping this variant: from now on only it is sent. "
            "Audited; a person's decision.",
        ),
    ] = None,
    option: Annotated[
        str | None,
        typer.Option(help="With --keep: the option of the experiment (when there are several)."),
    ] = None,
    action: Annotated[
        int | None,
        typer.Option(help="With --keep: the action's position in the option (from 0)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Each variant's sends, outcomes, success rate with its 95% interval and probability of
    being best; the expected loss of stopping now, and the winner or "no winner yet"."""
    with service() as ops:
        reports = ops.learn.experiments(playbook)
        if keep is not None:
            matching = [
                r
                for r in reports
                if (option is None or r["option"] == option)
                and (action is None or r["action"] == action)
            ]
            if len(matching) != 1:
                found = ", ".join(f"--option {r['option']} --action {r['action']}" for r in reports)
                raise typer.BadParameter(
                    f"say which experiment to end ({found or 'the playbook has none'})",
                    param_hint="--option/--action",
                )
            [chosen] = matching
            ended = ops.learn.end_experiment(
                playbook, option=chosen["option"], action=chosen["action"], keep=keep, actor=who()
            )
            reports = [ended if r is chosen else r for r in reports]
    if as_json:
        rendering.print_json(reports)
        return
    if not reports:
        console.print(f"Playbook {escape(playbook)} has no action with `variants:`.")
        return
    for report in reports:
        table = Table(
            title=f"{report['kind']} {report['action']} of option {report['option']}",
            title_justify="left",
        )
        for column in ("variant", "sends", "outcomes", "successes", "rate", "95% interval"):
            table.add_column(column, justify="left" if column == "variant" else "right")
        table.add_column("P(best)", justify="right")
        for v in report["variants"]:
            table.add_row(
                escape(v["name"]),
                str(v["sends"]),
                str(v["resolved"]),
                str(v["successes"]),
                "—" if v["rate"] is None else f"{v['rate']:.1%}",
                f"{v['low']:.1%}–{v['high']:.1%}",
                f"{v['probability_best']:.2f}",
            )
        console.print(table)
        console.print(
            f"Expected loss of stopping now: {report['expected_loss']:.3%} "
            f"(threshold {report['threshold']:.3%})."
        )
        console.print(escape(report["verdict"]))
