"""`opsloop llm ...`: check the configured language model, and try it on a text."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from opsloop.cli import reports
from opsloop.cli.common import AsJson, console, err, service

llm_app = typer.Typer(
    help="Check and try the language model (OPSLOOP_LLM__URL, OPSLOOP_LLM__MODEL; see docs/llm.md).",
    no_args_is_help=True,
)


@llm_app.command("test")
def llm_test() -> None:
    """Send one tiny request to the configured model; print its name and latency, or what is wrong."""
    with service() as ops:
        check = ops.decide.check_llm()
    if not check.ok:
        err.print(f"[red]Language model check failed:[/red] {escape(check.error or '')}")
        raise typer.Exit(1)
    console.print(
        f"[green]OK[/green] {escape(check.served_model or '')} at {escape(check.url or '')} "
        f"answered in {check.latency_ms or 0:.0f} ms"
    )


@llm_app.command("classify")
def llm_classify(
    text: Annotated[str, typer.Argument(help="The text to classify.")],
    label: Annotated[
        list[str],
        typer.Option(
            "--label", "-l", help="An allowed label; give it once per label (two or more)."
        ),
    ],
    instructions: Annotated[
        str | None,
        typer.Option(help="Extra guidance for the model, e.g. what each label means."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Classify TEXT into one of the --label values, as a playbook would (cached, booked)."""
    with service() as ops:
        result = ops.decide.classify_text(
            text, label, instructions=instructions, needed_by="opsloop llm classify"
        )
    call = result.call
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "label": result.label,
                    "confidence": result.confidence,
                    "reason": result.reason,
                    "model": call.model,
                    "cached": call.cached,
                    "prompt_tokens": call.prompt_tokens,
                    "completion_tokens": call.completion_tokens,
                    "cost": call.cost,
                    "latency_ms": call.latency_ms,
                }
            )
        )
        return
    reports.show_classification(result)
