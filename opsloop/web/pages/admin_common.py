"""Helpers shared by the Sources, Actions and Settings pages: times in words, URLs with their
secrets left out, and whether a request came from htmx."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`3 minutes ago`, `in 40 seconds`, `just now`."""
    if moment is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 5:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size:
            count = int(seconds // size)
            words = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {words}" if future else f"{words} ago"
    raise AssertionError(seconds)  # pragma: no cover - seconds >= 5 here


def stamp(moment: datetime | None) -> str:
    """`2026-03-02 09:00:05 UTC`."""
    return "—" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def without_secrets(url: str | None, *, keep_path: bool = True) -> str:
    """A URL fit to show: no password, no query string; with `keep_path=False` only the
    scheme and host (chat incoming-webhook URLs carry their secret in the path)."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    if not keep_path:
        return (
            f"{parts.scheme}://{host}/…"
            if parts.path not in ("", "/")
            else f"{parts.scheme}://{host}/"
        )
    return f"{parts.scheme}://{host}{parts.path}" + ("?…" if parts.query else "")


def sentence(message: str) -> str:
    """An error message as a sentence: capitalized (unless it starts with an email address,
    which keeps its case) and ending with a full stop."""
    first = message.split(" ", 1)[0]
    if "@" not in first:
        message = message[:1].upper() + message[1:]
    return message if message.endswith(".") else message + "."


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


TIME_HELPERS: dict[str, Any] = {"ago": ago, "stamp": stamp}
"""Put in a page's context for the `when` macro of templates/admin_macros.html."""
