"""Fixtures for the page tests that sign people in to a live server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.people import Person, SignIn, sign_in


@pytest.fixture
def signed() -> Iterator[SignIn]:
    """Sign a person in at a server's URL: (client, CSRF token); the clients close at the end."""
    clients: list[httpx.Client] = []

    def open_session(url: str, person: Person) -> tuple[httpx.Client, str]:
        client, csrf = sign_in(url, person)
        clients.append(client)
        return client, csrf

    yield open_session
    for client in clients:
        client.close()
