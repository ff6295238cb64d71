"""`opsloop forecasts`: a restock playbook's demand forecasts per product and overall, with how
the forecast and the reorder policy did over the last weeks."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from opsloop.cli import rendering
from opsloop.cli.common import AsJson, console, service

commands = typer.Typer()


def _n(value: object) -> str:
    return "—" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


@commands.command()
def forecasts(
    playbook: Annotated[
        str, typer.Argument(help="A playbook with a `forecast` feature, such as restock.")
    ],
    weeks: Annotated[
        int, typer.Option(min=1, max=26, help="Weeks of sales to backtest the forecast on.")
    ] = 8,
    top: Annotated[int, typer.Option(min=1, help="Products to list (the most urgent first).")] = 20,
    as_json: AsJson = False,
) -> None:
    """Each product's weekly forecast, stock, days of cover and reorder point (out of stock
    first), and a backtest of the last weeks: the forecast against last week repeated, the
    reorder policy against a fixed min/max rule."""
    with service() as ops:
        report = ops.learn.forecast_report(playbook, weeks=weeks)
    if as_json:
        rendering.print_json(report)
        return
    o = report["overall"]
    if not o["products"]:
        console.print(f"{escape(playbook)}: no product has sales to forecast yet.")
        return
    console.print(
        f"{o['products']} products, about {o['weekly_units']:,.0f} units a week; "
        f"{o['out_of_stock']} out of stock, {o['to_reorder']} at or below the reorder point."
    )
    if o["backtested"]:
        accuracy = ""
        if o["improvement"] is not None and o["mase"] is not None and o["naive_mase"] is not None:
            better = "lower" if o["improvement"] >= 0 else "higher"
            accuracy = (
                f"forecast error {abs(o['improvement']):.0%} {better} than last week repeated "
                f"(MASE {o['mase']:.2f} against {o['naive_mase']:.2f}, {o['backtested']} "
                "products); "
            )
        console.print(
            f"Last {report['backtest_weeks']} weeks, refitted weekly: {accuracy}stock-out weeks "
            f"{o['stockout_weeks']} with the policy, {o['fixed_stockout_weeks']} with a fixed "
            f"3-and-6-week rule (average stock {o['average_stock']:,.0f} against "
            f"{o['fixed_average_stock']:,.0f})."
        )
    table = Table(title_justify="left")
    for column in ("product", "status", "a week", "stock", "cover (days)", "reorder at", "order"):
        table.add_column(column, justify="left" if column in ("product", "status") else "right")
    for p in report["products"][:top]:
        order = f"{p['quantity']} by {p['order_by']}" if p["quantity"] else "—"
        table.add_row(
            escape(p["subject"]),
            p["status"],
            _n(p["weekly"]),
            _n(p["stock"]),
            _n(p["days_of_cover"]),
            _n(p["reorder_point"]),
            order,
        )
    console.print(table)
    if len(report["products"]) > top:
        console.print(f"… and {len(report['products']) - top} more (--top N, or --json).")
