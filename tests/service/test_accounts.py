"""Accounts on SQLite and PostgreSQL: passwords kept as Argon2 hashes, sign-in limits that hold
across processes, sessions that end when they should, tokens stored hashed and revocable, and a
signing key every process shares."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from opsloop.core.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthorized
from opsloop.service.accounts import TOKEN_CACHE_SECONDS
from opsloop.store.schema import api_tokens, audit, sessions, users
from tests.conftest import Clock, OpsFactory

SECRET = "a-test-secret-key-that-is-long-enough-0123456789"


def test_a_password_is_kept_as_an_argon2_hash(make_ops: OpsFactory, database_url: str) -> None:
    ops = make_ops(database_url)
    user = ops.accounts.create_user("Ana@Example.com ", "correct horse", "owner", actor="cli")

    assert (user["email"], user["role"], user["status"]) == ("ana@example.com", "owner", "active")
    assert "password_hash" not in user
    with ops.db.read() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored

    signed = ops.accounts.sign_in("ANA@example.com", "correct horse", ip="10.0.0.1")
    assert (signed.principal.name, signed.principal.role) == ("ana@example.com", "owner")
    assert signed.principal.permission == "admin"
    with pytest.raises(Unauthorized, match="wrong email or password"):
        ops.accounts.sign_in("ana@example.com", "Correct horse", ip="10.0.0.1")
    with pytest.raises(Unauthorized, match="wrong email or password"):
        ops.accounts.sign_in("bo@example.com", "correct horse", ip="10.0.0.1")


def test_accounts_refuse_bad_input_and_duplicates(make_ops: OpsFactory, database_url: str) -> None:
    ops = make_ops(database_url)
    ops.accounts.create_user("ana@example.com", "long enough", "viewer", actor="cli")

    with pytest.raises(Conflict, match=r"ana@example\.com already has an account"):
        ops.accounts.create_user("ANA@example.com", "another one", "owner", actor="cli")
    with pytest.raises(InvalidInput) as short:
        ops.accounts.create_user("bo@example.com", "short", "viewer", actor="cli")
    assert short.value.errors[0].field == "password"
    with pytest.raises(InvalidInput) as role:
        ops.accounts.create_user("bo@example.com", "long enough", "admin", actor="cli")
    assert str(role.value) == "role: must be one of viewer, reviewer, owner"
    with pytest.raises(InvalidInput, match="is not an email address"):
        ops.accounts.create_user("bo at example", "long enough", "viewer", actor="cli")


def test_five_failed_sign_ins_lock_that_email_from_that_address_in_every_process(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    first = make_ops(database_url)
    first.accounts.create_user("ana@example.com", "correct horse", "reviewer", actor="cli")
    # A second service on the same database stands for another worker process.
    second = make_ops(database_url)

    for attempt in range(5):
        service = (first, second)[attempt % 2]
        with pytest.raises(Unauthorized):
            service.accounts.sign_in("ana@example.com", f"guess {attempt}", ip="203.0.113.9")
        clock.advance(seconds=60)

    for service in (first, second):
        with pytest.raises(RateLimited) as limited:
            service.accounts.sign_in("ana@example.com", "correct horse", ip="203.0.113.9")
        # The oldest failure (5 minutes ago) leaves the 15-minute window in 10 minutes.
        assert limited.value.retry_after == 600
    # Another address is not locked out, nor is another email from the same address.
    second.accounts.sign_in("ana@example.com", "correct horse", ip="198.51.100.4")
    with pytest.raises(Unauthorized):
        second.accounts.sign_in("bo@example.com", "nope", ip="203.0.113.9")

    clock.advance(seconds=601)
    signed = first.accounts.sign_in("ana@example.com", "correct horse", ip="203.0.113.9")
    assert signed.principal.name == "ana@example.com"


def test_a_success_clears_the_count_of_failures(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url)
    ops.accounts.create_user("ana@example.com", "correct horse", "viewer", actor="cli")
    for _ in range(4):
        with pytest.raises(Unauthorized):
            ops.accounts.sign_in("ana@example.com", "wrong", ip="10.0.0.1")
    ops.accounts.sign_in("ana@example.com", "correct horse", ip="10.0.0.1")
    for _ in range(4):
        with pytest.raises(Unauthorized):
            ops.accounts.sign_in("ana@example.com", "wrong", ip="10.0.0.1")
    ops.accounts.sign_in("ana@example.com", "correct horse", ip="10.0.0.1")


def test_sessions_end_on_sign_out_disable_and_password_change(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    accounts = ops.accounts
    accounts.create_user("owner@example.com", "owner password", "owner", actor="cli")
    accounts.create_user("ana@example.com", "correct horse", "reviewer", actor="cli")

    one = accounts.sign_in("ana@example.com", "correct horse", ip="10.0.0.1").cookie
    two = accounts.sign_in("ana@example.com", "correct horse", ip="10.0.0.2").cookie
    found = accounts.session_principal(one)
    assert found is not None
    assert (found.kind, found.name, found.permission) == ("user", "ana@example.com", "review")
    other = accounts.session_principal(two)
    assert other is not None
    assert found.csrf_token
    assert found.csrf_token != other.csrf_token

    accounts.sign_out(one)
    assert accounts.session_principal(one) is None
    assert accounts.session_principal(two) is not None

    accounts.set_password("ana@example.com", "a new password", actor="owner@example.com")
    assert accounts.session_principal(two) is None
    three = accounts.sign_in("ana@example.com", "a new password", ip="10.0.0.1").cookie
    assert accounts.session_principal(three) is not None

    disabled = accounts.disable_user("ana@example.com", actor="owner@example.com")
    assert disabled["status"] == "disabled"
    assert accounts.session_principal(three) is None
    with pytest.raises(Unauthorized, match="disabled"):
        accounts.sign_in("ana@example.com", "a new password", ip="10.0.0.1")
    with ops.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one() == 0


def test_a_forged_or_foreign_cookie_is_nobody(make_ops: OpsFactory, database_url: str) -> None:
    ops = make_ops(database_url)
    ops.accounts.create_user("ana@example.com", "correct horse", "viewer", actor="cli")
    cookie = ops.accounts.sign_in("ana@example.com", "correct horse", ip="10.0.0.1").cookie

    assert ops.accounts.session_principal(cookie[:-2] + "xx") is None
    assert ops.accounts.session_principal("not a cookie") is None
    other = make_ops(f"sqlite:///{ops.settings.data_dir / 'other.db'}")
    assert other.accounts.session_principal(cookie) is None


def test_every_process_signs_with_the_same_stored_key_unless_one_is_configured(
    make_ops: OpsFactory, database_url: str
) -> None:
    first = make_ops(database_url)
    first.accounts.create_user("ana@example.com", "correct horse", "viewer", actor="cli")
    cookie = first.accounts.sign_in("ana@example.com", "correct horse", ip="10.0.0.1").cookie

    restarted = make_ops(database_url)
    assert restarted.accounts.secret_key() == first.accounts.secret_key()
    assert restarted.accounts.session_principal(cookie) is not None

    configured = make_ops(database_url, secret_key=SECRET)
    assert configured.accounts.secret_key() == SECRET
    assert configured.accounts.session_principal(cookie) is None  # signed with another key


def test_the_last_active_owner_cannot_be_disabled(make_ops: OpsFactory, database_url: str) -> None:
    ops = make_ops(database_url)
    ops.accounts.create_user("owner@example.com", "owner password", "owner", actor="cli")
    with pytest.raises(Conflict, match="only active owner"):
        ops.accounts.disable_user("owner@example.com", actor="cli")
    ops.accounts.create_user("second@example.com", "owner password", "owner", actor="cli")
    ops.accounts.disable_user("owner@example.com", actor="cli")
    with pytest.raises(Conflict, match="only active owner"):
        ops.accounts.disable_user("second@example.com", actor="cli")
    with pytest.raises(NotFound):
        ops.accounts.disable_user("nobody@example.com", actor="cli")


def test_the_first_owner_is_made_once(make_ops: OpsFactory, database_url: str) -> None:
    ops = make_ops(database_url)
    assert ops.accounts.needs_setup() is True
    owner = ops.accounts.create_first_owner("ana@example.com", "correct horse")
    assert (owner["role"], owner["created_by"]) == ("owner", "setup")
    assert ops.accounts.needs_setup() is False
    with pytest.raises(Conflict, match="already set up"):
        ops.accounts.create_first_owner("mallory@example.com", "correct horse")
    assert [u["email"] for u in ops.accounts.list_users()] == ["ana@example.com"]


def test_api_tokens_are_stored_hashed_scoped_revocable_and_record_their_use(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url)
    made = ops.accounts.create_token("shop sync", "review", actor="ana@example.com")
    assert made.token.startswith("olt_")
    assert len(made.token) > 40
    assert (made.row["name"], made.row["scope"], made.row["status"]) == (
        "shop sync",
        "review",
        "active",
    )
    assert made.row["prefix"] == made.token[:12]
    assert made.row["last_used_at"] is None
    with ops.db.read() as conn:
        [stored] = conn.execute(sa.select(api_tokens)).all()
    assert made.token not in stored._mapping.values()
    assert "token_hash" not in ops.accounts.list_tokens()[0]

    principal = ops.accounts.token_principal(made.token)
    assert principal is not None
    assert (principal.kind, principal.actor, principal.permission) == (
        "token",
        "token:shop sync",
        "review",
    )
    assert ops.accounts.list_tokens()[0]["last_used_at"] == clock.now
    assert ops.accounts.token_principal(made.token[:-1] + "x") is None
    assert ops.accounts.token_principal("Bearer nonsense") is None

    revoked = ops.accounts.revoke_token(made.row["id"], actor="ana@example.com")
    assert (revoked["status"], revoked["revoked_by"]) == ("revoked", "ana@example.com")
    assert ops.accounts.token_principal(made.token) is None
    with pytest.raises(Conflict):
        ops.accounts.revoke_token(made.row["id"], actor="ana@example.com")
    with pytest.raises(InvalidInput, match="scope: must be one of read, review, admin"):
        ops.accounts.create_token("x", "write", actor="ana@example.com")

    with ops.db.read() as conn:
        verbs = conn.execute(sa.select(audit.c.verb).where(audit.c.object_type == "token")).all()
    assert [v for (v,) in verbs] == ["token.created", "token.revoked"]


def test_a_token_writes_its_last_use_at_most_once_a_minute(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url)
    made = ops.accounts.create_token("ci", "read", actor="cli")
    first_use = clock.now
    ops.accounts.token_principal(made.token)
    clock.advance(seconds=30)
    ops.accounts.token_principal(made.token)
    assert ops.accounts.list_tokens()[0]["last_used_at"] == first_use
    clock.advance(seconds=31)
    ops.accounts.token_principal(made.token)
    assert ops.accounts.list_tokens()[0]["last_used_at"] == clock.now


def test_a_token_revoked_by_another_process_stops_within_seconds(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    server = make_ops(database_url)
    cli = make_ops(database_url)
    made = server.accounts.create_token("ci", "admin", actor="cli")
    assert server.accounts.token_principal(made.token) is not None

    cli.accounts.revoke_token(made.row["id"], actor="cli")
    assert cli.accounts.token_principal(made.token) is None
    # The server trusts what it checked a moment ago for a little longer…
    clock.advance(seconds=1)
    assert server.accounts.token_principal(made.token) is not None
    # …and no more than TOKEN_CACHE_SECONDS.
    clock.advance(seconds=TOKEN_CACHE_SECONDS)
    assert server.accounts.token_principal(made.token) is None
