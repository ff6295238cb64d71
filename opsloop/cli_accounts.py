"""`opsloop user ...` and `opsloop token ...`: accounts and API tokens from the command line.

Whoever can run these commands can read the database, so they need no account of their own:
this is how the first owner is made on a server without a browser, and how an owner who lost
their password gets back in. Registered in opsloop/cli.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from opsloop.core.access import ROLE_SUMMARY, ROLES, SCOPES
from opsloop.core.ids import FIRST_ID, LAST_ID

if TYPE_CHECKING:
    from opsloop.service import OpsLoop

user_app = typer.Typer(
    help="People who sign in to the web app: create, list, disable, set a password.",
    no_args_is_help=True,
)
token_app = typer.Typer(
    help="API tokens for scripts and other tools: create, list, revoke.", no_args_is_help=True
)

console = Console()
err = Console(stderr=True)


@contextmanager
def _service() -> Iterator[OpsLoop]:
    from opsloop.cli import service  # the CLI's settings and error handling

    with service() as ops:
        yield ops


def _actor() -> str:
    from opsloop.cli import _who

    return f"cli:{_who()}"


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


# --- people ----------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The person's email; they sign in with it.")],
    role: Annotated[
        str,
        typer.Option(help="owner (everything), reviewer (reviews decisions) or viewer (reads)."),
    ],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from standard input instead of asking."
        ),
    ] = False,
) -> None:
    """Create an account. The password is asked for (twice), or read from standard input."""
    if role not in ROLES:
        err.print(f"[red]--role must be one of {', '.join(ROLES)}[/red]")
        raise typer.Exit(2)
    password = _password(password_stdin)
    with _service() as ops:
        user = ops.accounts.create_user(email, password, role, actor=_actor())
    summary = ROLE_SUMMARY[role]
    console.print(f"Created {escape(user['email'])} ({role}: {summary}).")


@user_app.command("list")
def user_list() -> None:
    """Everyone with an account: role, status, when they last signed in."""
    with _service() as ops:
        rows = ops.accounts.list_users()
    if not rows:
        console.print("No accounts yet: `opsloop user create EMAIL --role owner`.")
        return
    table = Table("email", "role", "status", "created", "last sign-in")
    for row in rows:
        table.add_row(
            escape(row["email"]),
            row["role"],
            row["status"],
            _when(row["created_at"]),
            _when(row["last_login_at"]),
        )
    console.print(table)


@user_app.command("disable")
def user_disable(email: Annotated[str, typer.Argument(help="The account to disable.")]) -> None:
    """Disable an account: it can no longer sign in, and its open sessions end at once."""
    with _service() as ops:
        ops.accounts.disable_user(email, actor=_actor())
    console.print(f"Disabled {escape(email.strip().lower())}; their sessions have ended.")


@user_app.command("password")
def user_password(
    email: Annotated[str, typer.Argument(help="The account.")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from standard input instead of asking."
        ),
    ] = False,
) -> None:
    """Set a new password for an account (ends its sessions)."""
    password = _password(password_stdin)
    with _service() as ops:
        ops.accounts.set_password(email, password, actor=_actor())
    console.print(f"New password set for {escape(email.strip().lower())}.")


# --- API tokens ------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. zapier or backups.")],
    scope: Annotated[
        str,
        typer.Option(help="read (read only), review (also review and send events) or admin."),
    ],
) -> None:
    """Create an API token and print it. It is shown this once; only its hash is kept."""
    if scope not in SCOPES:
        err.print(f"[red]--scope must be one of {', '.join(SCOPES)}[/red]")
        raise typer.Exit(2)
    with _service() as ops:
        made = ops.accounts.create_token(name, scope, actor=_actor())
    err.print(
        f"API token {made.row['id']} ({escape(made.row['name'])}, scope {scope}). Copy it now: "
        "it is not shown again. Send it as `Authorization: Bearer <token>`."
    )
    # The token alone on standard output, so `TOKEN=$(opsloop token create ...)` works.
    console.print(made.token, soft_wrap=True, highlight=False)


@token_app.command("list")
def token_list() -> None:
    """API tokens with their scope and last use (never the tokens themselves)."""
    with _service() as ops:
        rows = ops.accounts.list_tokens()
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
            f"{_when(row['created_at'])} by {escape(row['created_by'])}",
            _when(row["last_used_at"]),
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[
        int, typer.Argument(help="The token's id (token list).", min=FIRST_ID, max=LAST_ID)
    ],
) -> None:
    """Revoke an API token: requests that send it are refused from now on."""
    with _service() as ops:
        row = ops.accounts.revoke_token(token_id, actor=_actor())
    console.print(f"Revoked API token {token_id} ({escape(row['name'])}).")


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if isinstance(value, datetime) else "—"
