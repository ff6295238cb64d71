"""Accounts: people with roles, their browser sessions, API tokens, and sign-in rate limits.

The HTTP edge (opsloop/web/auth.py) and the CLI (opsloop/cli/accounts.py) both come here:

- **People** sign in with an email and a password (hashed with Argon2id). Each has a role,
  `owner`, `reviewer` or `viewer` (opsloop/core/access.py says what each may do). A disabled
  person cannot sign in and their sessions end at once.
- **Sessions** are rows keyed by the SHA-256 of a random session key; the browser holds the key
  signed with the installation's secret key (itsdangerous), so a tampered or foreign cookie is
  refused before the database is asked. Each session has its own CSRF token.
- **API tokens** are random (`olt_` + 43 characters), shown once, stored as their SHA-256, with
  a scope (`read`, `review`, `admin`). A valid token is remembered by each process for
  `TOKEN_CACHE_SECONDS`, so checking it costs no database read on most requests: revoking it
  stops it at once in the process that revoked it and within those seconds in the others. The
  time a token was last used is written at most once a minute per token and process.
- **Failed sign-ins** are rows, counted per email and client address over a sliding window, so
  the limit holds across worker processes and restarts.
- **The secret key** is `OPSLOOP_SECRET_KEY`, or a random key generated on first use and kept in
  the database, so every process and restart shares it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from opsloop.core.access import (
    ROLE_PERMISSION,
    ROLES,
    SCOPES,
    Principal,
    Role,
    Scope,
)
from opsloop.core.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthorized
from opsloop.service.context import Context
from opsloop.store import accounts as store
from opsloop.store import audit

log = logging.getLogger(__name__)

MIN_PASSWORD = 8
MAX_PASSWORD = 1000
TOKEN_PREFIX = "olt_"
TOKEN_TOUCH_SECONDS = 60.0
"""`last_used_at` is written at most this often per token and process."""
TOKEN_CACHE_SECONDS = 2.0
"""How long a process trusts a token it has checked without asking the database again."""
SECRET_KEY = "secret_key"
OWNER_CREATED = "first_owner"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")

_hasher = PasswordHasher()  # Argon2id with the library's (RFC 9106) default cost


@dataclass(frozen=True, slots=True)
class SignedIn:
    cookie: str
    """The signed session key for the browser's cookie."""
    principal: Principal


@dataclass(frozen=True, slots=True)
class NewToken:
    token: str
    """The token itself: shown once, never stored."""
    row: dict[str, Any]


