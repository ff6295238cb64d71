"""A source's new secret, shown once on the page after the form that set it, and never again.

The form answers with a redirect (so a reload does not post it again), and the page it leads to
must show the secret exactly once, whichever web process answers it. The secret is split in
two: a one-time pad in the redirect's address (`?k=`) and the secret XOR that pad in a cookie
that only the source's own pages receive, for ten minutes at most. The page that finds both
shows the secret and deletes the cookie, so a reload shows nothing; neither half alone tells
anything (an access log holds the pad, a browser profile at most the other half), and nothing
is kept on the server.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from fastapi import Request, Response

from opsloop.web.auth import is_https

COOKIE = "opsloop_new_secret"
PAD = "k"
"""The query parameter holding the pad."""
SECONDS = 600
LONGEST = 2048
"""Bytes of secret handed over this way; a longer one is only said to be set."""


def hand_over(response: Response, request: Request, path: str, secret: str) -> str | None:
    """Set the cookie for the page at `path` and return the pad to put in its address (None
    when the secret is too long to hand over)."""
    data = secret.encode()
    if not data or len(data) > LONGEST:
        return None
    pad = secrets.token_bytes(len(data))
    response.set_cookie(
        COOKIE,
        _text(bytes(a ^ b for a, b in zip(data, pad, strict=True))),
        max_age=SECONDS,
        path=path,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return _text(pad)


def take(request: Request) -> str | None:
    """The secret handed over to this page, or None."""
    held, pad = request.cookies.get(COOKIE), request.query_params.get(PAD)
    if not held or not pad:
        return None
    try:
        masked, key = _bytes(held), _bytes(pad)
    except (binascii.Error, ValueError):
        return None
    if len(masked) != len(key):
        return None
    try:
        return bytes(a ^ b for a, b in zip(masked, key, strict=True)).decode()
    except UnicodeDecodeError:
        return None


def forget(response: Response, request: Request, path: str) -> None:
    """Delete the cookie: the secret has been shown."""
    response.delete_cookie(
        COOKIE, path=path, httponly=True, samesite="strict", secure=is_https(request)
    )


def _text(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
