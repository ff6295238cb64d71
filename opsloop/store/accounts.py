"""Accounts: users, browser sessions, API tokens, failed sign-ins and per-installation values.

Secrets never reach these tables in the clear: passwords are Argon2 hashes, and sessions and
API tokens are stored as the SHA-256 of the random value the client holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from opsloop.store.schema import api_tokens, instance_values, login_failures, sessions, users

# --- users -----------------------------------------------------------------------------------


def create_user(
    conn: Connection,
    *,
    email: str,
    role: str,
    password_hash: str,
    created_by: str,
    now: datetime,
) -> int:
    new_id: int = conn.execute(
        insert(users).returning(users.c.id),
        {
            "email": email,
            "role": role,
            "password_hash": password_hash,
            "created_at": now,
            "created_by": created_by,
        },
    ).scalar_one()
    return new_id


def get_user(conn: Connection, user_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return dict(row._mapping) if row else None


def get_user_by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.email == email)).first()
    return dict(row._mapping) if row else None


def list_users(conn: Connection) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(select(users).order_by(users.c.id))]


def count_users(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def count_active_owners(conn: Connection) -> int:
    query = (
        select(func.count())
        .select_from(users)
        .where(users.c.role == "owner", users.c.disabled_at.is_(None))
    )
    return int(conn.execute(query).scalar_one())


def set_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


def disable_user(conn: Connection, user_id: int, now: datetime) -> None:
    conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.disabled_at.is_(None))
        .values(disabled_at=now)
    )


def record_login(conn: Connection, user_id: int, now: datetime) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(last_login_at=now))


# --- sessions --------------------------------------------------------------------------------


def create_session(
    conn: Connection,
    *,
    key_hash: str,
    user_id: int,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
    ip: str | None,
    user_agent: str | None,
) -> None:
    conn.execute(
        insert(sessions),
        {
            "id": key_hash,
            "user_id": user_id,
            "csrf_token": csrf_token,
            "created_at": now,
            "expires_at": expires_at,
            "ip": ip,
            "user_agent": user_agent[:300] if user_agent else None,
        },
    )


def find_live_session(conn: Connection, key_hash: str, now: datetime) -> dict[str, Any] | None:
    """The session with its user, if it has not expired and the user is not disabled."""
    query = (
        select(
            sessions.c.id,
            sessions.c.csrf_token,
            sessions.c.expires_at,
            users.c.id.label("user_id"),
            users.c.email,
            users.c.role,
        )
        .join(users, users.c.id == sessions.c.user_id)
        .where(
            sessions.c.id == key_hash,
            sessions.c.expires_at > now,
            users.c.disabled_at.is_(None),
        )
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def delete_session(conn: Connection, key_hash: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.id == key_hash))


def delete_user_sessions(conn: Connection, user_id: int) -> int:
    return conn.execute(delete(sessions).where(sessions.c.user_id == user_id)).rowcount


def delete_expired_sessions(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(sessions).where(sessions.c.expires_at <= now)).rowcount


# --- API tokens ------------------------------------------------------------------------------


def create_token(
    conn: Connection,
    *,
    name: str,
    scope: str,
    token_hash: str,
    prefix: str,
    created_by: str,
    now: datetime,
) -> int:
    new_id: int = conn.execute(
        insert(api_tokens).returning(api_tokens.c.id),
        {
            "name": name,
            "scope": scope,
            "token_hash": token_hash,
            "prefix": prefix,
            "created_at": now,
            "created_by": created_by,
        },
    ).scalar_one()
    return new_id


_TOKEN_COLUMNS = [c for c in api_tokens.c if c.name != "token_hash"]


def get_token(conn: Connection, token_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(*_TOKEN_COLUMNS).where(api_tokens.c.id == token_id)).first()
    return dict(row._mapping) if row else None


def find_active_token(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    query = select(*_TOKEN_COLUMNS).where(
        api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None)
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def list_tokens(conn: Connection) -> list[dict[str, Any]]:
    query = select(*_TOKEN_COLUMNS).order_by(api_tokens.c.id)
    return [dict(row._mapping) for row in conn.execute(query)]


def revoke_token(conn: Connection, token_id: int, *, by: str, now: datetime) -> bool:
    """Revoke an active token; False when it was already revoked."""
    done = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by)
    )
    return done.rowcount == 1


def touch_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


# --- failed sign-ins -------------------------------------------------------------------------


def record_login_failure(conn: Connection, *, email: str, ip: str, now: datetime) -> None:
    conn.execute(insert(login_failures), {"email": email, "ip": ip, "at": now})


def recent_login_failures(
    conn: Connection, *, email: str, ip: str, since: datetime
) -> tuple[int, datetime | None]:
    """How many sign-ins failed for this email from this address since `since`, and when the
    oldest of them was."""
    query = select(func.count(), func.min(login_failures.c.at)).where(
        login_failures.c.email == email,
        login_failures.c.ip == ip,
        login_failures.c.at > since,
    )
    count, oldest = conn.execute(query).one()
    return int(count), oldest


def clear_login_failures(conn: Connection, *, email: str, ip: str) -> None:
    conn.execute(
        delete(login_failures).where(login_failures.c.email == email, login_failures.c.ip == ip)
    )


def prune_login_failures(conn: Connection, before: datetime) -> None:
    conn.execute(delete(login_failures).where(login_failures.c.at <= before))


# --- per-installation values -----------------------------------------------------------------


def get_value(conn: Connection, name: str) -> str | None:
    found = conn.execute(
        select(instance_values.c.value).where(instance_values.c.name == name)
    ).scalar_one_or_none()
    return str(found) if found is not None else None


def insert_value(conn: Connection, name: str, value: str, now: datetime) -> None:
    """Raises IntegrityError when the name is taken (another process was first)."""
    conn.execute(insert(instance_values), {"name": name, "value": value, "created_at": now})