class Accounts:
    """The accounts use cases over one service context (`OpsLoop.accounts`)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._secret: str | None = None
        self._touched: dict[int, datetime] = {}
        self._tokens: dict[str, tuple[datetime, Principal]] = {}
        self._dummy_hash: str | None = None

    # --- people ------------------------------------------------------------------------------

    def needs_setup(self) -> bool:
        """True while nobody has an account: the first visitor of /setup creates the owner."""
        with self.ctx.db.read() as conn:
            return store.count_users(conn) == 0

    def create_user(self, email: str, password: str, role: str, *, actor: str) -> dict[str, Any]:
        email, role = _check_email(email), _check_role(role)
        password_hash = _hash_password(password)
        now = self.ctx.clock()
        try:
            with self.ctx.db.transaction() as tx:
                user_id = self._insert_user(tx.conn, email, role, password_hash, actor, now)
        except IntegrityError:
            raise Conflict(f"{email} already has an account") from None
        return self.get_user(user_id)

    def create_first_owner(self, email: str, password: str) -> dict[str, Any]:
        """The first-run set-up: an owner account, only while there is no account at all
        (two visitors racing for it: one wins, the other gets Conflict)."""
        email = _check_email(email)
        password_hash = _hash_password(password)
        now = self.ctx.clock()
        refused = Conflict("OpsLoop is already set up; sign in instead")
        try:
            with self.ctx.db.transaction() as tx:
                if store.count_users(tx.conn):
                    raise refused
                store.insert_value(tx.conn, OWNER_CREATED, email, now)
                user_id = self._insert_user(tx.conn, email, "owner", password_hash, "setup", now)
        except IntegrityError:
            raise refused from None
        return self.get_user(user_id)

    def get_user(self, user_id: int) -> dict[str, Any]:
        with self.ctx.db.read() as conn:
            row = store.get_user(conn, user_id)
        if row is None:
            raise NotFound(f"no user {user_id}")
        return _user_view(row)

    def list_users(self) -> list[dict[str, Any]]:
        with self.ctx.db.read() as conn:
            return [_user_view(row) for row in store.list_users(conn)]

    def disable_user(self, email: str, *, actor: str) -> dict[str, Any]:
        """Disable an account and end its sessions. The last active owner cannot be disabled:
        nobody could manage accounts any more."""
        email = email.strip().lower()
        now = self.ctx.clock()
        with self.ctx.db.transaction() as tx:
            user = store.get_user_by_email(tx.conn, email)
            if user is None:
                raise NotFound(f"no account for {email}")
            if user["disabled_at"] is None:
                if user["role"] == "owner" and store.count_active_owners(tx.conn) <= 1:
                    raise Conflict(f"{email} is the only active owner; create another owner first")
                store.disable_user(tx.conn, user["id"], now)
                ended = store.delete_user_sessions(tx.conn, user["id"])
                audit.record(
                    tx.conn,
                    now,
                    actor,
                    "user.disabled",
                    user["id"],
                    {"email": email, "sessions_ended": ended},
                )
        return self.get_user(user["id"])

    def set_password(self, email: str, password: str, *, actor: str) -> None:
        """Give an account a new password; its sessions end."""
        email = email.strip().lower()
        password_hash = _hash_password(password)
        now = self.ctx.clock()
        with self.ctx.db.transaction() as tx:
            user = store.get_user_by_email(tx.conn, email)
            if user is None:
                raise NotFound(f"no account for {email}")
            store.set_password_hash(tx.conn, user["id"], password_hash)
            store.delete_user_sessions(tx.conn, user["id"])
            audit.record(tx.conn, now, actor, "user.password_set", user["id"], {"email": email})

    def change_own_password(self, email: str, current: str, new: str) -> None:
        """A person changes their own password: the current one must be right, and every
        session of theirs ends (they sign in again with the new one)."""
        email = email.strip().lower()
        with self.ctx.db.read() as conn:
            user = store.get_user_by_email(conn, email)
        if user is None or not self._verify(user["password_hash"], current):
            raise InvalidInput.single("current", "that is not your current password")
        if new == current:
            raise InvalidInput.single("password", "choose a password other than the current one")
        self.set_password(email, new, actor=email)

    # --- sessions ----------------------------------------------------------------------------

    def sign_in(
        self, email: str, password: str, *, ip: str, user_agent: str | None = None
    ) -> SignedIn:
        """Check a password and open a session. Every attempt is counted before the password
        is checked, so parallel guesses cannot slip past the limit; a success clears the
        count. Raises RateLimited once the limit is reached, Unauthorized on a wrong email
        or password (the same message for both)."""
        email = email.strip().lower()
        settings = self.ctx.settings
        window = timedelta(seconds=settings.login_window_seconds)
        now = self.ctx.clock()
        with self.ctx.db.transaction() as tx:
            failed, oldest = store.recent_login_failures(
                tx.conn, email=email, ip=ip, since=now - window
            )
            if failed >= settings.login_max_failures:
                assert oldest is not None
                wait = max(1, math.ceil((oldest + window - now).total_seconds()))
                raise RateLimited(
                    f"too many failed sign-ins for {email}; try again in {_minutes(wait)}",
                    retry_after=wait,
                )
            store.record_login_failure(tx.conn, email=email, ip=ip, now=now)
            store.prune_login_failures(tx.conn, now - window)
            user = store.get_user_by_email(tx.conn, email)
        if not self._verify(user["password_hash"] if user else None, password):
            raise Unauthorized("wrong email or password")
        assert user is not None
        if user["disabled_at"] is not None:
            raise Unauthorized("this account is disabled; ask an owner")
        key = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self.ctx.db.transaction() as tx:
            store.clear_login_failures(tx.conn, email=email, ip=ip)
            store.delete_expired_sessions(tx.conn, now)
            store.create_session(
                tx.conn,
                key_hash=_sha256(key),
                user_id=user["id"],
                csrf_token=csrf,
                now=now,
                expires_at=now + timedelta(days=settings.session_days),
                ip=ip,
                user_agent=user_agent,
            )
            store.record_login(tx.conn, user["id"], now)
            if _hasher.check_needs_rehash(user["password_hash"]):
                store.set_password_hash(tx.conn, user["id"], _hasher.hash(password))
        principal = _user_principal(user["id"], email, user["role"], csrf)
        return SignedIn(self._session_signer().dumps(key), principal)

    def session_principal(self, cookie: str) -> Principal | None:
        """Who a session cookie belongs to; None when it is forged, expired, signed out, or
        its person is disabled."""
        key = self._unsign_session(cookie)
        if key is None:
            return None
        with self.ctx.db.read() as conn:
            found = store.find_live_session(conn, _sha256(key), self.ctx.clock())
        if found is None:
            return None
        return _user_principal(found["user_id"], found["email"], found["role"], found["csrf_token"])

    def sign_out(self, cookie: str) -> None:
        key = self._unsign_session(cookie)
        if key is not None:
            with self.ctx.db.transaction() as tx:
                store.delete_session(tx.conn, _sha256(key))

    @property
    def session_seconds(self) -> int:
        return self.ctx.settings.session_days * 86400

    def form_signer(self) -> URLSafeTimedSerializer:
        """Signs the CSRF value of forms shown before signing in (sign-in, first-run set-up)."""
        return URLSafeTimedSerializer(self.secret_key(), salt="opsloop.form")

    def _session_signer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret_key(), salt="opsloop.session")

    def _unsign_session(self, cookie: str) -> str | None:
        try:
            key = self._session_signer().loads(cookie, max_age=self.session_seconds)
        except BadSignature:
            return None
        return key if isinstance(key, str) else None

    # --- API tokens --------------------------------------------------------------------------

    def create_token(self, name: str, scope: str, *, actor: str) -> NewToken:
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise InvalidInput.single("name", "give the token a name of 1 to 100 characters")
        if scope not in SCOPES:
            raise InvalidInput.single("scope", f"must be one of {', '.join(SCOPES)}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.ctx.clock()
        with self.ctx.db.transaction() as tx:
            token_id = store.create_token(
                tx.conn,
                name=name,
                scope=scope,
                token_hash=_sha256(token),
                prefix=token[:12],
                created_by=actor,
                now=now,
            )
            audit.record(
                tx.conn, now, actor, "token.created", token_id, {"name": name, "scope": scope}
            )
            row = store.get_token(tx.conn, token_id)
        assert row is not None
        return NewToken(token, _token_view(row))

    def list_tokens(self) -> list[dict[str, Any]]:
        with self.ctx.db.read() as conn:
            return [_token_view(row) for row in store.list_tokens(conn)]

    def revoke_token(self, token_id: int, *, actor: str) -> dict[str, Any]:
        now = self.ctx.clock()
        with self.ctx.db.transaction() as tx:
            row = store.get_token(tx.conn, token_id)
            if row is None:
                raise NotFound(f"no API token {token_id}")
            if not store.revoke_token(tx.conn, token_id, by=actor, now=now):
                raise Conflict(f"API token {token_id} is already revoked")
            with self._lock:
                self._tokens = {k: v for k, v in self._tokens.items() if v[1].id != token_id}
            audit.record(tx.conn, now, actor, "token.revoked", token_id, {"name": row["name"]})
            row = store.get_token(tx.conn, token_id)
        assert row is not None
        return _token_view(row)

    def token_principal(self, token: str) -> Principal | None:
        """Who an API token acts for; None for an unknown or revoked token."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = _sha256(token)
        now = self.ctx.clock()
        principal = self._cached(digest, now)
        if principal is None:
            with self.ctx.db.read() as conn:
                row = store.find_active_token(conn, digest)
            if row is None:
                with self._lock:
                    self._tokens.pop(digest, None)
                return None
            scope: Scope = row["scope"]
            principal = Principal(
                kind="token", id=int(row["id"]), name=row["name"], permission=scope
            )
            with self._lock:
                self._tokens[digest] = (now + timedelta(seconds=TOKEN_CACHE_SECONDS), principal)
        with self._lock:  # one request writes the touch, not every one racing it
            touch = self._touch_due(principal.id, now)
            if touch:
                self._touched[principal.id] = now
        if touch:
            with self.ctx.db.transaction() as tx:
                store.touch_token(tx.conn, principal.id, now)
        return principal

    def cached_token_principal(self, token: str) -> Principal | None:
        """`token_principal` when the answer is in memory and nothing needs writing (no
        `last_used_at` touch due), else None: the caller then asks `token_principal`. An async
        request handler calls this first so the common case never switches threads."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        now = self.ctx.clock()
        principal = self._cached(_sha256(token), now)
        if principal is None or self._touch_due(principal.id, now):
            return None
        return principal

    def _cached(self, digest: str, now: datetime) -> Principal | None:
        cached = self._tokens.get(digest)
        return cached[1] if cached is not None and cached[0] > now else None

    def _touch_due(self, token_id: int, now: datetime) -> bool:
        """`last_used_at` is written at most every TOKEN_TOUCH_SECONDS per token."""
        last = self._touched.get(token_id)
        return last is None or (now - last).total_seconds() >= TOKEN_TOUCH_SECONDS

    # --- the secret key ----------------------------------------------------------------------

    def secret_key(self) -> str:
        """`OPSLOOP_SECRET_KEY`, or the installation's generated key (made on first use)."""
        configured = self.ctx.settings.secret_key
        if configured is not None:
            return configured.get_secret_value()
        if self._secret is not None:
            return self._secret
        with self._lock:
            if self._secret is None:
                self._secret = self._stored_secret()
            return self._secret

    def _stored_secret(self) -> str:
        with self.ctx.db.read() as conn:
            found = store.get_value(conn, SECRET_KEY)
        if found is not None:
            return found
        try:
            with self.ctx.db.transaction() as tx:
                store.insert_value(tx.conn, SECRET_KEY, secrets.token_urlsafe(48), self.ctx.clock())
        except IntegrityError:
            pass  # another process made it first: use theirs
        with self.ctx.db.read() as conn:
            found = store.get_value(conn, SECRET_KEY)
        assert found is not None
        return found

    # --- helpers -----------------------------------------------------------------------------

    def _insert_user(
        self, conn: Any, email: str, role: str, password_hash: str, actor: str, now: datetime
    ) -> int:
        user_id = store.create_user(
            conn, email=email, role=role, password_hash=password_hash, created_by=actor, now=now
        )
        audit.record(conn, now, actor, "user.created", user_id, {"email": email, "role": role})
        return user_id

    def _verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password in constant work: an unknown email costs one Argon2 check too."""
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
            password_hash = self._dummy_hash
            password = ""
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _check_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidInput.single("email", f"{email!r} is not an email address")
    return email


def _check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidInput.single("role", f"must be one of {', '.join(ROLES)}")
    return role


def _hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput.single("password", f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput.single("password", f"must be at most {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _user_principal(user_id: int, email: str, role: Role, csrf: str) -> Principal:
    return Principal(
        kind="user",
        id=int(user_id),
        name=email,
        permission=ROLE_PERMISSION[role],
        role=role,
        csrf_token=csrf,
    )


def _user_view(row: dict[str, Any]) -> dict[str, Any]:
    view = {key: value for key, value in row.items() if key != "password_hash"}
    view["status"] = "disabled" if row["disabled_at"] else "active"
    return view


def _token_view(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "status": "revoked" if row["revoked_at"] else "active"}


def _minutes(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
