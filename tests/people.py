"""The three fixed people of permission tests, and signing in through the real /login form."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from opsloop.service import OpsLoop


@dataclass(frozen=True)
class Person:
    email: str
    password: str
    role: str


OWNER = Person("olga@example.com", "owner password 1", "owner")
REVIEWER = Person("rui@example.com", "reviewer password 1", "reviewer")
VIEWER = Person("vera@example.com", "viewer password 1", "viewer")
PEOPLE = (OWNER, REVIEWER, VIEWER)


def add_people(ops: OpsLoop) -> None:
    for person in PEOPLE:
        ops.accounts.create_user(person.email, person.password, person.role, actor="tests")


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no csrf_token field"
    return found.group(1)


SignIn = Callable[[str, "Person"], tuple[httpx.Client, str]]
"""The `signed` fixture (tests/web/conftest.py): sign a person in at a server's URL."""


def sign_in(url: str, person: Person, **headers: str) -> tuple[httpx.Client, str]:
    """A client holding `person`'s session cookie, and the session's CSRF token."""
    client = httpx.Client(base_url=url, timeout=10, headers=headers)
    page = client.get("/login")
    assert page.status_code == 200, page.text
    answer = client.post(
        "/login",
        data={
            "email": person.email,
            "password": person.password,
            "csrf_token": form_csrf(page.text),
        },
    )
    assert answer.status_code == 303, answer.text
    me = client.get("/api/me")
    assert me.status_code == 200, me.text
    return client, me.json()["csrf_token"]
