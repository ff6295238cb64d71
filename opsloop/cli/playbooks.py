"""`opsloop playbook ...`: check, apply and list playbooks, and move them between modes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from opsloop.cli import rendering
from opsloop.cli.common import (
    JustJson,
    console,
    err,
    fail,
    fail_problems,
    service,
    settings,
    who,
)
from opsloop.core.errors import InvalidInput, PlaybookInvalid

playbook_app = typer.Typer(
    help="Check, apply and list playbooks (YAML decision workflows).", no_args_is_help=True
)

PlaybookFile = Annotated[
    Path, typer.Argument(help="A playbook YAML file.", exists=True, dir_okay=False)
]
PlaybookName = Annotated[str, typer.Argument(help="The playbook's name.")]
Reason = Annotated[str | None, typer.Option(help="Why, for the audit trail.")]


@playbook_app.command("validate")
def playbook_validate(file: PlaybookFile) -> None:
    """Check a playbook; print each problem with its line, or OK."""
    from opsloop.core.yaml_source import read_text
    from opsloop.service import load_playbook  # no database: the file alone

    try:
        llm = settings().llm
        configured = bool(llm.url and llm.model)
        playbook, _ = load_playbook(read_text(file), str(file), llm_configured=configured)
    except PlaybookInvalid as exc:
        fail_problems(exc)
    except InvalidInput as exc:
        fail(exc)
    console.print(
        f"[green]OK[/green] {playbook.name}: {len(playbook.features)} features, "
        f"{len(playbook.scorecard)} scorecard lines, {len(playbook.rules)} rules, "
        f"options {', '.join(playbook.options)}; mode {playbook.mode}"
    )


@playbook_app.command("apply")
def playbook_apply(file: PlaybookFile) -> None:
    """Store a playbook; a new version when its content changed. Running servers pick it up."""
    with service() as ops:
        try:
            applied = ops.decide.apply_playbook_file(file, actor=who())
        except PlaybookInvalid as exc:
            fail_problems(exc)
    state = "now at" if applied.changed else "unchanged at"
    console.print(f"{applied.name}: {state} version {applied.version} (mode {applied.mode})")
    if applied.notice:
        console.print(f"[yellow]{escape(applied.notice)}[/yellow]")
    for warning in applied.warnings:
        console.print(f"[yellow]Warning: {escape(warning)}[/yellow]")


@playbook_app.command("list")
def playbook_list() -> None:
    """Active playbooks with their mode and version."""
    with service() as ops:
        rows = ops.decide.list_playbooks()
    rendering.show_playbooks(rows)


@playbook_app.command("templates")
def playbook_templates(json_out: JustJson = False) -> None:
    """The built-in playbooks to start from: what each does, what it needs that is not set up,
    and whether it is installed."""
    with service() as ops:
        rows = ops.decide.list_templates()
    if json_out:
        rendering.print_json(rows)
        return
    rendering.show_templates(rows)


@playbook_app.command("install-template")
def playbook_install_template(
    name: Annotated[
        str, typer.Argument(help="The template's name (`opsloop playbook templates`).")
    ],
) -> None:
    """Install a built-in playbook as a new playbook in recommend mode: every decision waits for
    a person. Refused when a playbook of that name exists."""
    with service() as ops:
        try:
            applied = ops.decide.install_template(name, actor=who())
        except PlaybookInvalid as exc:
            fail_problems(exc)
    console.print(f"{applied.name}: installed as version {applied.version} (mode {applied.mode})")
    for warning in applied.warnings:
        console.print(f"[yellow]Warning: {escape(warning)}[/yellow]")


@playbook_app.command("readiness")
def playbook_readiness(name: PlaybookName, json_out: JustJson = False) -> None:
    """Has the playbook earned `auto`? Agreement with reviewers over its recent reviewed
    decisions, judged on the Wilson 95% lower bound against its target."""
    with service() as ops:
        ready = ops.review.readiness(name)
    if json_out:
        console.print_json(data=ready)
        return
    rendering.show_readiness(name, ready)


@playbook_app.command("promote")
def playbook_promote(name: PlaybookName, reason: Reason = None) -> None:
    """Let the playbook act on its own (`auto`). Refused until `opsloop playbook readiness`
    says it is ready. Guarded actions (refunds, payments, discounts, deletions, anything
    marked sensitive) still wait for a person."""
    _set_mode(name, "auto", reason)


@playbook_app.command("demote")
def playbook_demote(
    name: PlaybookName,
    to: Annotated[
        str, typer.Option(help="recommend (a person approves) or shadow (log only).")
    ] = "recommend",
    reason: Reason = None,
) -> None:
    """Take `auto` away: decisions wait for a person again (or are only logged)."""
    if to not in ("recommend", "shadow"):
        err.print("[red]--to must be recommend or shadow[/red]")
        raise typer.Exit(2)
    _set_mode(name, to, reason)


def _set_mode(name: str, mode: str, reason: str | None) -> None:
    with service() as ops:
        changed = ops.review.change_mode(name, mode, actor=who(), reason=reason)
    if changed["changed"]:
        console.print(f"{name} is now in [bold]{mode}[/bold] mode.")
    else:
        console.print(f"{name} was already in {mode} mode.")
