"""`opsloop user ...` and `opsloop token ...` as an administrator uses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.errors import Unauthorized
from opsloop.service import OpsLoop
from opsloop.settings import Settings

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def service(data_dir: Path) -> OpsLoop:
    return OpsLoop(Settings(data_dir=data_dir))


def test_create_list_and_disable_people(data_dir: Path) -> None:
    asked = runner.invoke(
        app, ["user", "create", "Ana@Example.com", "--role", "owner"], input="a fine password\n" * 2
    )
    assert asked.exit_code == 0, asked.output
    assert "Created ana@example.com (owner" in asked.output
    piped = runner.invoke(
        app,
        ["user", "create", "bo@example.com", "--role", "reviewer", "--password-stdin"],
        input="another password\n",
    )
    assert piped.exit_code == 0, piped.output

    ops = service(data_dir)
    try:
        signed = ops.accounts.sign_in("bo@example.com", "another password", ip="127.0.0.1")
        assert signed.principal.role == "reviewer"
        ops.accounts.sign_in("ana@example.com", "a fine password", ip="127.0.0.1")
    finally:
        ops.close()

    listing = runner.invoke(app, ["user", "list"])
    assert listing.exit_code == 0
    assert "ana@example.com" in listing.output
    assert "reviewer" in listing.output

    assert runner.invoke(app, ["user", "disable", "bo@example.com"]).exit_code == 0
    assert "disabled" in runner.invoke(app, ["user", "list"]).output
    last_owner = runner.invoke(app, ["user", "disable", "ana@example.com"])
    assert last_owner.exit_code == 1
    assert "only active owner" in last_owner.output


def test_mistakes_are_reported_with_a_non_zero_exit(data_dir: Path) -> None:
    bad_role = runner.invoke(app, ["user", "create", "x@example.com", "--role", "boss"])
    assert bad_role.exit_code == 2
    assert "--role must be one of viewer, reviewer, owner" in bad_role.output
    short = runner.invoke(
        app,
        ["user", "create", "x@example.com", "--role", "viewer", "--password-stdin"],
        input="abc\n",
    )
    assert short.exit_code == 1
    assert "password: must be at least 8 characters" in short.output
    runner.invoke(
        app,
        ["user", "create", "x@example.com", "--role", "viewer", "--password-stdin"],
        input="long enough\n",
    )
    twice = runner.invoke(
        app,
        ["user", "create", "x@example.com", "--role", "viewer", "--password-stdin"],
        input="long enough\n",
    )
    assert twice.exit_code == 1
    assert "already has an account" in twice.output
    unknown = runner.invoke(app, ["user", "disable", "nobody@example.com"])
    assert (unknown.exit_code, "no account for nobody@example.com" in unknown.output) == (1, True)


def test_a_new_password_ends_the_old_one(data_dir: Path) -> None:
    runner.invoke(
        app,
        ["user", "create", "ana@example.com", "--role", "owner", "--password-stdin"],
        input="the old password\n",
    )
    changed = runner.invoke(
        app, ["user", "password", "ana@example.com", "--password-stdin"], input="the new password\n"
    )
    assert changed.exit_code == 0, changed.output
    ops = service(data_dir)
    try:
        ops.accounts.sign_in("ana@example.com", "the new password", ip="127.0.0.1")
        with pytest.raises(Unauthorized, match="wrong email or password"):
            ops.accounts.sign_in("ana@example.com", "the old password", ip="127.0.0.1")
    finally:
        ops.close()


def test_a_token_is_printed_once_works_and_can_be_revoked(data_dir: Path) -> None:
    made = runner.invoke(app, ["token", "create", "backups", "--scope", "read"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("olt_")
    assert "not shown again" in made.stderr

    ops = service(data_dir)
    try:
        principal = ops.accounts.token_principal(token)
        assert principal is not None
        assert (principal.name, principal.permission) == ("backups", "read")
    finally:
        ops.close()

    listing = runner.invoke(app, ["token", "list"])
    assert listing.exit_code == 0
    assert "backups" in listing.output
    assert token not in listing.output
    assert token[:12] in listing.output

    assert runner.invoke(app, ["token", "revoke", "1"]).exit_code == 0
    assert "revoked" in runner.invoke(app, ["token", "list"]).output
    again = runner.invoke(app, ["token", "revoke", "1"])
    assert (again.exit_code, "already revoked" in again.output) == (1, True)
    bad = runner.invoke(app, ["token", "create", "x", "--scope", "write"])
    assert bad.exit_code == 2

    ops = service(data_dir)
    try:
        assert ops.accounts.token_principal(token) is None
    finally:
        ops.close()
