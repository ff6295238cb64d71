"""`opsloop user ...` and `opsloop token ...`: accounts and API tokens from the command line.

Whoever can run these commands can read the database, so they need no account of their own:
this is how the first owner is made on a server without a browser, and how an owner who lost
their password gets back in.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from opsloop.cli import rendering
from opsloop.cli.common import actor, console, err, id_argument, service
from opsloop.core.access import ROLE_SUMMARY, ROLES, SCOPES

user_app = typer.Typer(
    help="People who sign in to the web app: create, list, disable, set a password.",
    no_args_is_help=True,
)
token_app = typer.Typer(
    help="API tokens for scripts and other tools: create, list, revoke.", no_args_is_help=True
)

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from standard input instead of asking."
    ),
]


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
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account. The password is asked for (twice), or read from standard input."""
    if role not in ROLES:
        err.print(f"[red]--role must be one of {', '.join(ROLES)}[/red]")
        raise typer.Exit(2)
    password = _password(password_stdin)
    with service() as ops:
        user = ops.accounts.create_user(email, password, role, actor=actor())
    summary = ROLE_SUMMARY[role]
    console.print(f"Created {escape(user['email'])} ({role}: {summary}).")


@user_app.command("list")
def user_list() -> None:
    """Everyone with an account: role, status, when they last signed in."""
    with service() as ops:
        rows = ops.accounts.list_users()
    rendering.show_users(rows)


@user_app.command("disable")
def user_disable(email: Annotated[str, typer.Argument(help="The account to disable.")]) -> None:
    """Disable an account: it can no longer sign in, and its open sessions end at once."""
    with service() as ops:
        ops.accounts.disable_user(email, actor=actor())
    console.print(f"Disabled {escape(email.strip().lower())}; their sessions have ended.")


@user_app.command("password")
def user_password(
    email: Annotated[str, typer.Argument(help="The account.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password for an account (ends its sessions)."""
    password = _password(password_stdin)
    with service() as ops:
        ops.accounts.set_password(email, password, actor=actor())
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
    with service() as ops:
        made = ops.accounts.create_token(name, scope, actor=actor())
    err.print(
        f"API token {made.row['id']} ({escape(made.row['name'])}, scope {scope}). Copy it now: "
        "it is not shown again. Send it as `Authorization: Bearer <token>`."
    )
    # The token alone on standard output, so `TOKEN=$(opsloop token create ...)` works.
    console.print(made.token, soft_wrap=True, highlight=False)


@token_app.command("list")
def token_list() -> None:
    """API tokens with their scope and last use (never the tokens themselves)."""
    with service() as ops:
        rows = ops.accounts.list_tokens()
    rendering.show_tokens(rows)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, id_argument("The token's id (token list).")],
) -> None:
    """Revoke an API token: requests that send it are refused from now on."""
    with service() as ops:
        row = ops.accounts.revoke_token(token_id, actor=actor())
    console.print(f"Revoked API token {token_id} ({escape(row['name'])}).")
