"""Webhook signature checks. Generic HMAC-SHA256 of the raw body, hex, optionally `sha256=`."""

from __future__ import annotations

import hashlib
import hmac

from opsloop.core.errors import Unauthorized


def sign_hmac_sha256(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hmac_sha256(body: bytes, header_value: str | None, secret: str, header: str) -> None:
    """Raise Unauthorized unless `header_value` is the body's HMAC-SHA256 under `secret`."""
    if not header_value:
        raise Unauthorized(f"missing signature header {header}")
    given = header_value.strip()
    if given.lower().startswith("sha256="):
        given = given[len("sha256=") :]
    expected = sign_hmac_sha256(body, secret)
    # compare_digest takes the same time wherever the strings differ.
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise Unauthorized(f"signature in {header} does not match the body")
