"""`opsloop decisions`, `review`, `metrics`, `actions`, `retry` and `cancel`: what was decided
and why, a person's verdict on it, how the playbooks are doing, and the actions in the outbox."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.markup import escape

from opsloop.cli import rendering, reports
from opsloop.cli.common import AsJson, Limit, console, err, id_argument, service, who
from opsloop.core.durations import parse_duration

if TYPE_CHECKING:
    from opsloop.core.decisions import Verdict
    from opsloop.service import OpsLoop

commands = typer.Typer()


@commands.command()
def decisions(
    decision_id: Annotated[int | None, id_argument("Show this decision in full.")] = None,
    status: Annotated[
        str | None,
        typer.Option(
            help="pending, approved, overridden, rejected, auto, logged or error; to_review "
            "lists pending decisions and sampled auto ones nobody has reviewed yet."
        ),
    ] = None,
    playbook: Annotated[str | None, typer.Option(help="Only this playbook.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject, e.g. lead:42.")] = None,
    limit: Limit = 20,
    as_json: AsJson = False,
) -> None:
    """List decisions, or show one with its full explanation."""
    with service() as ops:
        if decision_id is not None:
            detail = ops.decide.decision_detail(decision_id)
            if as_json:
                rendering.print_json(detail)
            else:
                rendering.show_decision(detail)
            return
        rows = ops.decide.list_decisions(
            status=status, playbook=playbook, subject=subject, limit=limit
        )
    if as_json:
        rendering.print_json(rows)
        return
    rendering.show_decisions(rows)


@commands.command()
def review(
    decision_id: Annotated[int, id_argument("The decision to review.")],
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
        str | None,
        typer.Option(
            help="Your account's email (required once OpsLoop has accounts; without any, "
            "default: your login).",
            envvar="OPSLOOP_REVIEWER",
        ),
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
    from opsloop.core.decisions import ReviewRequest

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
    verdict = cast("Verdict", chosen[0])
    draft = None
    if draft_file is not None:
        draft = sys.stdin.read() if str(draft_file) == "-" else draft_file.read_text()
    with service() as ops:
        request = ReviewRequest(
            verdict=verdict,
            reviewer=_reviewer(ops, reviewer),
            option=override,
            reason=reason,
            draft=draft,
        )
        decision = ops.review.verdict(decision_id, request)
    final = decision.final_choice or "nothing"
    console.print(
        f"Decision {decision.id} {decision.status}: runs {final}. A running server or worker delivers its actions."
    )


def _reviewer(ops: OpsLoop, given: str | None) -> str:
    """Who reviews: with accounts, one of them (a review counts toward that person's agreement,
    so a Unix login such as `root` is not taken); without any, the name given or the login."""
    people = {u["email"] for u in ops.accounts.list_users() if u["status"] == "active"}
    if not people:
        return given or who()
    if given is None:
        err.print(
            "[red]Say who reviews: --reviewer you@example.com, the email of your OpsLoop "
            "account (OPSLOOP_REVIEWER sets it for every command).[/red]"
        )
        raise typer.Exit(2)
    if given.strip().lower() not in people:
        err.print(
            f"[red]{escape(given)} has no active OpsLoop account; --reviewer takes the email of "
            "one (`opsloop user list` shows them).[/red]"
        )
        raise typer.Exit(2)
    return given.strip().lower()


@commands.command()
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
    as_json: AsJson = False,
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
        report = ops.learn.metrics_report(
            since=window,
            playbook=playbook,
            by="week" if by else None,
            baseline=period,
            csat_event=csat_event,
            csat_field=csat_field,
        )
    if as_json:
        rendering.print_json(report)
        return
    reports.show_metrics(report)


@commands.command()
def actions(
    status: Annotated[
        str | None,
        typer.Option(help="pending, delivering, retrying, delivered, dead or cancelled."),
    ] = None,
    limit: Limit = 20,
) -> None:
    """The outbox: actions and their delivery status."""
    with service() as ops:
        rows = ops.deliver.list_actions(status=status, limit=limit)
    rendering.show_actions(rows)


@commands.command()
def retry(action_id: Annotated[int, id_argument("A dead-lettered action.")]) -> None:
    """Give a dead-lettered action one more delivery attempt."""
    with service() as ops:
        ops.deliver.retry_action(action_id, actor=who())
    console.print(f"Action {action_id} queued for one more attempt.")


@commands.command()
def cancel(action_id: Annotated[int, id_argument("A pending or retrying action.")]) -> None:
    """Stop an action that has not been delivered yet, for good (pending or retrying only)."""
    with service() as ops:
        action = ops.deliver.cancel_action(action_id, actor=who())
    console.print(f"Action {action_id} ({action['kind']}) cancelled: it will not be delivered.")
