"""`opsloop demo` and `opsloop flywheel`: the sample business, live or simulated week by week.

The simulated business lives in opsloop/demo/, beside the application rather than under the
service: these two commands are the allowed exception that imports it, inside the function
that launches it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opsloop.cli.common import console, fail, settings
from opsloop.core.errors import OpsLoopError

commands = typer.Typer()


@commands.command()
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
    from opsloop.demo.run import run_demo  # the allowed exception: see the module's docstring

    run_demo(
        settings(port=port),
        days=days,
        seed=seed,
        events_per_minute=events_per_minute,
        console=console,
    )


@commands.command()
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
    # The allowed exception: see the module's docstring.
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
        fail(exc)
