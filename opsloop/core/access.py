"""Who may do what: roles of people, scopes of API tokens, and the permission a route needs.

Three levels, each including the ones before it:

| level    | a person's role | a token's scope | may                                                   |
| -------- | --------------- | --------------- | ----------------------------------------------------- |
| `read`   | `viewer`        | `read`          | read everything                                       |
| `review` | `reviewer`      | `review`        | also review decisions, retry actions, complete tasks, send events, run backtests |
| `admin`  | `owner`         | `admin`         | also change playbooks (apply, mode, training), settings, users and API tokens |

A route declares the level it needs (opsloop/web/auth.py); a principal (a signed-in person or
a token) is allowed when its level is at least that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Permission = Literal["read", "review", "admin"]
Role = Literal["viewer", "reviewer", "owner"]
Scope = Literal["read", "review", "admin"]

PERMISSIONS: Final[tuple[Permission, ...]] = ("read", "review", "admin")
ROLES: Final[tuple[Role, ...]] = ("viewer", "reviewer", "owner")
SCOPES: Final[tuple[Scope, ...]] = ("read", "review", "admin")

ROLE_PERMISSION: Final[dict[Role, Permission]] = {
    "viewer": "read",
    "reviewer": "review",
    "owner": "admin",
}

ROLE_SUMMARY: Final[dict[Role, str]] = {
    "viewer": "reads everything: decisions, events, actions, playbooks, metrics",
    "reviewer": "reads everything; reviews decisions, retries actions, completes tasks, "
    "sends events, runs backtests",
    "owner": "everything a reviewer does; changes playbooks (apply, mode, training), settings, "
    "accounts and API tokens",
}


def allows(granted: Permission, needed: Permission) -> bool:
    """Does a principal holding `granted` have `needed`?"""
    return PERMISSIONS.index(granted) >= PERMISSIONS.index(needed)


def role_for(needed: Permission) -> Role:
    """The least role that has `needed`, for messages."""
    for role in ROLES:
        if allows(ROLE_PERMISSION[role], needed):
            return role
    raise AssertionError(needed)  # pragma: no cover - every permission has a role


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: a signed-in person (`user`) or an API token (`token`)."""

    kind: Literal["user", "token"]
    id: int
    name: str
    """The person's email, or the token's name."""
    permission: Permission
    role: Role | None = None
    """A person's role; None for a token."""
    csrf_token: str | None = None
    """A browser session's CSRF token; None for a token (bearer requests need none)."""

    @property
    def actor(self) -> str:
        """How the audit trail names this principal: an email, or `token:NAME`."""
        return self.name if self.kind == "user" else f"token:{self.name}"

    @property
    def grant(self) -> str:
        """`role owner` or `scope read`, for messages."""
        return f"role {self.role}" if self.kind == "user" else f"token scope {self.permission}"

    def may(self, needed: Permission) -> bool:
        return allows(self.permission, needed)
